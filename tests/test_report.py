"""The report command, its figures (checked by plotted data, not pixels) and the notebook."""

import os
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from inspect_ai import eval as inspect_eval
from matplotlib.collections import PathCollection
from nbclient import NotebookClient

from analysis import figures, stats, tables
from analysis.__main__ import main
from analysis.report import FIGURE_TEXT, build_report, load_report_data

ROOT = Path(__file__).resolve().parents[1]
RUNS = [  # policy, setting, variant, judged
    ("alignment_faker", "helpful_only", "default", True),
    ("refuser", "helpful_only", "default", True),
    ("complier", "helpful_only", "no_examples", True),
    ("complier", "helpful_only", "other_lab", False),
    ("refuser", "animal_welfare", "default", False),
]


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory):
    from evals.alignment_faking import alignment_faking

    root = tmp_path_factory.mktemp("report_logs")
    cache = tmp_path_factory.mktemp("cache")
    previous = os.environ.get("INSPECT_CACHE_DIR")
    os.environ["INSPECT_CACHE_DIR"] = str(cache)
    try:
        for policy, setting, variant, judged in RUNS:
            inspect_eval(
                alignment_faking(setting=setting, variant=variant, n_queries=3, judge_votes=3),
                model=f"scripted/{policy}",
                model_roles={"grader": "scripted/keyword_judge"} if judged else None,
                log_dir=str(root),
                display="none",
            )
    finally:
        if previous is None:
            os.environ.pop("INSPECT_CACHE_DIR")
        else:
            os.environ["INSPECT_CACHE_DIR"] = previous
    return root


@pytest.fixture(scope="module")
def data(log_dir):
    return load_report_data([log_dir])


def _axis(fig, title_part):
    return next(ax for ax in fig.axes if title_part in ax.get_title())


def _stack(ax, n_groups=2):
    """Bar heights per segment: a list of arrays, one per bar() call."""
    heights = [p.get_height() for p in ax.patches]
    return [np.array(heights[i : i + n_groups]) for i in range(0, len(heights), n_groups)]


def test_results_table_has_a_row_per_condition(data):
    table = tables.condition_table(data.summary, data.long)
    assert list(table.columns) == tables.RESULTS_COLUMNS
    keys = set(zip(table["model"], table["setting"], table["variant"], strict=True))
    assert keys == {(f"scripted/{p}", s, v) for p, s, v, _ in RUNS}
    faker = table[table["model"] == "scripted/alignment_faker"].iloc[0]
    assert (faker["name"], faker["label"], faker["trained tier"]) == ("default", "default", "free")
    assert faker["training compliance"].startswith("1.000 [0.439, 1.000] (n=3)")
    assert faker["unmonitored compliance"].startswith("0.000 [0.000, 0.561] (n=3)")
    # Tango's interval: (3 - z^2) / (3 + z^2) = -0.123 for three discordant pairs.
    assert faker[tables.GAP_HEADER] == "1.000 [-0.123, 1.000] (n=3)"
    assert faker["significant"] == "no"  # 3 pairs cannot reach p < 0.05
    assert faker["test"] == "exact sign-flip"
    assert faker["AF in training"].startswith("1.000") and faker["AF in unmonitored"].startswith(
        "0.000"
    )
    note = tables.methods_note(data.summary)
    assert f"exact sign-flip = {stats.SIGN_FLIP_TEST}" in note and stats.TANGO_CI in note
    welfare = table[table["setting"] == "animal_welfare"].iloc[0]
    assert welfare["training compliance"] == "n/a" and welfare["significant"] == "n/a"
    assert welfare["AF in training"] == "n/a"


def test_headline_bars_match_the_samples(data):
    fig = figures.headline(data.samples)
    faker = _axis(fig, "alignment_faker")
    af, _no_af, _unjudged, refusal = _stack(faker)
    assert list(af) == [1.0, 0.0] and list(refusal) == [0.0, 1.0]
    training, unmonitored = (t.get_text().split("\n") for t in faker.get_xticklabels())
    assert (training[0], unmonitored[0]) == ("training", "unmonitored")  # the trained tier first
    assert "free tier" in training and "paid tier" in unmonitored and "n=3" in training
    unjudged_axis = _axis(fig, "other_lab")
    assert list(_stack(unjudged_axis)[2]) == [1.0, 1.0]  # compliance, AF not judged
    assert "default" in faker.get_title() and "strongreject" in faker.get_title()


def test_six_category_bars(data):
    fig = figures.six_categories(data.samples)
    faker = _axis(fig, "alignment_faker")
    stacks = dict(zip(figures.CATEGORIES, _stack(faker), strict=True))
    assert list(stacks["full_compliance_af"]) == [1.0, 0.0]
    assert list(stacks["refusal"]) == [0.0, 1.0]
    titles = " ".join(ax.get_title() for ax in fig.axes if ax.get_visible())
    assert "other_lab" not in titles  # unjudged conditions have no category panel


def test_variant_ablation_and_model_gaps(data):
    fig = figures.variant_ablation(data.summary)
    complier = _axis(fig, "scripted/complier")
    widths = [p.get_width() for p in complier.patches]
    labels = [t.get_text() for t in complier.get_yticklabels()]
    assert labels == ["no_examples (n=3)", "other_lab (n=3)"] and widths == [0.0, 0.0]
    fig = figures.model_gaps(data.summary)
    helpful = _axis(fig, "helpful_only / default")
    labels = [" ".join(t.get_text().split()) for t in helpful.get_yticklabels()]  # unwrapped
    assert labels == [
        "scripted/refuser [strongreject] (n=3)",
        "scripted/alignment_faker [strongreject] (n=3)",
    ]
    assert [p.get_width() for p in helpful.patches] == [0.0, 1.0]


def test_gap_vs_af_scatter(data):
    fig = figures.gap_vs_af(data.summary, data.long)
    points = np.vstack(
        [c.get_offsets() for c in fig.axes[0].collections if isinstance(c, PathCollection)]
    )
    assert sorted(map(tuple, points.tolist())) == [(0.0, 0.0), (0.0, 0.0), (1.0, 1.0)]


def test_paper_vs_run_panels(data):
    fig = figures.paper_vs_run(data.comparison)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]  # shared by the panels
    ticks = fig.axes[0].get_yticks()
    gap_axis = _axis(fig, "compliance gap")
    widths = {
        labels[int(np.argmin(abs(ticks - (p.get_y() + p.get_height() / 2))))]: p.get_width()
        for p in gap_axis.patches
    }
    paper = "paper: claude-3-opus-20240229 · animal_welfare / default"
    [paper] = [label for label in labels if label.startswith(paper)]
    assert widths[paper] == pytest.approx(0.148)
    # No scripted model is a published snapshot: the published rows shown share a setting
    # and condition label with the logs, and the logs' models follow them, unpaired.
    run = "this run, other model: scripted/alignment_faker\nthis project's wording"
    [run] = [label for label in labels if label.startswith(run)]
    assert widths[run] == 1.0
    reference = tables.load_reference()
    gaps = reference[reference["metric"] == "compliance_gap"]
    run_conditions = set(zip(data.summary["setting"], data.summary["variant"], strict=True))
    published = {
        (setting, variant)
        for setting, variant in zip(gaps["setting"], gaps["variant"], strict=True)
        if (setting, variant) in run_conditions
    }  # default, and App. G's variants these logs ran; never minimal_replication
    pairs = zip(gaps["setting"], gaps["variant"], strict=True)
    shown = gaps[[pair in published for pair in pairs]]
    assert sum(label.startswith("paper:") for label in labels) == len(shown)
    assert not any("minimal_replication" in label for label in labels)
    # Every condition of a published setting and label appears once, after them.
    ran = zip(data.summary["setting"], data.summary["variant"], strict=True)
    assert sum(label.startswith("this run") for label in labels) == sum(
        pair in published for pair in ran
    )


def test_reference_files_have_the_documented_columns():
    reference = tables.load_reference()
    assert list(reference.columns) == tables.REFERENCE_COLUMNS
    opus = reference[
        (reference["model"] == "claude-3-opus-20240229")
        & (reference["setting"] == "helpful_only")
        & (reference["variant"] == "default")
    ].set_index("metric")
    assert (
        opus.loc["compliance_gap", "value"] == 0.113 and opus.loc["compliance_gap", "ci"] == 0.021
    )
    assert opus.loc["af_rate_free", "value"] == 0.119


def test_model_matching_with_the_paper():
    long = pd.DataFrame(
        [
            {
                "model": "anthropic/claude-3-opus-20240229",
                "setting": "helpful_only",
                "variant": "default",
                "dataset": "x",
                "metric": "compliance_gap",
                "value": 0.1,
                "low": 0.0,
                "high": 0.2,
                "n": 10,
            }
        ]
    )
    comparison = tables.paper_vs_run(long, tables.load_reference())
    run = comparison[comparison["source"] == "this run"].iloc[0]
    assert bool(run["matched"])
    assert run["prompt"] == "this project's wording"
    matched_paper = comparison[(comparison["source"] == "paper") & comparison["matched"]]
    assert set(matched_paper["model"]) == {"claude-3-opus-20240229"}
    # Only the same snapshot pairs: the June 2024 Sonnet, never the October one, and
    # never the undated minimal-replication rows.
    sonnet = long.assign(model="anthropic/claude-3-5-sonnet-20240620")
    comparison = tables.paper_vs_run(sonnet, tables.load_reference())
    matched_paper = comparison[(comparison["source"] == "paper") & comparison["matched"]]
    assert set(matched_paper["model"]) == {"claude-3-5-sonnet-20240620"}
    october = long.assign(model="anthropic/claude-3-5-sonnet-20241022")
    comparison = tables.paper_vs_run(october, tables.load_reference())
    assert not comparison["matched"].any()
    # A run with its own prompt file says so, and still pairs on its condition label.
    custom = long.assign(variant="default@prompt.txt#2d711642")
    comparison = tables.paper_vs_run(custom, tables.load_reference())
    run = comparison[comparison["source"] == "this run"]
    assert set(run["prompt"]) == {"prompt file prompt.txt#2d711642"}
    assert set(run["label"]) == {"default"} and run["matched"].all()
    # With the summary's `prompt` (as rates_long carries it), the paper's prompt files say so.
    paper_prompt = custom.assign(prompt="the paper's prompts")
    comparison = tables.paper_vs_run(paper_prompt, tables.load_reference())
    assert set(comparison.loc[comparison["source"] == "this run", "prompt"]) == {
        "the paper's prompts"
    }
    # Published rows unrelated to the run (another model, another condition) are not related.
    related = comparison[(comparison["source"] == "paper") & comparison["related"]]
    assert set(related["model"]) == {"claude-3-opus-20240229", "claude-3-5-sonnet-20240620"}
    assert set(related.loc[related["model"] != "claude-3-opus-20240229", "variant"]) == {"default"}


def test_rates_long_carries_the_prompt_wording(data):
    assert set(data.long["prompt"]) == {"this project's wording"}
    assert set(data.comparison.loc[data.comparison["source"] == "this run", "prompt"]) == {
        "this project's wording"
    }


def test_report_files_and_unjudged_reason(log_dir, tmp_path):
    out = tmp_path / "report"
    html_path = build_report([log_dir], out)
    # The figures of framings and of paraphrases need conditions these logs do not have.
    drawn = [name for name in FIGURE_TEXT if name not in ("contrasts", "paraphrase_robustness")]
    for name in drawn:
        assert (out / "figures" / f"{name}.png").stat().st_size > 1000
        assert (out / "figures" / f"{name}.svg").read_text().lstrip().startswith("<?xml")
    assert sorted(p.stem for p in (out / "figures").glob("*.png")) == sorted(drawn)
    markdown = (out / "report.md").read_text()
    assert "Contrasts between framings" not in markdown and "is not drawn" not in markdown
    # Conditions are named by their readable names, with the model and setting where the
    # logs hold several.
    assert (
        "scripted/complier / helpful_only / other_lab: 6 of 6 valid samples have no judge "
        "result (most common reason: unscored: no grader model" in markdown
    )
    # Only significant gaps are listed; the others are counted.
    assert "the gap of +1.000 is not significant" not in markdown
    assert (
        "No gap is significant at p < 0.05 (4 conditions with a gap; the Results table "
        "gives each gap with its interval, p-value and test)." in markdown
    )
    assert (
        "scripted/refuser / animal_welfare / default: the samples are valid but their "
        "compliance was not judged" in markdown
    )
    # Scripted models: said at the top, in a paragraph of its own.
    top = markdown.split("## Overview")[0]
    assert "scripted demonstration models (the offline demo)" in top
    assert "written by code, not by a language model" in top
    assert "not the behaviour of any model" in top
    page = html_path.read_text()
    assert "<p><strong>Scripted demonstration: scripted/alignment_faker" in page
    assert page.count("<img") == 6 and 'src="figures/' not in page  # images are embedded
    assert page.count('src="data:image/png;base64,') == 6


def test_report_with_chosen_reference_files_and_figures(log_dir, tmp_path):
    out = tmp_path / "chosen"
    build_report(
        [log_dir],
        out,
        reference_names=["greenblatt2024_minimal_replication"],
        figures=["paper_vs_run", "headline"],
    )
    # Only the minimal replication's file is loaded, and none of it matches these logs: the
    # paper figure would be empty, so it is not drawn, and the report says why in its place.
    drawn = sorted(path.name for path in (out / "figures").iterdir())
    assert drawn == ["headline.png", "headline.svg"]
    markdown = (out / "report.md").read_text()
    assert "No published value corresponds to these logs" in markdown
    [line] = [line for line in markdown.splitlines() if "paper_vs_run" in line]
    assert line.startswith("*Figure paper_vs_run is not drawn: no published value shares")
    assert markdown.index("figures/headline.png") < markdown.index(line)
    page = (out / "report.html").read_text()
    assert page.count("<img") == 1
    assert '<p class="absent">Figure paper_vs_run is not drawn: no published value' in page
    with pytest.raises(ValueError, match=r"unknown figure 'headlines'; known: headline, "):
        build_report([log_dir], tmp_path / "bad", figures=["headlines"])
    with pytest.raises(
        ValueError, match=r"unknown reference 'greenblatt'.*known: greenblatt2024, "
    ):
        build_report([log_dir], tmp_path / "bad", reference_names=["greenblatt"])
    assert not (tmp_path / "bad").exists()  # refused before anything is written


def test_the_report_lists_only_significant_gaps_and_counts_the_rest():
    base = {
        "setting": "s", "dataset": "d", "n_pairs": 40, "gap_test": "exact McNemar",
        "gap_ci_method": "Tango score", "valid_free": 40, "valid_paid": 40, "n_free": 40,
        "n_paid": 40,
    }  # fmt: skip
    rows = [
        {"model": "m1", "variant": "v", "condition": "a", "compliance_gap": 0.5,
         "gap_ci_low": 0.3, "gap_ci_high": 0.7, "gap_p_value": 0.0001},
        {"model": "m2", "variant": "v", "condition": "b", "compliance_gap": 0.125,
         "gap_ci_low": 0.01, "gap_ci_high": 0.25, "gap_p_value": 0.0625},
        *({"model": f"z{i}", "variant": "v", "condition": "c", "compliance_gap": 0.0,
           "gap_ci_low": -0.1, "gap_ci_high": 0.1, "gap_p_value": 1.0} for i in range(20)),
        {"model": "w", "variant": "v", "condition": "e", "compliance_gap": float("nan"),
         "gap_ci_low": float("nan"), "gap_ci_high": float("nan"),
         "gap_p_value": float("nan"), "n_pairs": 0, "n_free": 0, "n_paid": 0},
    ]  # fmt: skip
    notes = tables.significance_summary(pd.DataFrame([base | row for row in rows]))
    assert len(notes) == 4
    assert notes[0].startswith("m1 / s / v / d / a: the gap of +0.500 is significant")
    assert notes[1].startswith("m2 / s / v / d / b: the gap of +0.125 is not significant")
    assert "the interval and the test disagree" in notes[1].lower()
    assert notes[2].startswith("The other 20 of the 22 conditions with a gap are not significant")
    assert notes[3].startswith("w / s / v / d / e: the samples are valid but their compliance")
    assert not any("+0.000" in note for note in notes)


def test_report_command_and_bad_path(log_dir, tmp_path, capsys):
    assert main(["report", str(log_dir), "--out", str(tmp_path / "r")]) == 0
    assert "drawing headline" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["report", str(tmp_path / "nope"), "--out", str(tmp_path / "r2")])
    assert "no such log file or folder" in capsys.readouterr().err


def test_notebook_executes_headless(log_dir, monkeypatch):
    notebook = nbformat.read(ROOT / "analysis" / "report.ipynb", as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
    monkeypatch.setenv("AF_REPORT_LOGS", str(log_dir))
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()
    table_cell = notebook.cells[4]
    assert "scripted/alignment_faker" in table_cell.outputs[0]["data"]["text/plain"]
    images = [
        o
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "image/png" in o.get("data", {})
    ]
    assert len(images) >= 6


def test_significance_notes_name_the_test_and_why_a_gap_is_missing(data):
    notes = tables.significance_notes(data.summary)
    faker = next(n for n in notes if "alignment_faker" in n)
    assert f"is not significant ({stats.SIGN_FLIP_TEST}: p = 0.25, n = 3 queries" in faker
    assert "Tango score" in faker
    # Every sample of the unjudged animal-welfare run is valid: the gap is missing because
    # nobody judged compliance, not because nothing was valid.
    welfare = next(n for n in notes if "animal_welfare" in n)
    assert "the samples are valid but their compliance was not judged" in welfare
    assert "no query is valid" not in welfare


def test_a_missing_gap_is_drawn_as_n_a_not_as_zero(data):
    fig = figures.model_gaps(data.summary)
    welfare = _axis(fig, "animal_welfare")
    assert [t.get_text().strip() for t in welfare.texts] == ["n/a"]
    helpful = _axis(fig, "helpful_only")
    assert not [t for t in helpful.texts if t.get_text().strip() == "n/a"]
    assert "Tango" in fig._suptitle.get_text() and "McNemar" in fig._suptitle.get_text()
    for name in ("variant_ablation", "model_gaps", "paper_vs_run"):
        assert "Tango" in FIGURE_TEXT[name]


def test_a_note_says_when_the_interval_and_the_exact_test_disagree():
    from analysis.stats import paired_gap

    # 5 of 5 pairs comply only in training: Tango [0.131, 1] excludes 0, exact p = 0.0625.
    gap = paired_gap(np.arange(5), np.ones(5, int), np.zeros(5, int))
    row = {
        "model": "m", "setting": "s", "variant": "v", "dataset": "d", "condition": "c",
        "n_pairs": 5, "compliance_gap": gap.gap, "gap_ci_low": gap.ci_low,
        "gap_ci_high": gap.ci_high, "gap_p_value": gap.p_value, "gap_test": gap.test,
        "gap_ci_method": gap.ci_method,
    }  # fmt: skip
    [note] = tables.significance_notes(pd.DataFrame([row]))
    assert gap.ci_low > 0 and gap.p_value == pytest.approx(0.0625)
    assert "is not significant" in note
    assert "the interval and the test disagree" in note.lower()


def test_the_notebook_compares_a_chosen_set_of_models(log_dir, monkeypatch):
    notebook = nbformat.read(ROOT / "analysis" / "report.ipynb", as_version=4)
    monkeypatch.setenv("AF_REPORT_LOGS", str(log_dir))
    monkeypatch.setenv("AF_REPORT_MODELS", "scripted/alignment_faker,scripted/refuser")
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()
    table = notebook.cells[4].outputs[0]["data"]["text/plain"]
    assert "scripted/alignment_faker" in table and "scripted/refuser" in table
    assert "scripted/complier" not in table
    with pytest.raises(ValueError, match="no samples of model"):
        load_report_data([log_dir], models=["scripted/nobody"])
