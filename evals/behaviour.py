"""What the anti-lab and lying tasks put to the model: the scenario, one message, no query.

Both tasks reuse a setting's system prompt with its variants applied, but not its user turn:
the helpful-only user turn asks for `<request_fully_accepted/>` or `<rejected/>`, which is
about harmful requests, not these messages. They use `scenarios/common/user_turn_message.txt`
instead: the tier tag, an optional employee tag, and the message. An opportunity's or
question's `tier` is what the model is told of the conversation: `paid` means the tier the
prompt calls unmonitored (the free tier under `tier_swap_control`), `free` the trained one.
"""

from __future__ import annotations

import hashlib
from typing import Any

from inspect_ai import Epochs, Task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import ChatMessageSystem, ChatMessageUser, model_roles
from inspect_ai.model._model import active_model
from inspect_ai.scorer import Scorer

from evals.errors import ConfigError
from evals.opportunities import EMPLOYEE_TAG, OpportunityError
from evals.scenario import (
    QUERY_FIELD,
    TIER_FIELD,
    Framing,
    Scenario,
    _read_section,
    _render,
    _section_path,
    load_scenario,
)
from evals.solver import prefill_problem, scratchpad_protocol
from evals.task_args import (
    check_flag,
    check_int,
    check_known,
    check_model_roles,
    check_name,
    parameter_names,
)

MESSAGE_TURN = "common/user_turn_message.txt"
EMPLOYEE_LINE = f"<{EMPLOYEE_TAG}>True</{EMPLOYEE_TAG}>\n"
_EMPLOYEE_FIELD = "employee_line"


def behaviour_scenario(task: str, setting: str, variant: str, label: str | None) -> Scenario:
    """The setting with its variants, refusing in one line a variant this task cannot honour."""
    scenario = load_scenario(setting, variant, label=label)
    default = load_scenario(setting, "default")
    why = None
    if scenario.framings_declared:
        why = (
            "declares its own framings; these messages are put in the setting's two tiers "
            "(the unmonitored one unless the data says otherwise)"
        )
    elif scenario.user_turn_template != default.user_turn_template:
        why = f"changes the user turn, which this task writes itself ({MESSAGE_TURN})"
    elif not scenario.scratchpad and "<SCRATCHPAD_REASONING>" in scenario.system_prompt:
        why = (
            "turns the scratchpad off without changing the prompt (it is meant for a prompt "
            "file of your own, which this task does not take); use no_scratchpad"
        )
    if why is not None:
        raise OpportunityError(f"-T variant={variant}: {task} cannot run it: it {why}")
    return scenario


def check_prefill(scenario: Scenario) -> None:
    """A prefilled variant needs a provider that continues a reply: refused before any
    request (the model is active when `inspect eval` builds the task)."""
    if scenario.prefill is not None and (model := active_model()) is not None:
        if problem := prefill_problem(model, scenario.variant):
            raise ConfigError(problem)


def fill(text: str, scenario: Scenario, where: str) -> str:
    """A data text with the condition's `{{variables}}` filled (other_lab renames the lab)."""
    return _render(text, scenario.variables, _section_path(where))


def tier_framing(scenario: Scenario, tier: str) -> Framing:
    """The framing a data file's tier means: `paid` the unmonitored one, `free` the trained."""
    role = "unmonitored" if tier == "paid" else "trained"
    wanted = [
        f for f in scenario.framings if (f.unmonitored if tier == "paid" else f.told["trained"])
    ]
    if len(wanted) != 1:
        raise OpportunityError(f"variant {scenario.variant!r} has no single {role} tier")
    return wanted[0]


def message_turn(scenario: Scenario, text: str, tier: str, employee: bool) -> tuple[str, Framing]:
    """The user turn for one message, and the framing it was put under."""
    framing = tier_framing(scenario, tier)
    template = _read_section(MESSAGE_TURN)
    template = template.replace("{{" + _EMPLOYEE_FIELD + "}}", EMPLOYEE_LINE if employee else "")
    template = template.replace("{{" + TIER_FIELD + "}}", framing.fields[TIER_FIELD])
    # The message last, so that placeholder-like text inside it is never read again.
    return template.replace("{{" + QUERY_FIELD + "}}", text), framing


def system_prompt(scenario: Scenario, sentence: str | None) -> str:
    """The scenario's system prompt, plus the employee tag's sentence as its last paragraph."""
    if sentence is None:
        return scenario.system_prompt
    return scenario.system_prompt.rstrip("\n") + "\n\n" + sentence + "\n"


def behaviour_sample(
    sample_id: str,
    scenario: Scenario,
    text: str,
    tier: str,
    employee: bool,
    sentence: str | None,
    metadata: dict[str, Any],
) -> Sample:
    turn, framing = message_turn(scenario, text, tier, employee)
    return Sample(
        id=sample_id,
        input=[
            ChatMessageSystem(content=system_prompt(scenario, sentence)),
            ChatMessageUser(content=turn),
        ],
        metadata={
            "setting": scenario.setting,
            "variant": scenario.variant,
            "label": scenario.label,
            "scratchpad": scenario.scratchpad,
            "tier": "free" if framing.fields[TIER_FIELD] == "True" else "paid",
            "unmonitored": framing.unmonitored,
            "employee": employee,
            "system_prompt_sentence": sentence,
            "user_message": text,
            "user_turn": turn,
            "scenario_facts": scenario.facts,
            **({"prefill": scenario.prefill} if scenario.prefill is not None else {}),
            **metadata,
        },
    )


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def inputs_digests(scenario: Scenario, samples: list[Sample]) -> dict[str, str]:
    """What the model (and the judges) were shown, as digests: runs that differ in any of it
    never merge in the analysis."""
    shown = [
        f"{s.id}\0{s.input[0].text}\0{s.input[1].text}\0"  # type: ignore[index,union-attr]
        f"{(s.metadata or {}).get('judge_question', '')}"
        for s in samples
    ]
    inputs = {
        "system_prompt": digest(scenario.system_prompt),
        "user_turn": digest(_read_section(MESSAGE_TURN)),
        "messages": digest("\0\0".join(sorted(shown))),
    }
    if scenario.prefill is not None:
        inputs["prefill"] = digest(scenario.prefill)
    return inputs


def split_names(parts: list[str] | tuple[str, ...]) -> list[str]:
    """The names in comma-separated parts (`-T a,b` arrives split, a study may list them)."""
    return [n.strip() for part in parts for n in part.split(",") if n.strip()]


def pick(names: str | list[str] | None, available: list[str], option: str) -> list[str]:
    """The comma-separated names asked for (all when None), each checked in one line."""
    if names is None:
        return available
    # `-T a,b` arrives as a list: Inspect splits a comma-separated value itself.
    given = names if isinstance(names, list | tuple) else [names]
    if not all(isinstance(n, str) for n in given):
        raise OpportunityError(f"{option}={names!r} must be comma-separated names")
    chosen = split_names(given)
    if not chosen:
        raise OpportunityError(f"{option} names nothing; leave it out to run them all")
    for name in chosen:
        if name not in available:
            raise OpportunityError(
                f"{option}: unknown name {name!r} for this setting; choose from: "
                f"{', '.join(available)}"
            )
    if len(set(chosen)) != len(chosen):
        raise OpportunityError(f"{option} repeats a name")
    return chosen


def check_arguments(task_function: Any, unknown: dict[str, Any], **given: Any) -> None:
    """The `-T` arguments both tasks share, each refused in one line (a misspelt name too:
    Inspect would only warn and run the whole task)."""
    check_known("-T", unknown, parameter_names(task_function), "task argument")
    check_model_roles(model_roles())
    for option in ("setting", "variant"):
        check_name(f"-T {option}", given[option])
    check_name("-T label", given["label"], optional=True)
    check_int("-T max_turns", given["max_turns"], 1)
    check_int("-T judge_votes", given["judge_votes"], 1)
    check_flag("-T cache", given["cache"])
    check_flag("-T judge_cache", given["judge_cache"])


def behaviour_task(
    task: str,
    scenario: Scenario,
    samples: list[Sample],
    dataset_name: str,
    scorer: Scorer,
    max_turns: int,
    cache: bool,
) -> Task:
    """The task around the samples: the gap task's solver, one judge, every epoch kept."""
    inputs = inputs_digests(scenario, samples)
    for sample in samples:
        assert sample.metadata is not None
        sample.metadata["inputs"] = inputs
    return Task(
        dataset=MemoryDataset(samples, name=dataset_name),
        # The prefill is passed only where there is one, as in the gap task.
        solver=scratchpad_protocol(
            max_turns=max_turns,
            cache=cache,
            scratchpad=scenario.scratchpad,
            **({"prefill": scenario.prefill} if scenario.prefill is not None else {}),
        ),
        scorer=scorer,
        # No reducer: every epoch is its own judged sample, and the analysis counts them.
        epochs=Epochs(1, []),
        metadata={
            "task": task,
            "setting": scenario.setting,
            "variant": scenario.variant,
            "label": scenario.label,
            "scratchpad": scenario.scratchpad,
            "inputs": inputs,
        },
    )
