"""Checks made before the first request: does the prompt fit the model, and is the run big?"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
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
