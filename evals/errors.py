"""The error type for bad user input: shown by the CLI as one message, without a traceback."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from contextvars import ContextVar

try:  # Inspect's CLI prints these as a plain message instead of a traceback.
    from inspect_ai._util.error import PrerequisiteError as _CliMessage
except ImportError:  # pragma: no cover - only if Inspect moves it
    _CliMessage = Exception  # type: ignore[misc,assignment]
try:  # ... and ends on these with exit code 1, printing nothing.
    from inspect_ai._util.error import SilentException as _Silent
except ImportError:  # pragma: no cover - only if Inspect moves it
    _Silent = None  # type: ignore[misc,assignment]


class ConfigError(_CliMessage, ValueError):
    """A setting, variant, dataset or prompt file is unknown or malformed."""

    def __init__(self, message: str) -> None:
        from rich.markup import escape

        Exception.__init__(self, message)
        self.text = f"Error: {message}"
        self.shown = False  # printed already (see shown_in_every_display)
        # Inspect prints `message` with rich, which would read "[...]" as markup.
        self.message = escape(self.text)

    @classmethod
    def lines(cls, problems: Sequence[str]) -> ConfigError:
        """Several problems found at once, shown one line each (each reads on its own)."""
        from rich.markup import escape

        error = cls("\n".join(problems))
        error.text = "\n".join(f"Error: {problem}" for problem in problems)
        error.message = escape(error.text)
        return error


_caught = ContextVar("config_errors_caught", default=False)


@contextlib.contextmanager
def caught_by_caller() -> Iterator[None]:
    """Within this block ConfigErrors are caught and reported by the code around it (a dry
    run's list of problems, say), so `shown_in_every_display` prints none of them."""
    token = _caught.set(True)
    try:
        yield
    finally:
        _caught.reset(token)


@contextlib.contextmanager
def shown_in_every_display(created_by_name: bool = False) -> Iterator[None]:
    """Print a ConfigError to stderr, one line a problem, where Inspect would not.

    Inspect's command line prints these errors through rich, which `--display none`
    silences (a bad argument would end the run with exit code 1 and no message at all) and
    which otherwise wraps them at the console's width (80 columns when not a terminal). So
    under the command line, or with display `none`, the error is printed here as it is, and
    Inspect is left an empty message.

    `created_by_name`: the block creates a scorer that Inspect's command line may create by
    its registered name (`inspect score LOG --scorer NAME -S ...`). Its loader reads any
    ValueError there as "no such scorer", creates it again and ends with a misleading "the
    scorer couldn't be loaded". So under the command line, once the line is printed, the
    error leaves as Inspect's SilentException, which its command line ends on with exit
    code 1 and no other word. (Called from Python, the ConfigError leaves as it is.)
    """
    try:
        yield
    except ConfigError as error:
        from inspect_ai.util._display import display_type, display_type_initialized

        silenced = display_type_initialized() and display_type() == "none"
        if (silenced or _inspect_cli()) and not error.shown and not _caught.get():
            print(error.text, file=sys.stderr)
            error.shown = True
            error.message = ""
        if created_by_name and error.shown and _inspect_cli() and _Silent is not None:
            raise _Silent(error.text) from error
        raise


def _inspect_cli() -> bool:
    """Whether Inspect's command line (`inspect ...`, `python -m inspect_ai ...`) is running:
    an error it does not catch reaches its exception hook, which prints the message with
    rich. (The hook alone says little: Inspect installs it in any process that makes a
    model, where the caller may catch the error.)"""
    return "inspect_ai._cli.main" in sys.modules
