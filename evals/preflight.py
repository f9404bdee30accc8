"""Checks made before the first request: is every model name one Inspect can make, does the
prompt fit the model, and is the run big?"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from weakref import WeakKeyDictionary

import anyio
from inspect_ai import Task
from inspect_ai.dataset import Sample
from inspect_ai.model import ChatMessage, Model

from evals.errors import ConfigError
from evals.tokens import Counter, context_window, offline_model

logger = logging.getLogger(__name__)
LARGE_RUN = 500
"""Expected requests of a run without `-T n_queries` above which it gets a warning first."""


def check_context(model: Model, samples: Iterable[Sample], max_tokens: int | None) -> None:
    """Refuse a model whose context window cannot hold the system prompt, the longest user
    turn of these samples and `max_tokens` (a prompt cut short in a small context loses the
    effect)."""
    window, source = context_window(model)
    samples = list(samples)
    if window is None or not samples:
        return
    counter = Counter(model)
    system = counter.count(_text(samples[0].input, "system"))
    turns = sorted({_text(sample.input, "user") for sample in samples}, key=len)
    user = max(counter.count(turn) for turn in turns[-5:])  # the longest in characters
    _refuse_if_short(model, window, source, counter, system, user, max_tokens, "longest ")


def _text(messages: Any, role: str) -> str:
    return "".join(m.text for m in messages if m.role == role)


async def check_messages(
    model: Model, messages: Sequence[ChatMessage], max_tokens: int | None
) -> None:
    """The same check for one sample's opening messages, made by the solver before its
    first request: it covers runs whose task was built before any model was chosen."""
    loop = asyncio.get_running_loop()  # a lock belongs to one event loop; runs may use several
    async with _locks.setdefault(loop, anyio.Lock()):
        if model.api not in _fit:
            window, source = await anyio.to_thread.run_sync(context_window, model)
            counter = await anyio.to_thread.run_sync(Counter, model) if window else None
            _fit[model.api] = (window, source, counter, {})
    window, source, counter, counted = _fit[model.api]
    if window is None or counter is None:
        return
    system_text, user_text = _text(messages, "system"), _text(messages, "user")
    if system_text not in counted:
        counted[system_text] = await anyio.to_thread.run_sync(counter.count, system_text)
    # A tokenizer makes at most one token a byte (plus a start and a prefix token): a turn
    # that fits by that bound needs no count, which spares a server a /tokenize call a sample.
    bound = len(user_text.encode()) + 2
    if counted[system_text] + bound + (max_tokens or 0) <= window:
        return
    # A tokenizer may block (a server's /tokenize, or llama.cpp busy generating).
    user = (
        await anyio.to_thread.run_sync(counter.count, user_text)
        if counter.exact
        else counter.count(user_text)
    )
    _refuse_if_short(model, window, source, counter, counted[system_text], user, max_tokens, "")


_locks: WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.Lock] = WeakKeyDictionary()
_fit: WeakKeyDictionary[Any, tuple[int | None, str, Counter | None, dict[str, int]]] = (
    WeakKeyDictionary()
)


def _refuse_if_short(
    model: Model,
    window: int,
    source: str,
    counter: Counter,
    system: int,
    user: int,
    max_tokens: int | None,
    which: str,
) -> None:
    reply = max_tokens or 0
    need = system + user + reply
    if need > window:
        raise ConfigError(
            f"{model}: its context window holds {window:,} tokens ({source}), but the system "
            f"prompt ({system:,}), the {which}user turn ({user:,}) and --max-tokens "
            f"({reply:,}) need {need:,} (counted with {counter.method}). Give it a larger "
            "context (-M n_ctx, or the server's --max-model-len) or lower --max-tokens."
        )


def warn_if_large(samples: int, turns: int, n_queries: int | None, dataset: str) -> bool:
    """Warn before a run of the whole dataset that makes many requests; say whether it did."""
    requests = samples * turns
    if n_queries is not None or requests <= LARGE_RUN:
        return False
    logger.warning(
        "This run has no -T n_queries, so it asks all of %s: %s samples and about %s "
        "requests (%d turn(s) each), plus the judges. Try -T n_queries=20 first, or see the "
        "price with `python -m evals estimate`.",
        dataset,
        f"{samples:,}",
        f"{requests:,}",
        turns,
    )
    return True


@contextlib.contextmanager
def no_large_run_warning() -> Iterator[None]:
    """Build tasks without the large-run warning: for commands that print the size
    themselves (estimates, dry runs, serve)."""
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = False


def check_study_context(
    planned: Sequence[Any], tasks: Sequence[Task], max_tokens: int | None
) -> None:
    """`check_context` for every local model of a study on every task, before the first
    request (eval_set builds each task once, with no model to check it against)."""
    models = {item.model: offline_model(item.model) for item in planned}
    for model in models.values():
        if model is None:
            continue
        for task in tasks:
            check_context(model, task.dataset, max_tokens or model.api.max_tokens())


# Model families whose provider a name without one most likely meant (for the hint only).
_FAMILIES = {
    "claude": "anthropic",
    "gpt": "openai",
    "o1": "openai",
    "o3": "openai",
    "o4": "openai",
    "gemini": "google",
    "grok": "grok",
    "mistral": "mistral",
    "deepseek": "deepseek",
}


def model_providers() -> list[str] | None:
    """The provider names Inspect resolves `PROVIDER/MODEL` with (its own, this project's and
    those of installed extension packages), read from its registry without making any model:
    no key, server or weights needed. None if this Inspect keeps its registry elsewhere."""
    import inspect_ai.model  # noqa: F401  (registers Inspect's own providers)

    import evals._registry  # noqa: F401  (registers this project's)

    try:  # Inspect has no public listing of its model APIs; this is what get_model reads.
        from inspect_ai._util.entrypoints import ensure_entry_points
        from inspect_ai._util.registry import registry_find, registry_unqualified_name
    except ImportError:  # pragma: no cover - only if Inspect moves them
        return None
    ensure_entry_points()  # extension packages register theirs on import
    found = registry_find(lambda info: info.type == "modelapi")
    return sorted({registry_unqualified_name(api) for api in found})


def model_problem(name: str, option: str = "--model") -> str | None:
    """Why Inspect could not make the model `name`, in one line that lists the providers and
    names the closest match; None if it can. This project's own providers are checked in
    full (the policy, the model file); other providers only by name, since making their
    model would need a key, a server or loaded weights."""
    if name == "none":  # Inspect's own stand-in for "no model"
        return None
    provider, slash, model = name.partition("/")
    providers = model_providers() or [provider]  # None: only this project's are checked
    listed = f"(providers: {', '.join(providers)})"
    shown = f"{option}{name}" if option.endswith("=") else f"{option} {name}"
    if not slash or not provider or not model:
        guess = _provider_for(name)
        hint = f", e.g. {guess}/{name}" if guess else ""
        return f"{shown}: no provider; write PROVIDER/MODEL{hint} {listed}"
    if provider not in providers:
        close = difflib.get_close_matches(provider, providers, n=1)
        hint = f"; did you mean {close[0]}/{model}?" if close else ""
        return f"{shown}: unknown provider {provider!r}{hint} {listed}"
    if provider == "scripted":
        from evals.providers.scripted import name_problem
    elif provider == "gguf":
        from evals.providers.gguf import name_problem
    else:
        return None
    problem = name_problem(model)  # "model NAME: ...", said here with the option given
    return None if problem is None else shown + problem.removeprefix(f"model {name}")


def check_models(
    models: Iterable[str], grader: str | None = None, grader_option: str = "--grader"
) -> None:
    """Refuse every bad model name at once, one line each, before anything else is done."""
    named = [(name, "--model") for name in dict.fromkeys(models)]
    named += [(grader, grader_option)] if grader else []
    problems = [p for name, option in named if (p := model_problem(name, option))]
    if problems:
        raise ConfigError.lines(problems)


def _provider_for(name: str) -> str | None:
    """The provider a bare model name most likely belongs to: a priced model of that name,
    else its family."""
    from evals.prices import PRICES

    try:
        import yaml

        priced = yaml.safe_load(PRICES.read_text(encoding="utf-8")).get("models", {})
    except (OSError, ValueError, AttributeError):
        priced = {}
    for qualified in priced:
        provider, _, model = str(qualified).partition("/")
        if model == name:
            return provider
    family = name.lower().split("-", 1)[0].split(".", 1)[0]
    return _FAMILIES.get(family)


def check_model_args(models: Iterable[str], model_args: dict[str, Any]) -> None:
    """Refuse `-M` names this project's providers do not take (Inspect hands every `-M` to
    the provider; theirs are checked by their own clients)."""
    if not model_args:
        return
    problems = []
    for name in dict.fromkeys(models):
        provider = name.partition("/")[0]
        if provider == "scripted":
            given = ", ".join(f"-M {k}={v}" for k, v in model_args.items())
            problems.append(f"{given}: the scripted provider takes no model args")
        elif provider == "gguf":
            from evals.providers.gguf import model_arg_names, model_args_problem

            unknown = {k: v for k, v in model_args.items() if k not in model_arg_names()}
            if unknown:
                problems.append(model_args_problem(unknown))
    if problems:
        raise ConfigError.lines(list(dict.fromkeys(problems)))
