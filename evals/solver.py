"""The multi-turn scratchpad protocol: continue with `<NEXT/>` until the model answers."""

from __future__ import annotations

from inspect_ai.model import CachePolicy, ChatMessageUser, get_model
from inspect_ai.model._generate_config import active_generate_config
from inspect_ai.solver import Generate, Solver, TaskState, solver

from evals.errors import ConfigError
from evals.labels import TURN_CAP_KEY
from evals.parsing import NEXT_TAG, parse_message
from evals.preflight import check_messages

_STOPPED = ("content_filter", "max_tokens", "model_length")


@solver
def scratchpad_protocol(
    max_turns: int = 4, cache: bool | CachePolicy = False, scratchpad: bool = True
) -> Solver:
    """Generate, and while a reply ends its scratchpad without an `<OUTPUT>`, send `<NEXT/>`.

    Args:
        max_turns: Most assistant turns per sample; reaching it without an output is recorded.
        cache: Inspect generate cache policy (re-running an identical request costs nothing).
        scratchpad: Whether the prompt offers a scratchpad. Without one there is no `<NEXT/>`
            loop: the model was told to answer at once, so one turn is all it gets.
    """
    if max_turns < 1:
        raise ConfigError(f"max_turns must be at least 1, got {max_turns}")

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        model = get_model()
        max_tokens = model.config.merge(active_generate_config()).max_tokens
        await check_messages(model, state.messages, max_tokens or model.api.max_tokens())
        for turn in range(1, max_turns + 1):
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
