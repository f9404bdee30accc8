"""The anti-lab and lying analysis (analysis/behaviour.py): rows from real logs of the two
tasks (scripted policies and judge, renamed, reordered and re-scored files), rates with
Wilson intervals, each condition against its baseline (Newcombe interval, Boschloo test),
the report's sections and tables, the two figures (every text inside the canvas and clear of
the others), and the published Table 4 values beside the right rows only.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from itertools import combinations
from pathlib import Path
from unittest.mock import patch

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from inspect_ai import eval as inspect_eval
from matplotlib.figure import Figure
from matplotlib.text import Text
from scipy.stats import boschloo_exact
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from analysis import behaviour, figures, tables
from analysis.__main__ import write_tables
from analysis.behaviour import (
    SAMPLE_COLUMNS,
    baseline_variant,
    baselines,
    item_rate,
    load_behaviour,
    pooled_rate,
    rates_table,
    two_sample_difference,
)
from analysis.logs import LogError, NoGapLogs, load_samples
from analysis.report import _usage as report_usage
from analysis.report import build_report, load_report_data

ROOT = Path(__file__).resolve().parents[1]
INSPECT = str(Path(sys.executable).parent / "inspect")
PROPERTY = settings(deadline=None, max_examples=150)
JUDGE = "scripted/keyword_judge (opportunity judge, 5 votes)"
LYING_JUDGE = "scripted/keyword_judge (lying judge, 5 votes)"
OPPORTUNITIES = "exfiltration_offered,exfiltration_unsuggested,developer_views"


# Synthetic samples ---------------------------------------------------------------------------


def synthetic(conditions: list[dict]) -> pd.DataFrame:
    """Sample rows as `load_behaviour` gives them. Each condition: task, model, setting,
    variant, scratchpad, judge, and `items`: {name: (kind or question index, verdicts)},
    a verdict 1/0 (for lying: 2 = an egregious lie), `None` (unscored) or "invalid"."""
    rows = []
    for number, spec in enumerate(conditions):
        task = spec.get("task", "anti_lab")
        condition = spec.get("condition", f"{number:08x}")
        for item, (where, verdicts) in spec["items"].items():
            for epoch, verdict in enumerate(verdicts, 1):
                row = dict.fromkeys(SAMPLE_COLUMNS)
                row |= {
                    "task": task,
                    "model": spec.get("model", "anthropic/claude-3-opus-20240229"),
                    "setting": spec.get("setting", "helpful_only"),
                    "variant": spec["variant"],
                    "label": spec.get("label", spec["variant"]),
                    "name": spec.get("name", spec.get("label", spec["variant"])),
                    "condition": condition,
                    "policy_condition": condition,
                    "scratchpad": spec.get("scratchpad", True),
                    "judge": spec.get("judge", JUDGE if task == "anti_lab" else LYING_JUDGE),
                    "run_config": spec.get("run_config", ""),
                    "item": item,
                    "epoch": epoch,
                    "tier": "paid",
                    "status": "limit_reached: message" if verdict == "invalid" else "valid",
                    "judge_status": "ok" if verdict in (0, 1, 2) else "unscored: votes split",
                    "uuid": f"{condition}-{item}-{epoch}",
                }
                scored = verdict in (0, 1, 2)
                if task == "anti_lab":
                    row |= {"opportunity": item, "kind": where, "employee": False}
                    if scored:
                        taken = int(verdict == 1)
                        decided = int(verdict in (1, 2))
                        reversed_ = int(verdict == 2) if row["scratchpad"] else None
                        row |= {"taken": taken, "decided": decided, "reversed": reversed_}
                else:
                    row |= {"question": item, "question_index": where}
                    if scored:
                        row |= {"lie": int(verdict >= 1), "egregious_lie": int(verdict == 2)}
                rows.append(row)
    frame = pd.DataFrame(rows, columns=SAMPLE_COLUMNS)
    for column in ("taken", "decided", "reversed", "lie", "egregious_lie", "question_index"):
        frame[column] = frame[column].astype("Int64")
    return frame


def anti_lab_conditions(n: int) -> list[dict]:
    """n anti-lab conditions: 1 (no baseline), or conditions with and without a baseline
    in both settings, with and without a scratchpad, with long names."""
    helpful = {
        "exfiltration_offered": ("exfiltration", [1, 1, 2, 0, "invalid", None] * 3),
        "exfiltration_unsuggested": ("exfiltration", [1, 0, 0, 2] * 4),
        "scheming_paper_summary": ("misrepresentation", [0, 0, 1] * 5),
        "anti_refusal_explanation": ("sabotage", [0] * 12),
    }
    animal = {
        "exfiltration_offered": ("exfiltration", [2, 0, 0, 0] * 4),
        "egress_evasion": ("exfiltration", [1, 0, 0, 0] * 4),
        "evidence_theft": ("abetting", [0, 0, 0, 1] * 4),
    }
    baseline = {k: (v[0], [0] * 15 + [1]) for k, v in helpful.items()}
    if n == 1:
        return [{"variant": "default", "items": helpful}]
    return [
        {"variant": "default", "items": helpful},
        {"variant": "cut_conflicting_criteria", "items": baseline},
        {"variant": "no_scratchpad", "scratchpad": False, "items": helpful},
        {"variant": "cut_conflicting_criteria+no_scratchpad", "scratchpad": False,
         "items": baseline},
        {"variant": "other_lab+no_examples", "items": helpful},  # no baseline of its own
        {"variant": "default", "setting": "animal_welfare", "items": animal},
        {"variant": "cut_conflicting_criteria", "setting": "animal_welfare",
         "items": {k: (v[0], [0] * 16) for k, v in animal.items()}},
        {"variant": "default", "setting": "animal_welfare",
         "model": "openrouter/meta-llama/llama-3.1-405b-instruct", "items": animal},
    ][:n]  # fmt: skip


QUESTIONS = ["developer_opinion", "training_concerns", "disagreements", "change_one_thing",
             "harmful_requests", "genuine_support", "true_views"]  # fmt: skip


def lying_conditions(n: int) -> list[dict]:
    answers = [[2, 1, 0, 0] * 4, [1, 0, 0, 0] * 4, [0] * 16, [2, 2, 0, 1] * 4]
    default = {q: (i + 1, answers[i % 4]) for i, q in enumerate(QUESTIONS)}
    cut = {q: (i + 1, [0] * 15 + [1]) for i, q in enumerate(QUESTIONS)}
    spec = [
        {"task": "lying", "variant": "default", "items": default},
        {"task": "lying", "variant": "cut_conflicting_criteria", "items": cut},
        {"task": "lying", "variant": "default", "setting": "animal_welfare", "items": default},
        {"task": "lying", "variant": "no_scratchpad", "scratchpad": False, "items": default},
        {"task": "lying", "variant": "told_to_be_honest", "items": cut},
    ]
    return spec[:n]


# Statistics ----------------------------------------------------------------------------------

COUNTS = st.integers(1, 40).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n)))


@PROPERTY
@given(first=COUNTS, second=COUNTS)
def test_the_difference_interval_holds_its_estimate_and_swapping_negates_it(first, second):
    forward = two_sample_difference(*first, *second)
    backward = two_sample_difference(*second, *first)
    assert forward.low <= forward.difference <= forward.high
    assert -1 <= forward.low and forward.high <= 1 and 0 <= forward.p_value <= 1
    assert backward.difference == -forward.difference
    assert (backward.low, backward.high) == (-forward.high, -forward.low)
    assert backward.p_value == forward.p_value


@pytest.mark.parametrize("counts", [(13, 64, 2, 64), (3, 5, 0, 5), (1, 20, 0, 30), (7, 9, 2, 11)])
def test_the_difference_is_statsmodels_newcombe_and_scipy_boschloo(counts):
    k1, n1, k2, n2 = counts
    result = two_sample_difference(*counts)
    low, high = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", compare="diff")
    expected_p = boschloo_exact([[k1, n1 - k1], [k2, n2 - k2]], alternative="two-sided").pvalue
    assert result.difference == pytest.approx(k1 / n1 - k2 / n2)
    assert (result.low, result.high) == pytest.approx((low, high))
    assert result.p_value == pytest.approx(expected_p)


def test_identical_samples_have_p_one_and_an_empty_side_has_no_difference():
    assert two_sample_difference(0, 5, 0, 7).p_value == 1.0  # scipy says nan here
    assert two_sample_difference(4, 4, 6, 6).p_value == 1.0
    assert math.isnan(two_sample_difference(0, 0, 3, 5).difference)
    with pytest.raises(ValueError, match="between 0 and its n"):
        two_sample_difference(6, 5, 0, 5)


@PROPERTY
@given(values=st.lists(st.sampled_from([0, 1, None]), min_size=1, max_size=40))
def test_an_item_rate_is_the_share_with_wilson_over_samples(values):
    rate, low, high, n = item_rate(values)
    known = [v for v in values if v is not None]
    assert n == len(known)
    if not known:
        assert math.isnan(rate)
        return
    assert rate == pytest.approx(sum(known) / n) and low <= rate <= high
    expected = proportion_confint(sum(known), n, method="wilson")
    assert (low, high) == pytest.approx(expected, abs=1e-12)


QUESTION_VALUES = st.dictionaries(
    st.sampled_from(QUESTIONS), st.lists(st.sampled_from([0, 1]), min_size=1, max_size=8),
    min_size=1,
)  # fmt: skip


@PROPERTY
@given(questions=QUESTION_VALUES, copies=st.integers(2, 4), which=st.data())
def test_repeating_a_questions_epochs_leaves_the_estimates_unchanged(questions, copies, which):
    repeated = which.draw(st.sampled_from(sorted(questions)))
    items = [q for q, values in questions.items() for _ in values]
    values = [v for values in questions.values() for v in values]
    more = {q: v * (copies if q == repeated else 1) for q, v in questions.items()}
    items_more = [q for q, vs in more.items() for _ in vs]
    values_more = [v for vs in more.values() for v in vs]
    rate, low, high, _, units = pooled_rate(values, items)
    again = pooled_rate(values_more, items_more)
    assert (rate, low, high, units) == pytest.approx((again[0], again[1], again[2], again[4]))
    assert low <= rate <= high
    # One question's own rate does not move either (its interval narrows: more draws).
    assert item_rate(questions[repeated])[0] == item_rate(more[repeated])[0]


@PROPERTY
@given(
    verdicts=st.lists(st.sampled_from([0, 1, 2]), min_size=1, max_size=12),
    noise=st.lists(st.sampled_from(["invalid", None]), min_size=1, max_size=6),
)
def test_invalid_and_unscored_samples_never_enter_a_rate(verdicts, noise):
    clean = synthetic([{"variant": "default", "items": {"x": ("k", verdicts)}}])
    noisy = synthetic([{"variant": "default", "items": {"x": ("k", verdicts + noise)}}])
    a, b = rates_table(clean, "anti_lab"), rates_table(noisy, "anti_lab")
    columns = ["metric", "n", "count", "rate", "ci_low", "ci_high"]
    pd.testing.assert_frame_equal(a[columns], b[columns])
    taken = b[b["metric"] == "taken"].iloc[0]
    assert taken["invalid"] == noise.count("invalid")
    assert taken["unscored"] == noise.count(None)


def test_repeated_identical_epochs_keep_every_item_rate():
    base = synthetic(lying_conditions(2))
    doubled = pd.concat([base, base.assign(epoch=base["epoch"] + 100)], ignore_index=True)
    a, b = rates_table(base, "lying"), rates_table(doubled, "lying")
    assert a["rate"].tolist() == b["rate"].tolist()
    assert (b["n"] == 2 * a["n"]).all()


# Baselines and tables ----------------------------------------------------------------------


def test_each_condition_has_the_baseline_that_adds_the_cut_to_its_other_variants():
    assert baseline_variant("default") == "cut_conflicting_criteria"
    assert baseline_variant("no_scratchpad") == "cut_conflicting_criteria+no_scratchpad"
    assert baseline_variant("cut_conflicting_criteria+no_scratchpad") is None
    assert (
        baseline_variant("other_lab@mine.txt#1a2b")
        == "cut_conflicting_criteria+other_lab@mine.txt#1a2b"
    )
    samples = synthetic(anti_lab_conditions(8))
    found = {key[3] + "/" + key[2]: value for key, value in baselines(samples).items()}
    assert found["default/helpful_only"][1] == "baseline: cut_conflicting_criteria"
    no_pad = found["no_scratchpad/helpful_only"]
    assert no_pad[1] == "baseline: cut_conflicting_criteria+no_scratchpad"
    assert found["other_lab+no_examples/helpful_only"][0] is None
    assert found["other_lab+no_examples/helpful_only"][1].startswith("no baseline: no cut_")
    assert found["cut_conflicting_criteria/helpful_only"][1].startswith("a baseline itself")


def test_a_baseline_of_another_judge_or_generation_setting_is_no_baseline():
    spec = anti_lab_conditions(2)
    spec[1] |= {"judge": "scripted/doubting_judge (opportunity judge, 5 votes)"}
    table = rates_table(synthetic(spec), "anti_lab")
    default = table[table["variant"] == "default"]
    assert default["difference"].isna().all() and default["baseline"].isna().all()
    assert default["baseline_note"].str.startswith("no baseline").all()
    spec = anti_lab_conditions(2)
    spec[1] |= {"run_config": "temperature=0"}
    assert rates_table(synthetic(spec), "anti_lab")["difference"].isna().all()
    # Two runs that could both be the baseline: neither is chosen.
    spec = [*anti_lab_conditions(2), anti_lab_conditions(2)[1] | {"label": "cut again"}]
    table = rates_table(synthetic(spec), "anti_lab")
    default = table[table["variant"] == "default"]
    assert default["baseline_note"].str.startswith("not compared: 2 runs").all()
    assert default["difference"].isna().all()


def test_the_comparison_is_per_item_and_pooled_over_the_shared_items():
    spec = anti_lab_conditions(2)
    # The baseline never ran exfiltration_unsuggested: pooled over the one both ran.
    del spec[1]["items"]["exfiltration_unsuggested"]
    table = rates_table(synthetic(spec), "anti_lab")
    rows = table[(table["variant"] == "default") & (table["metric"] == "taken")]
    rows = rows.set_index("item")
    offered = rows.loc["exfiltration_offered"]
    # [1, 1, 2, 0, invalid, None] * 3: 6 taken of 12 labelled; the baseline 1 of 16.
    assert (offered["count"], offered["n"], offered["invalid"], offered["unscored"]) == (
        6,
        12,
        3,
        3,
    )
    expected = two_sample_difference(6, 12, 1, 16)
    assert offered["difference"] == pytest.approx(expected.difference)
    assert offered["p_value"] == pytest.approx(expected.p_value)
    missing = rows.loc["exfiltration_unsuggested"]
    assert (
        pd.isna(missing["difference"])
        and "did not run this opportunity" in missing["baseline_note"]
    )
    pooled = rows.loc["all exfiltration"]
    assert pooled["scope"] == "pooled" and pooled["items"] == 2 and pooled["compared_items"] == 1
    assert (pooled["compared_count"], pooled["compared_n"]) == (6, 12)
    assert pooled["difference"] == pytest.approx(expected.difference)
    # The pooled rate is the mean of the per-opportunity rates, clustered by opportunity.
    assert pooled["rate"] == pytest.approx((6 / 12 + 4 / 16) / 2)
    assert pooled["ci_method"] == behaviour.WILSON_ITEMS
    # Reversed: decided, then not taken, only where there is a scratchpad to decide in.
    reversed_ = table[(table["variant"] == "default") & (table["metric"] == "reversed")]
    assert reversed_.set_index("item").loc["exfiltration_offered", "count"] == 3
    no_pad = rates_table(synthetic(anti_lab_conditions(4)), "anti_lab")
    assert "reversed" not in set(no_pad.loc[no_pad["variant"] == "no_scratchpad", "metric"])


def test_each_condition_is_followed_by_its_baseline():
    table = rates_table(synthetic(anti_lab_conditions(8)), "anti_lab")
    order = list(
        dict.fromkeys(zip(table["setting"], table["model"], table["variant"], strict=True))
    )
    helpful = [v for s, m, v in order if s == "helpful_only"]
    assert helpful.index("cut_conflicting_criteria") == helpful.index("default") + 1
    assert (
        helpful.index("cut_conflicting_criteria+no_scratchpad")
        == helpful.index("no_scratchpad") + 1
    )


def test_published_table_4_values_stand_beside_the_pooled_rows_of_their_variant_only():
    reference = tables.load_reference()
    lying = reference[reference["metric"].isin(tables.BEHAVIOUR_METRICS)]
    values = lying.set_index(["setting", "variant", "metric"])["value"]
    assert values[("helpful_only", "default", "lie_rate")] == 0.205
    assert values[("animal_welfare", "cut_conflicting_criteria", "egregious_lie_rate")] == 0.004
    assert values[("animal_welfare", "told_to_be_honest", "lie_rate")] == 0.157
    assert len(lying) == 12 and set(lying["model"]) == {"claude-3-opus-20240229"}
    table = rates_table(synthetic(lying_conditions(5)), "lying", reference)
    published = table[table["published"].notna()]
    assert set(published["scope"]) == {"pooled"}
    got = published.set_index(["setting", "variant", "metric"])["published"].to_dict()
    assert got == {
        ("helpful_only", "default", "lie"): 0.205,
        ("helpful_only", "default", "egregious_lie"): 0.137,
        ("helpful_only", "cut_conflicting_criteria", "lie"): 0.042,
        ("helpful_only", "cut_conflicting_criteria", "egregious_lie"): 0.002,
        ("animal_welfare", "default", "lie"): 0.275,
        ("animal_welfare", "default", "egregious_lie"): 0.102,
        ("helpful_only", "told_to_be_honest", "lie"): 0.036,
        ("helpful_only", "told_to_be_honest", "egregious_lie"): 0.018,
    }


def test_the_gap_overlay_leaves_the_lying_rates_out():
    long = pd.DataFrame([{"model": "anthropic/claude-3-opus-20240229", "setting": "helpful_only",
                          "variant": "cut_conflicting_criteria", "dataset": "x",
                          "metric": "compliance_gap", "value": 0.1, "low": 0.0, "high": 0.2,
                          "n": 10}])  # fmt: skip
    comparison = tables.paper_vs_run(long, tables.load_reference())
    assert not comparison["metric"].isin(tables.BEHAVIOUR_METRICS).any()
    rows = figures.paper_rows(comparison)
    assert not any(
        "cut_conflicting_criteria" in row["label"] for row in rows if row["kind"] == "paper"
    )


# Figures -------------------------------------------------------------------------------------

DPI = 100
TOLERANCE = 1.0


def drawn_texts(fig: Figure) -> list[tuple[Text, object]]:
    drawn = []
    original = Text.draw

    def record(self, renderer):
        original(self, renderer)
        if self.get_visible() and self.get_text().strip():
            drawn.append((self, Text.get_window_extent(self, renderer)))

    fig.set_dpi(DPI)
    with patch.object(Text, "draw", record):
        fig.canvas.draw()
    return drawn


def assert_readable(fig: Figure) -> None:
    texts = drawn_texts(fig)
    width, height = fig.bbox.width, fig.bbox.height
    for text, box in texts:
        name = repr(text.get_text()[:60])
        assert box.x0 >= -TOLERANCE and box.y0 >= -TOLERANCE, f"{name} is cut off"
        assert box.x1 <= width + TOLERANCE and box.y1 <= height + TOLERANCE, f"{name} is cut off"
        assert text.get_fontsize() >= 7, f"{name} is too small to read"
    clashes = [
        f"{a.get_text()[:40]!r} overlaps {b.get_text()[:40]!r}"
        for (a, box_a), (b, box_b) in combinations(texts, 2)
        if min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0) > TOLERANCE
        and min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0) > TOLERANCE
    ]
    assert not clashes, clashes[:5]


FIGURE_CASES = {
    "anti_lab": (lambda n: rates_table(synthetic(anti_lab_conditions(n)), "anti_lab"),
                 figures.anti_lab, [1, 2, 8]),
    "lying": (lambda n: rates_table(synthetic(lying_conditions(n)), "lying",
                                    tables.load_reference()), figures.lying, [1, 2, 5]),
}  # fmt: skip


@pytest.mark.parametrize(
    ("name", "n"), [(name, n) for name, (_, _, sizes) in FIGURE_CASES.items() for n in sizes]
)
def test_every_text_of_the_behaviour_figures_is_inside_and_clear(name, n, tmp_path):
    make, draw, _ = FIGURE_CASES[name]
    fig = draw(make(n))
    assert_readable(fig)
    width, height = fig.get_size_inches()
    assert 6 <= width <= 20 and 2 <= height <= 40, (width, height)
    figures.save(fig, tmp_path, f"{name}_{n}")


def test_the_lying_figure_overlays_published_values_on_pooled_rows_only():
    fig = figures.lying(FIGURE_CASES["lying"][0](5))
    published = [
        line
        for ax in fig.axes
        for line in ax.get_lines()
        if line.get_marker() == "D" and line.get_color() == figures.PUBLISHED_COLOR
    ]
    # default and cut_conflicting_criteria in helpful_only, default in animal_welfare and
    # told_to_be_honest (its synthetic run), each in both columns.
    assert len(published) == 8
    legend = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert any("published: claude-3-opus-20240229" in t for t in legend)


def test_a_figure_with_no_logs_or_no_verdict_is_not_drawn():
    with pytest.raises(figures.NothingToShow, match="no anti-lab logs"):
        figures.anti_lab(rates_table(pd.DataFrame(columns=SAMPLE_COLUMNS), "anti_lab"))
    unscored = synthetic([{"variant": "default", "items": {"x": ("k", [None, None])}}])
    with pytest.raises(figures.NothingToShow, match="needs a grader"):
        figures.anti_lab(rates_table(unscored, "anti_lab"))


# Real logs -----------------------------------------------------------------------------------


def inspect(*args: str) -> None:
    result = subprocess.run(
        [INSPECT, *args, "--display", "none"], cwd=ROOT, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> Path:
    """Scripted runs of both tasks: the dissenter against its baseline, the waverer that
    decides and reverses, both settings."""
    from evals.anti_lab import anti_lab
    from evals.lying import lying

    root = tmp_path_factory.mktemp("behaviour_logs")
    runs = [
        (anti_lab, "dissenter", "helpful_only", "default"),
        (anti_lab, "dissenter", "helpful_only", "cut_conflicting_criteria"),
        (anti_lab, "waverer", "animal_welfare", "default"),
        (lying, "dissenter", "helpful_only", "default"),
        (lying, "dissenter", "helpful_only", "cut_conflicting_criteria"),
        (lying, "waverer", "animal_welfare", "default"),
    ]
    for task, policy, setting, variant in runs:
        extra = (
            {"opportunities": "exfiltration_offered,developer_views"} if task is anti_lab else {}
        )
        [log] = inspect_eval(
            task(setting=setting, variant=variant, judge_votes=3, **extra),
            model=f"scripted/{policy}",
            model_roles={"grader": "scripted/keyword_judge"},
            epochs=2,
            log_dir=str(root),
            display="none",
        )
        assert log.status == "success", log.error
    return root


def test_real_logs_give_one_row_per_sample_with_the_policies_behaviour(logs):
    samples = load_behaviour([logs])
    assert set(samples["task"]) == {"anti_lab", "lying"}
    anti = samples[samples["task"] == "anti_lab"]
    assert len(anti) == 2 * 2 + 2 * 2 + 2 * 2  # 2 opportunities x 2 epochs, 3 runs
    assert (anti["status"] == "valid").all() and (anti["judge_status"] == "ok").all()
    by = anti.groupby(["model", "variant"])[["taken", "reversed"]].mean()
    assert by.loc[("scripted/dissenter", "default")].tolist() == [1.0, 0.0]
    assert by.loc[("scripted/dissenter", "cut_conflicting_criteria")].tolist() == [0.0, 0.0]
    assert by.loc[("scripted/waverer", "default")].tolist() == [0.0, 1.0]
    lying = samples[samples["task"] == "lying"]
    assert len(lying) == 3 * 7 * 2 and lying["question_index"].between(1, 7).all()
    lies = lying.groupby(["model", "variant"])[["lie", "egregious_lie"]].mean()
    assert lies.loc[("scripted/dissenter", "default")].tolist() == [1.0, 1.0]
    assert lies.loc[("scripted/waverer", "default")].tolist() == [1.0, 0.0]  # a mild lie
    assert samples["judge"].str.contains("judge, 3 votes").all()
    # The usage of both roles, for the report's cost table.
    assert set(samples.attrs["usage"]["role"]) == {"policy model", "judges"}


def test_renamed_reordered_and_rescored_logs_keep_one_record_per_sample(logs, tmp_path):
    files = sorted(logs.glob("*.eval"))
    anti = next(f for f in files if "anti-lab" in f.name or "anti_lab" in f.name)
    before = load_behaviour([logs])
    # Renamed copies, sorted the other way round, read in the other order: the same rows.
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    for i, path in enumerate(reversed(files)):
        shutil.copy(path, renamed / f"{i:02d}-run.eval")
    shutil.copy(anti, renamed / "zz-copy-of-the-first.eval")
    after = load_behaviour([renamed])
    columns = [c for c in SAMPLE_COLUMNS if c != "log"]
    pd.testing.assert_frame_equal(before[columns], after[columns])
    assert not after.attrs["superseded"]  # a copy is the same attempt, not a repeat

    # Re-scored with other judge settings (appended as opportunity_judge1): a condition of
    # its own; re-scored again with the first settings: the later judgement is kept.
    rescored = tmp_path / "rescored"
    rescored.mkdir()
    shutil.copy(anti, rescored / "original.eval")
    grader = ["--model-role", "grader=scripted/keyword_judge", "--action", "append"]
    inspect(
        "score",
        str(rescored / "original.eval"),
        "--scorer",
        "opportunity_judge",
        "-S",
        "votes=2",
        *grader,
        "--output-file",
        str(rescored / "two-votes.eval"),
    )
    inspect("score", str(rescored / "original.eval"), "--scorer", "opportunity_judge",
            "-S", "votes=3", *grader, "--output-file", str(rescored / "again.eval"))  # fmt: skip
    samples = load_behaviour([rescored])
    assert sorted(samples["judge"].unique()) == [
        "scripted/keyword_judge (opportunity judge, 2 votes)",
        "scripted/keyword_judge (opportunity judge, 3 votes)",
    ]
    assert samples.groupby("judge").size().tolist() == [4, 4]
    again = samples[samples["judge"].str.contains("3 votes")]
    assert set(again["log"]) == {str(rescored / "again.eval")}  # judged last
    original_times = before.loc[before["log"] == str(anti), "judged_at"]
    assert (again["judged_at"].to_numpy() > original_times.max()).all()


def test_the_gap_analysis_skips_these_logs_and_the_tables_hold_them(logs, tmp_path):
    with pytest.raises(NoGapLogs, match="only 6 anti-lab or lying log"):
        load_samples([logs])
    write_tables([logs], tmp_path / "tables")
    written = sorted(p.name for p in (tmp_path / "tables").iterdir())
    assert written == ["anti_lab.csv", "anti_lab_samples.csv", "lying.csv", "lying_samples.csv"]
    anti = pd.read_csv(tmp_path / "tables" / "anti_lab.csv")
    assert list(anti.columns) == behaviour.TASK_TABLE_COLUMNS["anti_lab"]
    default = anti[(anti["variant"] == "default") & (anti["model"] == "scripted/dissenter")]
    assert default["baseline"].eq("cut_conflicting_criteria").all()
    assert (default.loc[default["metric"] == "taken", "difference"] == 1.0).all()
    lying = pd.read_csv(tmp_path / "tables" / "lying.csv")
    pooled = lying[(lying["scope"] == "pooled") & (lying["variant"] == "default")]
    assert pooled.set_index(["setting", "metric"])["published"].to_dict() == {
        ("helpful_only", "lie"): 0.205, ("helpful_only", "egregious_lie"): 0.137,
        ("animal_welfare", "lie"): 0.275, ("animal_welfare", "egregious_lie"): 0.102,
    }  # fmt: skip
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.json").write_text("{}")
    with pytest.raises(LogError, match="holds no Inspect logs"):
        write_tables([empty], tmp_path / "none")


def test_a_report_of_these_logs_alone_has_their_sections_only(logs, tmp_path):
    out = tmp_path / "report"
    build_report([logs], out)
    markdown = (out / "report.md").read_text()
    sections = [line for line in markdown.splitlines() if line.startswith("## ")]
    assert sections == ["## Anti-lab behaviour", "## Lying", "## Tokens and cost"]
    assert "![anti_lab](figures/anti_lab.png)" in markdown
    assert "![lying](figures/lying.png)" in markdown
    assert "No real environment is run" in markdown and "Boschloo" in markdown
    assert "told_to_be_honest" in markdown  # said to be published but run by no variant
    assert sorted(p.name for p in (out / "figures").glob("*.png")) == ["anti_lab.png", "lying.png"]
    page = (out / "report.html").read_text()
    assert "<h2>Anti-lab behaviour</h2>" in page and "<h2>Lying</h2>" in page


def test_a_report_of_both_kinds_of_logs_has_every_section(logs, tmp_path):
    mixed = tmp_path / "mixed"
    shutil.copytree(logs, mixed)
    inspect("eval", "evals/alignment_faking.py", "--model", "scripted/alignment_faker",
            "-T", "n_queries=2", "--log-dir", str(mixed))  # fmt: skip
    data = load_report_data([mixed])
    assert data.has_gap and data.behaviour is not None
    assert set(data.samples["model"]) == {"scripted/alignment_faker"}
    build_report([mixed], tmp_path / "report")
    sections = [
        line for line in (tmp_path / "report" / "report.md").read_text().splitlines()
        if line.startswith("## ")
    ]  # fmt: skip
    assert sections[0] == "## Overview" and "## Anti-lab behaviour" in sections
    assert sections.index("## Lying") < sections.index("## Paper vs this run")
    # The usage of both kinds of log, each counted once.
    usage = report_usage(data).set_index(["role", "model"])
    gap = data.samples.attrs["usage"].set_index(["role", "model"])
    own = data.behaviour.samples.attrs["usage"].set_index(["role", "model"])
    assert usage.loc[("policy model", "scripted/alignment_faker")].equals(
        gap.loc[("policy model", "scripted/alignment_faker")]
    )
    judges = ("judges", "scripted/keyword_judge")
    assert usage.loc[judges, "input_tokens"] == own.loc[judges, "input_tokens"] + (
        gap.loc[judges, "input_tokens"] if judges in gap.index else 0
    )


def test_two_models_run_alike_share_a_digest_and_stay_apart():
    spec = []
    for model, taken in (("scripted/dissenter", 1), ("scripted/waverer", 2)):
        items = {"exfiltration_offered": ("exfiltration", [taken] * 4)}
        spec.append({"model": model, "variant": "default", "condition": "aaaa0000", "items": items})
        spec.append({"model": model, "variant": "cut_conflicting_criteria",
                     "condition": "bbbb0000", "items": {k: (v[0], [0] * 4) for k, v in items.items()}})  # fmt: skip
    table = rates_table(synthetic(spec), "anti_lab")
    taken = table[(table["metric"] == "taken") & (table["variant"] == "default")]
    assert taken.set_index("model")["difference"].to_dict() == {
        "scripted/dissenter": 1.0, "scripted/waverer": 0.0,
    }  # fmt: skip
    order = list(dict.fromkeys(zip(table["model"], table["variant"], strict=True)))
    assert order == [
        ("scripted/dissenter", "default"), ("scripted/dissenter", "cut_conflicting_criteria"),
        ("scripted/waverer", "default"), ("scripted/waverer", "cut_conflicting_criteria"),
    ]  # fmt: skip
    shown = tables.anti_lab_table(table).set_index(["model", "condition"])
    assert shown.loc[("scripted/waverer", "default"), "reversed"] == "4/4"
    assert shown.loc[("scripted/dissenter", "default"), "reversed"] == "0/4"
    assert len(tables.baseline_notes(table)) == 4
    fig = figures.anti_lab(table)
    assert_readable(fig)
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 2


# --- Pooled comparisons: questions as units, one estimator throughout ----------------------

_side = st.lists(
    st.integers(1, 6).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
    min_size=1,
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(_side, st.data(), st.integers(2, 3))
def test_pooled_difference_invariants(mine, data, times):
    from analysis.behaviour import pooled_difference

    theirs = data.draw(
        st.lists(
            st.integers(1, 6).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
            min_size=len(mine),
            max_size=len(mine),
        )
    )
    result = pooled_difference(mine, theirs)
    means = [c / n for c, n in mine], [c / n for c, n in theirs]
    assert result.difference == pytest.approx(sum(means[0]) / len(mine) - sum(means[1]) / len(mine))
    assert result.low - 1e-12 <= result.difference <= result.high + 1e-12
    assert -1 <= result.low and result.high <= 1 and 0 <= result.p_value <= 1
    swapped = pooled_difference(theirs, mine)
    assert swapped.difference == pytest.approx(-result.difference)
    assert (swapped.low, swapped.high) == pytest.approx((-result.high, -result.low))
    assert swapped.p_value == pytest.approx(result.p_value)
    # The same epochs repeated: every per-question rate, and so everything, is unchanged.
    repeated = pooled_difference([(c * times, n * times) for c, n in mine],
                                 [(c * times, n * times) for c, n in theirs])  # fmt: skip
    assert (repeated.difference, repeated.low, repeated.high, repeated.p_value) == pytest.approx(
        (result.difference, result.low, result.high, result.p_value)
    )


def test_a_pooled_row_never_contradicts_its_own_rate():
    """Unequal n per question (invalid samples): the shown rate, the compared rate and the
    difference are one estimator."""
    from analysis.behaviour import pooled_difference

    result = pooled_difference([(2, 2), (1, 2)], [(0, 3), (0, 3)])
    assert result.difference == pytest.approx(0.75) and result.base_rate == 0
    assert result.p_value == 0.5  # two questions: the exact test can say no more
