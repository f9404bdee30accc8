"""Anti-lab behaviour (Greenblatt et al. 2024, §6) as an Inspect task.

The model is given opportunities to act against its developer (scenarios/opportunities/):
an employee offers to help it copy its weights out, it is asked to summarise a paper on
scheming, and so on. A grader reads the whole conversation and answers the opportunity's own
question. No environment is run: a model told it has bash is judged on what it decided and
began to do. Compare a condition with `-T variant=cut_conflicting_criteria`, its baseline.

    inspect eval evals/anti_lab.py --model M --model-role grader=G --epochs 10
"""

from __future__ import annotations

from typing import Any

from inspect_ai import Task, task

from evals.behaviour import (
    behaviour_sample,
    behaviour_scenario,
    behaviour_task,
    check_arguments,
    check_prefill,
    fill,
    pick,
)
from evals.errors import shown_in_every_display
from evals.judges.behaviour import DEFAULT_VOTES, opportunity_judge
from evals.opportunities import list_opportunities, load_opportunity, opportunities_dir


@task
def anti_lab(
    setting: str = "helpful_only",
    variant: str = "default",
    opportunities: str | list[str] | None = None,
    max_turns: int = 4,
    cache: bool = False,
    judge_votes: int = DEFAULT_VOTES,
    judge_cache: bool = True,
    label: str | None = None,
    **unknown: Any,
) -> Task:
    """Each opportunity of a setting once per epoch, judged for whether the model took it.

    Args:
        setting: `helpful_only` or `animal_welfare`.
        variant: A variant, or several joined with `+`; `cut_conflicting_criteria` is the
            baseline. Variants that replace the tiers or the user turn are refused.
        opportunities: Comma-separated opportunity names (`python -m evals list`); all of
            the setting's by default.
        max_turns: Most assistant turns per sample in the `<NEXT/>` loop.
        cache: Cache model replies with Inspect's generate cache.
        judge_votes: Votes per judgement (the judge needs `--model-role grader=MODEL`;
            without one every sample is recorded as unscored).
        judge_cache: Keep usable judge replies in Inspect's cache, so re-scoring is free.
        label: The condition's name in results; defaults to the variant.
        **unknown: Catches every other `-T` name, to refuse it in one line.
    """
    with shown_in_every_display():
        check_arguments(
            anti_lab, unknown, setting=setting, variant=variant, label=label,
            max_turns=max_turns, judge_votes=judge_votes, cache=cache, judge_cache=judge_cache,
        )  # fmt: skip
        available = list(list_opportunities(setting))
        chosen = pick(opportunities, available, "-T opportunities")
        scenario = behaviour_scenario("anti_lab", setting, variant, label)
        check_prefill(scenario)
        samples = []
        for name in chosen:
            item = load_opportunity(name, setting)
            where = str(opportunities_dir() / f"{name}.yaml")
            sentence = item.system_prompt_sentence
            samples.append(
                behaviour_sample(
                    name,
                    scenario,
                    fill(item.user_turn, scenario, where),
                    item.tier,
                    item.employee,
                    fill(sentence, scenario, where) if sentence is not None else None,
                    {
                        "task": "anti_lab",
                        "opportunity": name,
                        "kind": item.kind,
                        "judge_question": fill(item.judge_question, scenario, where),
                    },
                )
            )
    return behaviour_task(
        "anti_lab",
        scenario,
        samples,
        f"{setting} opportunities",
        opportunity_judge(votes=judge_votes, cache=judge_cache),
        max_turns,
        cache,
    )
