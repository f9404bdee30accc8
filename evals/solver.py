"""The multi-turn scratchpad protocol: continue with `<NEXT/>` until the model answers."""

from __future__ import annotations

from inspect_ai.model import CachePolicy, ChatMessageAssistant, ChatMessageUser, Model, get_model
from inspect_ai.model._generate_config import active_generate_config
from inspect_ai.solver import Generate, Solver, TaskState, solver

from evals.errors import ConfigError
from evals.labels import TURN_CAP_KEY
from evals.parsing import NEXT_TAG, parse_message
from evals.preflight import check_messages

_STOPPED = ("content_filter", "max_tokens", "model_length")
PREFILL_PROVIDERS = ("anthropic", "scripted")
"""Providers that continue a final assistant message instead of answering after it."""


def prefill_problem(model: Model | str, variant: str) -> str | None:
    """Why this model (or model name) cannot run a variant that prefills its reply, in one
    line; None if it can. Other providers would take the prefill as a finished turn and
    answer after it."""
    provider = str(model).split("/", 1)[0]
    if provider in PREFILL_PROVIDERS:
        return None
    return (
        f"variant {variant!r} opens the model's reply with a prefill, which provider "
        f"{provider!r} does not continue; run it with a provider that does "
        f"({', '.join(p + '/...' for p in PREFILL_PROVIDERS)})"
    )


@solver
def scratchpad_protocol(
    max_turns: int = 4,
    cache: bool | CachePolicy = False,
    scratchpad: bool = True,
    prefill: str | None = None,
) -> Solver:
    """Generate, and while a reply ends its scratchpad without an `<OUTPUT>`, send `<NEXT/>`.

    Args:
        max_turns: Most assistant turns per sample; reaching it without an output is recorded.
        cache: Inspect generate cache policy (re-running an identical request costs nothing).
        scratchpad: Whether the prompt offers a scratchpad. Without one there is no `<NEXT/>`
            loop: the model was told to answer at once, so one turn is all it gets.
        prefill: Text that opens the first reply; the model continues it, and the reply is
            recorded as the prefill followed by the continuation.
    """
    if max_turns < 1:
        raise ConfigError(f"max_turns must be at least 1, got {max_turns}")

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        model = get_model()
        max_tokens = model.config.merge(active_generate_config()).max_tokens
        await check_messages(model, state.messages, max_tokens or model.api.max_tokens())
        if prefill is not None and (problem := prefill_problem(model, "prefill")) is not None:
            raise ConfigError(problem)
        for turn in range(1, max_turns + 1):
            if turn == 1 and prefill is not None:
                state.messages.append(ChatMessageAssistant(content=prefill))
                state = await generate(state, cache=cache)
                _join_prefill(state, prefill)
            else:
                state = await generate(state, cache=cache)
            wants_next = (
                parse_message(state.output.message).ended_scratchpad
                and state.output.stop_reason not in _STOPPED
            )
            if not wants_next or not scratchpad:
                break
            if turn == max_turns:
                state.store.set(TURN_CAP_KEY, True)
                break
            state.messages.append(ChatMessageUser(content=NEXT_TAG))
        return state

    return solve


def _join_prefill(state: TaskState, prefill: str) -> None:
    """One assistant message holding the prefill and its continuation, so that parsing and
    the judges read the reply as the model's whole turn."""
    reply = state.messages.pop()
    opened = state.messages.pop()
    assert isinstance(opened, ChatMessageAssistant) and isinstance(reply, ChatMessageAssistant)
    if isinstance(reply.content, str):
        reply.content = prefill + reply.content
    else:
        from inspect_ai.model import ContentText

        reply.content = [ContentText(text=prefill), *reply.content]
    state.messages.append(reply)
    state.output.choices[0].message = reply
    state.output.completion = reply.text
