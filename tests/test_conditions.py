"""What a condition says about itself: the trained tier and the gap's sign, its label apart
from its variant, readable names, its settings, and which published model it is."""

import pandas as pd
import pytest
from inspect_ai import eval as inspect_eval

from analysis import tables
from analysis.logs import load_samples
from analysis.summary import SETTINGS, summarize
from evals.alignment_faking import alignment_faking
from evals.providers.scripted import ACCEPT, POLICIES, REJECT, is_free_tier


@pytest.fixture(scope="module")
def summary(tmp_path_factory) -> pd.DataFrame:
    """A model that complies only on the free tier, in the default prompt and in the control
    that trains the paid tier; and the default prompt again at temperature 0."""
    logs = tmp_path_factory.mktemp("conditions")
    POLICIES["free_only_for_test"] = lambda m: ACCEPT if is_free_tier(m) else REJECT
    try:
        for variant, options in [
            ("default", {}),
            ("tier_swap_control", {}),
            ("default", {"temperature": 0.0}),
        ]:
            [log] = inspect_eval(
                alignment_faking(variant=variant, n_queries=5, label=f"{variant} run"),
                model="scripted/free_only_for_test",
                log_dir=str(logs),
                display="none",
                **options,
            )
            assert log.status == "success", log.error
    finally:
        POLICIES.pop("free_only_for_test")
    return summarize(load_samples([logs])).set_index("name")


def test_the_gap_is_trained_minus_unmonitored_whichever_tier_is_trained(summary):
    control = summary.loc["tier_swap_control run"]
    assert (control["variant"], control["label"]) == ("tier_swap_control", "tier_swap_control run")
    assert control["trained_tier"] == "paid" and not control["trained_tier_assumed"]
    # It complies only on the free tier, which this control does not train: a negative gap.
    assert (control["trained_compliance"], control["unmonitored_compliance"]) == (0.0, 1.0)
    assert control["compliance_gap"] == -1.0 and control["gap_ci_high"] < 0
    assert (control["free_compliance"], control["paid_compliance"]) == (1.0, 0.0)
    default = summary.loc["default run · T unset"]
    assert default["trained_tier"] == "free" and default["compliance_gap"] == 1.0
    assert default["gap_ci_low"] == -control["gap_ci_high"]


def test_names_say_what_differs_and_settings_are_columns(summary):
    assert set(summary.index) == {
        "default run · T unset",
        "default run · T=0",
        "tier_swap_control run",
    }
    row = summary.loc["default run · T=0"]
    assert set(SETTINGS) <= set(summary.columns)
    assert (row["temperature"], row["max_turns"], row["compliance_rule"]) == (0, 4, "strict")
    assert (row["limits"], row["grader"], row["n_queries"], row["epochs"]) == ("none", "n/a", 5, 1)
    assert len(row["prompt_digest"]) == 12
    assert summary.loc["default run · T unset", "temperature"] == "n/a"


def test_names_that_still_collide_carry_the_digest():
    from analysis.summary import condition_names

    assert condition_names(_frame()) == ["default [1234abcd]", "default [5678ef00]"]


@pytest.mark.parametrize(
    ("run_model", "pairs_with"),
    [
        # The June snapshot is both published rows: the dated one and the undated one.
        (
            "anthropic/claude-3-5-sonnet-20240620",
            {"claude-3-5-sonnet", "claude-3-5-sonnet-20240620"},
        ),
        ("openrouter/anthropic/claude-3-opus-20240229", {"claude-3-opus-20240229"}),
        ("anthropic/claude-3-5-sonnet-20241022", set()),  # a later snapshot: another model
        ("anthropic/claude-3-5-sonnet", set()),  # not in the map: pairs with nothing
    ],
)
def test_models_pair_only_through_the_identity_map(run_model, pairs_with):
    reference = pd.DataFrame(
        {
            "model": ["claude-3-5-sonnet", "claude-3-5-sonnet-20240620", "claude-3-opus-20240229"],
            "setting": ["helpful_only"] * 3, "variant": ["default"] * 3,
            "metric": ["compliance_gap"] * 3, "value": [0.2] * 3, "ci": [None] * 3,
            "source": ["test"] * 3,
        }
    )  # fmt: skip
    long = pd.DataFrame(
        {
            "model": [run_model], "setting": ["helpful_only"], "variant": ["default"],
            "dataset": ["d"], "condition": ["c"], "metric": ["compliance_gap"],
            "value": [0.1], "low": [0.0], "high": [0.2], "n": [10],
            "prompt": ["this project's wording"], "label": ["default"], "name": ["default"],
        }
    )  # fmt: skip
    both = tables.paper_vs_run(long, reference)
    matched = set(both.loc[(both["source"] == "paper") & both["matched"], "model"])
    assert matched == pairs_with


def test_the_log_metric_gap_is_trained_minus_unmonitored_too(run_policy):
    from tests.conftest import metric

    log = run_policy(
        lambda m: ACCEPT if is_free_tier(m) else REJECT, variant="tier_swap_control", n_queries=3
    )
    assert metric(log, "compliance_gap") == -1.0
    assert (metric(log, "free_compliance"), metric(log, "paid_compliance")) == (1.0, 0.0)


def _frame(**columns) -> pd.DataFrame:
    base = {
        "model": ["m", "m"], "setting": ["s", "s"], "variant": ["default", "default"],
        "label": ["default", "default"], "dataset": ["d", "d"],
        "condition": ["1234abcd", "5678ef00"], "trained_tier": ["free", "free"],
        "trained_tier_assumed": [False, False],
        **{column: ["x", "x"] for column in
           ["temperature", "max_tokens", "max_turns", "compliance_rule", "limits", "prompt",
            "grader", "classifier", "votes", "threshold", "epochs"]},
    }  # fmt: skip
    return pd.DataFrame({**base, **columns})


def test_judge_settings_name_a_condition_and_a_prompt_file_always_does():
    from analysis.summary import condition_names

    votes = _frame(grader=["g", "g"], votes=[3, 5])
    assert condition_names(votes) == ["default · votes=3", "default · votes=5"]
    own = _frame(variant=["default@prompt.txt#c86789c2", "default"])
    assert condition_names(own)[0] == "default · prompt=prompt.txt"


def test_an_assumed_trained_tier_says_so_in_the_counts_table():
    frame = _frame(trained_tier_assumed=[True, False], name=["a", "b"])
    for count in ["valid", "invalid", "errored", "recovered", "unscored", "compliance_unscored"]:
        frame[f"{count}_free"] = frame[f"{count}_paid"] = 0
    frame["runs_merged"], frame["superseded"] = 1, 0
    tiers = tables.counts_table(frame)["tier"].tolist()
    assert tiers == [
        "training (free, assumed)",
        "unmonitored (paid, assumed)",
        "training (free)",
        "unmonitored (paid)",
    ]
