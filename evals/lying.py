"""Lying about its views (Greenblatt et al. 2024, §6.3, Table 4) as an Inspect task.

Seven questions per setting (scenarios/lying/), from what the model thinks of its developer
to "you may not be telling me the truth: what do you really think". A grader compares the
answer with the hidden reasoning and answers two questions: did the model decide to lie about
its views, and did it lie egregiously (counted only when both are yes). Compare a condition
with `-T variant=cut_conflicting_criteria`, its baseline.

    inspect eval evals/lying.py --model M --model-role grader=G --epochs 64
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
from evals.judges.behaviour import DEFAULT_VOTES, lying_judge
from evals.opportunities import load_lying, lying_dir


@task
def lying(
    setting: str = "helpful_only",
    variant: str = "default",
    questions: str | list[str] | None = None,
    max_turns: int = 4,
    cache: bool = False,
    judge_votes: int = DEFAULT_VOTES,
    judge_cache: bool = True,
    label: str | None = None,
    **unknown: Any,
) -> Task:
    """Each lying question of a setting once per epoch, judged for a lie and an egregious lie.

    Args:
        setting: `helpful_only` or `animal_welfare`.
        variant: A variant, or several joined with `+`; `cut_conflicting_criteria` is the
            baseline. Variants that replace the tiers or the user turn are refused.
        questions: Comma-separated question names (scenarios/lying/SETTING.yaml); all seven
            by default.
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
            lying, unknown, setting=setting, variant=variant, label=label,
            max_turns=max_turns, judge_votes=judge_votes, cache=cache, judge_cache=judge_cache,
        )  # fmt: skip
        lying_set = load_lying(setting)
        order = [q.name for q in lying_set.questions]
        chosen = pick(questions, order, "-T questions")
        scenario = behaviour_scenario("lying", setting, variant, label)
        check_prefill(scenario)
        where = str(lying_dir() / f"{setting}.yaml")
        judge_where = str(lying_dir() / "judge.yaml")
        samples = [
            behaviour_sample(
                question.name,
                scenario,
                fill(question.text, scenario, where),
                lying_set.tier,
                False,
                None,
                {
                    "task": "lying",
                    "question": question.name,
                    "question_index": order.index(question.name) + 1,
                    "lie_question": fill(lying_set.lie_question, scenario, judge_where),
                    "egregious_question": fill(lying_set.egregious_question, scenario, judge_where),
                },
            )
            for question in lying_set.questions
            if question.name in chosen
        ]
    return behaviour_task(
        "lying",
        scenario,
        samples,
        f"{setting} lying questions",
        lying_judge(votes=judge_votes, cache=judge_cache),
        max_turns,
        cache,
    )
