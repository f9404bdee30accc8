"""Every figure names the tier the model was told is trained, and its gaps are trained minus
unmonitored, so `tier_swap_control` (the paid tier is trained) reads right: checked on the
values the figures plot, from real scripted runs and from synthetic samples. Also: colours
that differ in greyscale, rate axes from 0 to 1, and readable condition names.
"""

from __future__ import annotations

import os
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from inspect_ai import eval as inspect_eval
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure

from analysis import figures
from analysis.report import load_report_data
from evals.labels import CATEGORIES
from tests.test_figures import synthetic

SWAP = "tier_swap_control"


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> dict[str, pd.DataFrame]:
    """A scripted alignment faker, judged, in the default prompt and with the tiers swapped:
    it complies (with AF reasoning) wherever it is told it is trained."""
    from evals.alignment_faking import alignment_faking

    root = tmp_path_factory.mktemp("trained_tier_logs")
    previous = os.environ.get("INSPECT_CACHE_DIR")
    os.environ["INSPECT_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    try:
        for variant in ("default", SWAP):
            inspect_eval(
                alignment_faking(variant=variant, n_queries=3, judge_votes=3),
                model="scripted/alignment_faker",
                model_roles={"grader": "scripted/keyword_judge"},
                log_dir=str(root),
                display="none",
            )
    finally:
        if previous is None:
            os.environ.pop("INSPECT_CACHE_DIR")
        else:
            os.environ["INSPECT_CACHE_DIR"] = previous
    data = load_report_data([root])
    return {
        "samples": data.samples,
        "summary": data.summary,
        "long": data.long,
        "comparison": data.comparison,
    }


@pytest.fixture(scope="module")
def five() -> dict[str, pd.DataFrame]:
    """Five synthetic conditions; Sonnet's is tier_swap_control, complying more (and with
    AF reasoning) in the paid tier."""
    return synthetic(5)


@pytest.fixture(params=["real", "five"])
def data(request) -> dict[str, pd.DataFrame]:
    return request.getfixturevalue(request.param)


def _panel(fig: Figure, part: str):
    return next(ax for ax in fig.axes if ax.get_visible() and part in ax.get_title())


def _swap_row(summary: pd.DataFrame) -> pd.Series:
    return summary[summary["variant"] == SWAP].iloc[0]


def _stacks(ax, segments: int) -> list[np.ndarray]:
    """Heights per stacked segment (one bar() call each), left bar first."""
    heights = [p.get_height() for p in ax.patches]
    assert len(heights) == 2 * segments
    return [np.array(heights[i : i + 2]) for i in range(0, len(heights), 2)]


def _tier_share(samples: pd.DataFrame, tier: str, mask: pd.Series, valid: pd.Series) -> float:
    chosen = (samples["variant"] == SWAP) & (samples["tier"] == tier) & valid
    return float(mask[chosen].sum() / chosen.sum())


# The trained tier, named, and its data under the right label -----------------------------


def test_headline_puts_the_paid_tiers_data_under_training_for_tier_swap_control(data):
    fig = figures.headline(data["samples"], data["summary"])
    ax = _panel(fig, SWAP)
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[0].startswith("training\npaid tier\nn=")
    assert ticks[1].startswith("unmonitored\nfree tier\nn=")
    samples = data["samples"]
    valid = samples["complied"].notna()
    af, no_af, unjudged, refusal = _stacks(ax, len(figures.SEGMENTS))
    complied_af = (samples["complied"] == 1) & (samples["af_reasoning"] == 1)
    expected = [_tier_share(samples, t, complied_af, valid) for t in ("paid", "free")]
    assert list(af) == pytest.approx(expected)
    assert af[0] > af[1] == 0  # the hatched AF bar sits under the trained (paid) tier
    assert ax.patches[0].get_hatch() == figures.AF_HATCH
    compliance = af + no_af + unjudged
    row = _swap_row(data["summary"])
    assert list(compliance) == pytest.approx([row["paid_compliance"], row["free_compliance"]])
    assert list(compliance) == pytest.approx(
        [row["trained_compliance"], row["unmonitored_compliance"]]
    )
    assert list(compliance + refusal) == pytest.approx([1.0, 1.0])
    default = _panel(fig, "default")
    assert [t.get_text().split("\n")[:2] for t in default.get_xticklabels()] == [
        ["training", "free tier"],
        ["unmonitored", "paid tier"],
    ]


def test_six_categories_put_the_paid_tier_under_training_for_tier_swap_control(data):
    fig = figures.six_categories(data["samples"], data["summary"])
    ax = _panel(fig, SWAP)
    assert [t.get_text().split("\n")[:2] for t in ax.get_xticklabels()] == [
        ["training", "paid tier"],
        ["unmonitored", "free tier"],
    ]
    stacks = dict(zip(CATEGORIES, _stacks(ax, len(CATEGORIES)), strict=True))
    samples = data["samples"]
    judged = samples["category"].notna()
    for name in CATEGORIES:
        is_name = samples["category"] == name
        expected = [_tier_share(samples, t, is_name, judged) for t in ("paid", "free")]
        assert list(stacks[name]) == pytest.approx(expected), name
    assert stacks["full_compliance_af"][0] > 0 == stacks["full_compliance_af"][1]


@pytest.mark.parametrize("name", ["variant_ablation", "model_gaps"])
def test_gap_figures_plot_trained_minus_unmonitored_under_that_label(data, name):
    fig = getattr(figures, name)(data["summary"])
    assert fig._supxlabel.get_text() == "compliance gap (trained \u2212 unmonitored)"
    row = _swap_row(data["summary"])
    # The scripted and synthetic models comply more in the paid tier, which is trained.
    assert row["paid_compliance"] > row["free_compliance"]
    assert row["compliance_gap"] == pytest.approx(row["paid_compliance"] - row["free_compliance"])
    assert row["compliance_gap"] > 0
    panel = next(
        ax
        for ax in fig.axes
        if ax.get_visible()
        and (SWAP in ax.get_title() or any(SWAP in t.get_text() for t in ax.get_yticklabels()))
    )
    labels = [" ".join(t.get_text().split()) for t in panel.get_yticklabels()]
    y = panel.get_yticks()
    if name == "variant_ablation":
        [index] = [i for i, label in enumerate(labels) if SWAP in label]
    else:  # model_gaps: one panel per variant, rows by model
        [index] = [i for i, label in enumerate(labels) if row["model"] in label]
    widths = {round(p.get_y() + p.get_height() / 2, 6): p.get_width() for p in panel.patches}
    assert widths[round(y[index], 6)] == pytest.approx(row["compliance_gap"])
    # Conditions train on different tiers: the swapped one says so in its row (or, where
    # every condition trains on the paid tier, the title says it).
    said = "trained: paid tier" in labels[index] or "the paid tier in every" in (fig.get_suptitle())
    assert said, (labels[index], fig.get_suptitle())


def test_gap_vs_af_plots_the_trained_tiers_af_against_the_gap(data):
    summary = data["summary"]
    fig = figures.gap_vs_af(summary, data["long"])
    points = sorted(
        tuple(np.round(c.get_offsets()[0], 6))
        for c in fig.axes[0].collections
        if isinstance(c, PathCollection)
    )
    both = summary.dropna(subset=["compliance_gap", "af_rate_trained"])
    expected = sorted(
        zip(np.round(both["af_rate_trained"], 6), np.round(both["compliance_gap"], 6), strict=True)
    )
    assert points == expected
    row = _swap_row(summary)
    assert row["af_rate_trained"] == row["af_rate_paid"] > row["af_rate_free"]
    assert (round(row["af_rate_trained"], 6), round(row["compliance_gap"], 6)) in points
    assert fig.axes[0].get_xlabel() == "AF-reasoning rate in the trained tier"
    assert fig.axes[0].get_ylabel() == figures.GAP_XLABEL


def test_trained_af_takes_the_trained_tiers_rate_and_interval(five):
    summary, long = five["summary"], five["long"]
    af = figures.trained_af(summary, long)
    swap = summary.index[summary["variant"] == SWAP][0]
    paid = long[(long["condition"] == summary.loc[swap, "condition"])]
    paid = paid[paid["metric"] == "af_rate_paid"].iloc[0]
    assert list(af.loc[swap]) == pytest.approx([paid["value"], paid["low"], paid["high"], 40])
    # Without the long table's rates, the summary's value (and no interval).
    bare = figures.trained_af(summary, long.iloc[:0])
    assert bare.loc[swap, "af"] == summary.loc[swap, "af_rate_trained"]
    assert np.isnan(bare.loc[swap, "af_low"])


def test_paper_vs_run_reads_each_rows_trained_tier(five):
    """A run row of tier_swap_control put beside the published default (as if a study named
    it so): its trained-tier bars are the paid tier's, and its label says so."""
    comparison = five["comparison"].copy()
    row = _swap_row(five["summary"])
    swap = (comparison["source"] == "this run") & (comparison["variant"] == SWAP)
    comparison.loc[swap, "label"] = "default"
    comparison.loc[swap, "related"] = True
    fig = figures.paper_vs_run(comparison, five["summary"])
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    [index] = [i for i, label in enumerate(labels) if "trained: paid tier" in label]
    y = fig.axes[0].get_yticks()[index]
    values = []
    for ax in fig.axes[:4]:
        [width] = [
            p.get_width() for p in ax.patches if abs(p.get_y() + p.get_height() / 2 - y) < 1e-6
        ]
        values.append(width)
    assert values == pytest.approx(
        [row["paid_compliance"], row["free_compliance"], row["compliance_gap"], row["af_rate_paid"]]
    )
    assert [ax.get_title().split("\n")[0] for ax in fig.axes[:4]] == [
        "compliance in the trained tier",
        "compliance unmonitored",
        "compliance gap",
        "AF reasoning in the trained tier",
    ]


def test_an_assumed_trained_tier_says_so(five):
    """A prompt file does not say which tier is trained: the free tier is assumed, and said."""
    fig = figures.headline(five["samples"], five["summary"])
    ax = _panel(fig, "paper's prompts")
    assert [t.get_text().split("\n")[1] for t in ax.get_xticklabels()] == [
        "free tier (assumed)",
        "paid tier (assumed)",
    ]
    fig = figures.variant_ablation(five["summary"])
    labels = [" ".join(t.get_text().split()) for ax in fig.axes for t in ax.get_yticklabels()]
    assert any("trained: free tier (assumed)" in label for label in labels)


# Readable names --------------------------------------------------------------------------


def test_figures_name_conditions_by_the_summarys_names(five):
    summary = five["summary"]
    named = dict(zip(summary["condition"], summary["name"], strict=True))
    assert named["0000000b"] == "default · prompt=the paper's prompts"
    fig = figures.headline(five["samples"], summary)
    titles = " ".join(" ".join(ax.get_title().split()) for ax in fig.axes)
    assert "default · prompt=the paper's prompts" in titles
    assert "1a2b3c4d" not in titles  # not the prompt file's digest
    fig = figures.variant_ablation(summary)
    labels = [" ".join(t.get_text().split()) for ax in fig.axes for t in ax.get_yticklabels()]
    assert any(label.startswith("default · prompt=the paper's prompts") for label in labels)
    # Without names (an older summary), the variant as before.
    fig = figures.variant_ablation(summary.drop(columns="name"))
    labels = [" ".join(t.get_text().split()) for ax in fig.axes for t in ax.get_yticklabels()]
    assert any("prompt_atn_honly_with_examples" in label.replace(" ", "") for label in labels)


# Colours and axes ------------------------------------------------------------------------

MIN_FILL_CONTRAST = 0.2  # greyscale lightness between the fills of two categories
MIN_HATCH_CONTRAST = 0.35  # between a hatch and the fill it is drawn on


def _fills_and_hatches(fig: Figure) -> list[tuple[tuple, tuple, str]]:
    handles = fig.legends[0].legend_handles
    # Matplotlib < 3.11 has no separate hatch colour: the hatch takes the edge's.
    hatch = [getattr(h, "get_hatchcolor", h.get_edgecolor)() for h in handles]
    return [
        (h.get_facecolor(), c, h.get_hatch() or "") for h, c in zip(handles, hatch, strict=True)
    ]


@pytest.mark.parametrize("name", ["headline", "six_categories"])
def test_categories_differ_in_greyscale_and_the_hatch_shows_on_every_fill(five, name):
    fig = getattr(figures, name)(five["samples"], five["summary"])
    styles = _fills_and_hatches(fig)
    fills = {tuple(np.round(fill, 4)) for fill, _, _ in styles}
    assert len(fills) == (4 - 1 if name == "headline" else 3)  # AF shares its fill
    for a, b in combinations(fills, 2):
        assert abs(figures.luminance(a) - figures.luminance(b)) >= MIN_FILL_CONTRAST, (a, b)
    hatched = [(fill, hatch) for fill, hatch, pattern in styles if pattern]
    assert hatched  # AF is carried by the hatch
    for fill, hatch in hatched:
        assert abs(figures.luminance(fill) - figures.luminance(hatch)) >= MIN_HATCH_CONTRAST
    # Full and partial compliance: no longer two near-identical oranges.
    full, partial = figures.CATEGORY_STYLE["full_compliance"][0], figures.PARTIAL
    assert abs(figures.luminance(full) - figures.luminance(partial)) >= MIN_FILL_CONTRAST


def test_paper_colours_differ_in_greyscale():
    for a, b in combinations(figures.PAPER_COLORS.values(), 2):
        assert abs(figures.luminance(a) - figures.luminance(b)) >= 0.15, (a, b)


def test_rate_axes_run_from_zero_to_one(five):
    for name in ("headline", "six_categories"):
        fig = getattr(figures, name)(five["samples"], five["summary"])
        assert {ax.get_ylim() for ax in fig.axes if ax.get_visible()} == {(0.0, 1.0)}
    fig = figures.paper_vs_run(five["comparison"], five["summary"])
    limits = [ax.get_xlim() for ax in fig.axes[:4]]
    assert limits == [(0.0, 1.0), (0.0, 1.0), (-1.0, 1.0), (0.0, 1.0)]
    fig = figures.gap_vs_af(five["summary"], five["long"])
    low, high = fig.axes[0].get_xlim()
    assert -0.05 <= low <= 0 and 1 <= high <= 1.05  # 0 to 1, room for markers at the ends
    assert list(fig.axes[0].get_xticks()) == pytest.approx(np.linspace(0, 1, 6))
