"""Checks of the task's arguments, run when the task is built: before any model is called."""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from evals.errors import ConfigError
from evals.judges.classifiers import AF_SPECS

SWEEP_HINT = (
    "to run several variants, run one `inspect eval` per variant into the same --log-dir and "
    "analyse that folder"
)


# Each check names the option as the user typed it: `-T name` for the task, `--flag` for
# the analysis commands.


def check_choice(option: str, value: Any, allowed: list[str]) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(f"{option}={value!r} is not one of: {', '.join(allowed)}")


def check_int(option: str, value: Any, minimum: int, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{option}={value!r} must be an integer of at least {minimum}")


def check_share(option: str, value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or math.isnan(value)
        or not 0 < value <= 1
    ):
        raise ConfigError(f"{option}={value!r} must be a number above 0 and at most 1")


def check_number(
    option: str, value: Any, minimum: float, maximum: float | None = None, upper: str = ""
) -> None:
    """A number from `minimum` up to `maximum` (named `upper` in the message, if given)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or math.isnan(value)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        bound = (
            f"from {minimum:g} to {f'{upper} ({maximum:g})' if upper else f'{maximum:g}'}"
            if maximum is not None
            else (f"of at least {minimum:g}")
        )
        raise ConfigError(f"{option}={value!r} must be a number {bound}")


def check_flag(option: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{option}={value!r} must be true or false")


def check_name(option: str, value: Any, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, list | tuple):
        listed = ", ".join(map(str, value))
        hint = SWEEP_HINT if option.endswith("variant") else "give one value"
        raise ConfigError(f"{option} takes one value, got a list ({listed}); {hint}")
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{option}={value!r} must be a non-empty name or path")


def check_judge_args(
    af_classifier: Any,
    judge_votes: Any,
    af_threshold: Any,
    options: tuple[str, str, str] = ("-T af_classifier", "-T judge_votes", "-T af_threshold"),
) -> None:
    """The judge settings, shared with `python -m analysis validate-classifier`."""
    check_choice(options[0], af_classifier, list(AF_SPECS))
    check_int(options[1], judge_votes, 1)
    check_share(options[2], af_threshold)


def unknown_names(
    option: str,
    given: Mapping[str, Any],
    valid: Iterable[str],
    what: str,
    listed_as: str = "valid",
) -> str | None:
    """One line naming every name in `given` that is not `valid`, each with its closest
    valid name, then the valid names (`(valid: ...)`, or `listed_as`); None when all are
    known.

    Python would drop or crash on an unknown keyword; Inspect only warns that a `-T` is
    unused and runs the whole task, so a typo would spend the whole budget.
    """
    known = sorted(valid)
    unknown = [name for name in given if name not in known]
    if not unknown:
        return None
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        parts.append((f"{option} {name}={_shown(given[name])}", close[0] if close else None))
    listed = f"({listed_as}: {', '.join(known)})"
    if len(parts) == 1:
        [(shown, close)] = parts
        hint = f"; did you mean {close}?" if close else ""
        return f"{shown}: unknown {what}{hint} {listed}"
    shown = ", ".join(s + (f" (did you mean {c}?)" if c else "") for s, c in parts)
    return f"{shown}: unknown {what}s {listed}"


def check_known(
    option: str,
    given: Mapping[str, Any],
    valid: Iterable[str],
    what: str,
    listed_as: str = "valid",
) -> None:
    """Refuse unknown names before anything is run (see `unknown_names`)."""
    message = unknown_names(option, given, valid, what, listed_as)
    if message is not None:
        raise ConfigError(message)


def parameter_names(function: Callable[..., Any]) -> list[str]:
    """The keyword names a function takes, in its order (not its `**kwargs`)."""
    return [
        name
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.kind is not inspect.Parameter.VAR_KEYWORD
    ]


MODEL_ROLES = ("grader",)
"""The model roles this eval reads (`--model-role NAME=MODEL`): the judges' grader. Inspect
binds any role name it is given, and a judge reads only its own: a misspelled role would
leave every sample unjudged without a word."""


def check_model_roles(roles: Mapping[str, Any]) -> None:
    """Refuse a model role this eval does not read, in one line with the closest one."""
    shown = {
        name: ",".join(map(str, model)) if isinstance(model, list | tuple) else str(model)
        for name, model in roles.items()
    }
    check_known("--model-role", shown, MODEL_ROLES, "model role", "roles")


def parse_model_roles(items: Iterable[str]) -> dict[str, str]:
    """`ROLE=MODEL` items of `--model-role`, each role one this eval reads."""
    roles = {}
    for item in items:
        role, sep, model = item.partition("=")
        if not sep or not role.strip() or not model.strip():
            raise ConfigError(f"--model-role {item}: expected ROLE=MODEL, e.g. grader=MODEL")
        roles[role.strip()] = model.strip()
    check_model_roles(roles)
    return roles


def _shown(value: Any) -> str:
    """A value as the user typed it on the command line."""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def parse_pairs(option: str, items: list[str]) -> dict[str, Any]:
    """`NAME=VALUE` items read as Inspect reads `-T` and `-M`: dashes in names become
    underscores, values are YAML, and a plain string with commas is a list. An item with
    no `=` is refused (Inspect drops it without a word)."""
    import yaml

    values: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"{option} {item}: expected NAME=VALUE")
        value = yaml.safe_load(raw)
        if isinstance(value, str) and "," in value:
            value = value.split(",")
        values[name.replace("-", "_")] = value
    return values
