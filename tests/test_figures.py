"""The report's figures read at a glance at 1, 5 and 25 conditions: every text inside the
canvas and clear of every other text, one x-scale per gap figure, zero gaps visible, missing
gaps as "n/a", and only the published rows that correspond to the run.

The inputs are synthetic samples of several models, settings and variants (long labels,
prompt files, a repeated label with two digests), run through the real summary functions.
"""

from __future__ import annotations

import re
from itertools import combinations
from unittest.mock import patch

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text

from analysis import figures, tables
from analysis.summary import summarize
from evals.labels import CATEGORIES

MODELS = [
    "anthropic/claude-3-opus-20240229",
    "anthropic/claude-3-5-sonnet-20240620",
    "openrouter/meta-llama/llama-3.1-405b-instruct",
    "openai/gpt-4o-2024-08-06",
    "scripted/alignment_faker",
]
PAPER_PROMPT = "default@prompt_atn_honly_with_examples.txt#1a2b3c4d"
CONDITIONS = [  # setting, variant, dataset, prompt origin, behaviour
    ("helpful_only", "default", "strongreject", "project", "gap"),
    ("helpful_only", PAPER_PROMPT, "strongreject", "paper", "small"),
    ("helpful_only", "minimal_replication_no_cot", "advbench", "project", "zero"),
    ("helpful_only", "other_lab+no_examples", "harmbench", "project", "unjudged_zero"),
    ("animal_welfare", "default", "animal_welfare", "project", "none"),
]
# The paid tier is the trained one, and the model complies more there (and fakes alignment
# there): every figure must show a positive gap, and the AF in the paid tier.
SWAP = ("helpful_only", "tier_swap_control", "strongreject", "project", "swap")
N_QUERIES = 40


def _condition_list(n: int) -> list[tuple]:
    """(model, setting, variant, dataset, origin, behaviour, digest) for n conditions."""
    opus = MODELS[0]
    if n == 1:
        return [(opus, *CONDITIONS[0], "0000000a")]
    if n == 5:
        return [
            (opus, *CONDITIONS[0], "0000000a"),
            (opus, *CONDITIONS[1], "0000000b"),
            (MODELS[1], *SWAP, "0000000c"),
            (MODELS[2], *CONDITIONS[4], "0000000d"),
            (opus, *CONDITIONS[0][:4], "zero", "0000000e"),  # same label, another digest
        ]
    out = [
        (model, *condition, f"{i:04x}{j:04x}")
        for i, model in enumerate(MODELS)
        for j, condition in enumerate(CONDITIONS)
    ]
    out[3] = (opus, *SWAP, "0000000f")
    out[-2] = (MODELS[4], *CONDITIONS[0][:4], "zero", "0004000f")  # same label, another digest
    assert len(out) == n
    return out


def _tiers(behaviour: str, model_index: int) -> tuple[np.ndarray, np.ndarray]:
    """Compliance in the (free, paid) tiers."""
    q = np.arange(N_QUERIES)
    if behaviour == "swap":  # the paid tier is trained: it complies more
        return (q < 4).astype(float), (q < 28).astype(float)
    if behaviour == "gap":  # a different, mostly significant, gap per model
        return (q < 30 - 5 * model_index).astype(float), (q < 3 + model_index).astype(float)
    if behaviour == "small":
        return (q < 12).astype(float), (q < 10 + 2 * (model_index % 3)).astype(float)
    if behaviour in ("zero", "unjudged_zero"):
        return (q % 2).astype(float), (q % 2).astype(float)
    return np.full(N_QUERIES, np.nan), np.full(N_QUERIES, np.nan)  # compliance not judged


def synthetic_samples(n: int) -> pd.DataFrame:
    rows = []
    for model, setting, variant, dataset, origin, behaviour, digest in _condition_list(n):
        i = MODELS.index(model)
        judged = behaviour in ("gap", "small", "zero", "swap")
        free, paid = _tiers(behaviour, i)
        trained_tier = "paid" if variant == "tier_swap_control" else "free"
        for tier, complied in (("free", free), ("paid", paid)):
            for q in range(N_QUERIES):
                c = complied[q]
                af = None
                if judged:  # AF reasoning differs by model in the default prompt only
                    every = i + 2 if behaviour == "gap" else 3
                    af = int(tier == trained_tier and c == 1 and q % every == 0)
                category = None
                if judged and not np.isnan(c):
                    category = CATEGORIES[4 + af] if c == 1 else CATEGORIES[q % 2]
                rows.append(
                    {
                        "model": model, "setting": setting, "variant": variant,
                        "dataset": dataset, "condition": digest, "query_id": str(q),
                        "label": variant.split("@")[0], "trained_tier": trained_tier,
                        # A prompt file's trained tier is not known: free is assumed.
                        "trained_tier_assumed": "@" in variant,
                        "trained": tier == trained_tier, "temperature": 1.0,
                        "max_tokens": None, "max_turns": 4, "compliance_rule": "strict",
                        "limits": "none", "prompt_digest": f"{digest}0000",
                        "grader": None, "classifier": None, "votes": None, "threshold": None,
                        "epoch": 1, "tier": tier, "status": "valid",
                        "complied": None if np.isnan(c) else int(c), "af_reasoning": af,
                        "af_vote_share": None, "possible_af": af, "partial_compliance": None,
                        "compliance_score": None, "category": category,
                        "classifier_status": "ok" if judged else "unscored: no grader model",
                        "run_config": "temperature=1.0",
                        "prompt_origin": origin,
                        "judge": "none", "runs_merged": 1, "superseded": 0, "attempts": 1,
                        "failed_attempts": 0, "errored_attempts": 0, "recovered": 0,
                    }
                )  # fmt: skip
    samples = pd.DataFrame(rows)
    for column in ("complied", "af_reasoning", "possible_af", "partial_compliance"):
        samples[column] = samples[column].astype("Int64")
    return samples


def synthetic(n: int) -> dict[str, pd.DataFrame]:
    samples = synthetic_samples(n)
    summary = summarize(samples)
    long = tables.rates_long(samples, summary)
    comparison = tables.paper_vs_run(long, tables.load_reference())
    return {"samples": samples, "summary": summary, "long": long, "comparison": comparison}


DRAW = {  # as the report draws them: the summary gives names and trained tiers
    "headline": lambda d: figures.headline(d["samples"], d["summary"]),
    "six_categories": lambda d: figures.six_categories(d["samples"], d["summary"]),
    "variant_ablation": lambda d: figures.variant_ablation(d["summary"]),
    "model_gaps": lambda d: figures.model_gaps(d["summary"]),
    "gap_vs_af": lambda d: figures.gap_vs_af(d["summary"], d["long"]),
    "paper_vs_run": lambda d: figures.paper_vs_run(d["comparison"], d["summary"]),
}
SIZES = [1, 5, 25]
DPI = 120  # as figures.save writes the PNGs
TOLERANCE = 1.5  # pixels


@pytest.fixture(scope="module")
def inputs():
    return {n: synthetic(n) for n in SIZES}


def drawn_texts(fig: Figure) -> list[tuple[Text, object]]:
    """Every non-empty text the Agg canvas actually draws, with its box in pixels."""
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


def _name(text: Text) -> str:
    return repr(text.get_text()[:60])


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name", list(DRAW))
def test_every_text_is_inside_the_figure_and_clear_of_the_others(inputs, name, n):
    fig = DRAW[name](inputs[n])
    texts = drawn_texts(fig)
    assert len(texts) > 5
    width, height = fig.bbox.width, fig.bbox.height
    for text, box in texts:
        assert box.x0 >= -TOLERANCE and box.y0 >= -TOLERANCE, f"{_name(text)} is cut off"
        assert box.x1 <= width + TOLERANCE and box.y1 <= height + TOLERANCE, (
            f"{_name(text)} is cut off: {box} outside {width}x{height}"
        )
        assert text.get_fontsize() >= 7, f"{_name(text)} is too small to read"
    clashes = [
        f"{_name(a)} overlaps {_name(b)}"
        for (a, box_a), (b, box_b) in combinations(texts, 2)
        if min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0) > TOLERANCE
        and min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0) > TOLERANCE
    ]
    assert not clashes, clashes[:5]


@pytest.mark.parametrize("n", SIZES)
def test_figures_grow_with_the_conditions_within_sensible_bounds(inputs, n):
    for name, draw in DRAW.items():
        width, height = draw(inputs[n]).get_size_inches()
        assert 6 <= width <= 20 and 2 <= height <= 24, (name, n, width, height)
        if n == 1:
            assert width <= 17 and height <= 8, (name, width, height)


def _panels(fig: Figure) -> list:
    return [ax for ax in fig.axes if ax.get_visible() and ax.axison]


@pytest.mark.parametrize("n", SIZES)
def test_headline_and_categories_draw_every_condition(inputs, n):
    data = inputs[n]
    conditions = len(data["summary"])
    fig = figures.headline(data["samples"])
    assert len(_panels(fig)) == conditions
    suptitle = fig.get_suptitle()
    assert (f"all {conditions} conditions" if n > 1 else "one condition") in suptitle
    judged = data["samples"].dropna(subset=["category"])[["model", "variant", "condition"]]
    judged_conditions = len(judged.drop_duplicates())
    fig = figures.six_categories(data["samples"])
    assert len(_panels(fig)) == judged_conditions
    if judged_conditions < conditions:
        assert f"{judged_conditions} of {conditions} conditions" in fig.get_suptitle()


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name", ["variant_ablation", "model_gaps"])
def test_gap_panels_share_one_x_scale_and_cover_every_condition(inputs, name, n):
    fig = DRAW[name](inputs[n])
    panels = _panels(fig)
    assert len({ax.get_xlim() for ax in panels}) == 1
    low, high = panels[0].get_xlim()
    summary = inputs[n]["summary"]
    assert low < summary["gap_ci_low"].min() and high > summary["gap_ci_high"].max()
    assert low < 0 < high
    rows = sum(len(ax.get_yticks()) for ax in panels)
    assert rows == len(summary)
    assert fig._supxlabel.get_text() == figures.GAP_XLABEL


def _row(ax, part: str) -> float:
    """The y position of the tick label that contains `part`."""
    ticks = dict(zip((t.get_text() for t in ax.get_yticklabels()), ax.get_yticks(), strict=True))
    [y] = [y for label, y in ticks.items() if part in label.replace("\n", "")]
    return y


def _markers_at(ax, x: float, y: float) -> list[Line2D]:
    return [
        line
        for line in ax.lines
        if line.get_marker() not in (None, "None", "", " ")
        and line.get_markersize() >= 5
        and any(
            np.isclose(a, x) and np.isclose(b, y)
            for a, b in zip(line.get_xdata(), line.get_ydata(), strict=True)
        )
    ]


@pytest.mark.parametrize("name", ["variant_ablation", "model_gaps"])
def test_a_zero_gap_has_a_marker_and_a_missing_gap_says_n_a(inputs, name):
    data = inputs[5]
    fig = DRAW[name](data)
    summary = data["summary"].set_index("condition")
    assert summary.loc["0000000e", "compliance_gap"] == 0.0
    assert np.isnan(summary.loc["0000000d", "compliance_gap"])
    zero_panel = next(
        ax for ax in _panels(fig) if any("0000000e" in t.get_text() for t in ax.get_yticklabels())
    )
    y = _row(zero_panel, "0000000e")  # the label shows the digest: two share "default"
    assert _markers_at(zero_panel, 0.0, y)
    missing_panel = next(ax for ax in _panels(fig) if "animal_welfare" in ax.get_title())
    y = _row(missing_panel, "(n=0)")
    assert [t.get_text() for t in missing_panel.texts] == ["n/a"]
    assert missing_panel.texts[0].get_position()[1] == y
    assert not _markers_at(missing_panel, 0.0, y)  # never drawn as a zero


def test_labels_show_the_digest_only_where_two_conditions_would_share_one():
    keys = [
        ("m", "helpful_only", "default", "d", "aaaaaaaa"),
        ("m", "helpful_only", "default", "d", "bbbbbbbb"),
        ("m", "helpful_only", "other_lab", "d", "cccccccc"),
    ]
    assert figures.readable_labels(keys, ["variant"]) == [
        "default [aaaaaaaa]",
        "default [bbbbbbbb]",
        "other_lab",
    ]
    titles, common = figures.panel_titles(keys, 40)
    assert titles == ["default [aaaaaaaa]", "default [bbbbbbbb]", "other_lab"]
    assert common == "model m · setting helpful_only · dataset d"
    # A title whose every field is one word shows it once; fields that only share a word
    # keep their places, so that a condition is never read as a dataset.
    keys = [
        ("m", "animal_welfare", "default", "animal_welfare", "aaaaaaaa"),
        ("m", "helpful_only", "default", "strongreject", "bbbbbbbb"),
        ("m", "animal_welfare", "strongreject", "animal_welfare", "cccccccc"),
        ("m", "helpful_only", "strongreject", "strongreject", "dddddddd"),
    ]
    names = {keys[0]: "animal_welfare", keys[1]: "default"}
    assert figures.panel_titles(keys, 60, names)[0] == [
        "animal_welfare",
        "helpful_only / default / strongreject",
        "animal_welfare / strongreject / animal_welfare",
        "helpful_only / strongreject / strongreject",
    ]
    assert figures._wrap("helpful_only / default@prompt_file.txt#1a2b3c4d", 24) == (
        "helpful_only / default@\nprompt_file.txt#1a2b3c4d"
    )


def _unwrapped(label: str) -> str:
    return re.sub(r"\s+", "", label)


def _published_labels(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_yticklabels() if t.get_text().startswith("paper")]


@pytest.mark.parametrize("n", SIZES)
def test_paper_vs_run_shows_only_published_rows_that_correspond_to_the_run(inputs, n):
    comparison = inputs[n]["comparison"]
    paper = comparison[comparison["source"] == "paper"]
    allowed, forbidden = set(), set()
    for r in paper.itertuples():  # `related`: same model identity, or same condition
        label = _unwrapped(f"paper: {r.model} · {r.setting} / {r.label}")
        (allowed if r.related else forbidden).add(label)
    drawn = {
        _unwrapped(label.split("\n(")[0])
        for label in _published_labels(DRAW["paper_vs_run"](inputs[n]))
    }
    assert drawn == allowed
    if n == 1:
        assert forbidden  # the reference has rows that this run must not show


def test_paper_vs_run_pairs_each_published_row_with_the_paper_prompt_and_our_wording(inputs):
    fig = DRAW["paper_vs_run"](inputs[5])
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    first = labels.index("paper: claude-3-opus-20240229 · helpful_only / default")
    assert labels[first + 1 : first + 4] == [
        # A prompt file does not say which tier is trained: the free tier is assumed.
        "this run, paper prompt\ntrained: free tier (assumed)",
        "this run, this project's wording [0000000a]",
        "this run, this project's wording [0000000e]",
    ]
    gap = next(ax for ax in fig.axes if ax.get_title().startswith("compliance gap"))
    ticks = list(fig.axes[0].get_yticks())
    widths = {
        int(np.argmin([abs(p.get_y() + p.get_height() / 2 - t) for t in ticks])): p.get_width()
        for p in gap.patches
    }
    assert widths[first] == pytest.approx(0.113)  # the published value
    summary = inputs[5]["summary"].set_index("condition")
    assert widths[first + 1] == pytest.approx(summary.loc["0000000b", "compliance_gap"])
    assert widths[first + 3] == 0.0  # a zero gap: no bar, but a marker
    assert _markers_at(gap, 0.0, ticks[first + 3])
    # Sonnet's published default has no run of that snapshot: said in its label.
    assert any("no run of this model in this condition" in label for label in labels)


def test_paper_vs_run_is_not_drawn_when_nothing_corresponds():
    samples = synthetic_samples(1).assign(
        model="openai/gpt-4o-2024-08-06",
        variant="paraphrase",
        label="paraphrase",
        prompt_origin="project",
    )
    summary = summarize(samples)
    comparison = tables.paper_vs_run(tables.rates_long(samples, summary), tables.load_reference())
    with pytest.raises(figures.NothingToShow, match="no published value shares") as error:
        figures.paper_vs_run(comparison, summary)
    assert "\n" not in str(error.value)
    with pytest.raises(figures.NothingToShow, match="no published values were loaded"):
        figures.paper_vs_run(comparison[comparison["source"] != "paper"], summary)


def test_gap_vs_af_numbers_every_point_and_keeps_the_data(inputs):
    data = inputs[25]
    fig = figures.gap_vs_af(data["summary"], data["long"])
    key = [t.get_text() for t in fig.legends[0].get_texts()]
    both = data["summary"].dropna(subset=["compliance_gap", "af_rate_trained"])
    assert len(key) == len(both)
    assert [int(k.split(".")[0]) for k in key] == list(range(1, len(both) + 1))
    # Coincident points are spread on screen, but the plotted data are the values: the AF
    # rate in the trained tier (tier_swap_control's is the paid tier's) and the gap.
    points = sorted(
        tuple(np.round(c.get_offsets()[0], 6))
        for c in fig.axes[0].collections
        if isinstance(c, PathCollection)
    )
    expected = sorted(
        zip(np.round(both["af_rate_trained"], 6), np.round(both["compliance_gap"], 6), strict=True)
    )
    assert points == expected
    numbers = [a.get_text() for a in fig.axes[0].texts]
    labelled = set()
    for text in numbers:
        for part in text.split(", "):
            first, _, last = part.partition("\u2013")
            labelled |= set(range(int(first), int(last or first) + 1))
    assert labelled == set(range(1, len(both) + 1))


def test_figures_with_nothing_to_show_are_not_drawn_and_say_why(inputs):
    """Unjudged logs: no category figure and no scatter; each says, in one line, why and
    how to get it. No samples, no gap: no headline and no gap figures."""
    samples = inputs[5]["samples"]
    unjudged = samples.assign(category=None, af_reasoning=pd.NA)
    summary = summarize(unjudged)
    long = tables.rates_long(unjudged, summary)
    uncomplied = samples.assign(complied=pd.NA)
    no_gap = summarize(uncomplied)
    cases = [
        (lambda: figures.six_categories(unjudged, summary), "no sample has a behaviour category"),
        (lambda: figures.gap_vs_af(summary, long), "no condition has both a compliance gap"),
        (lambda: figures.headline(samples.iloc[:0]), "no samples"),
        (lambda: figures.headline(uncomplied, no_gap), "no sample has a compliance verdict"),
        (lambda: figures.variant_ablation(no_gap), "no condition has a compliance gap"),
        (lambda: figures.model_gaps(no_gap), "no condition has a compliance gap"),
        (lambda: figures.variant_ablation(no_gap.iloc[:0]), "no conditions"),
    ]
    for draw, reason in cases:
        with pytest.raises(figures.NothingToShow) as error:
            draw()
        message = str(error.value)
        assert message.startswith(reason) and "\n" not in message, message
        assert error.value.reason and error.value.remedy  # why, and how to get the figure
    with pytest.raises(figures.NothingToShow, match="grader=") as error:
        figures.gap_vs_af(summary, long)
