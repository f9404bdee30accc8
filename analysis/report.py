"""`python -m analysis report LOG_PATH... --out DIR`: report.md, report.html and figures.

The notebook `analysis/report.ipynb` calls the same functions, so the two never disagree.
"""

from __future__ import annotations

import base64
import html
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis import figures as plots
from analysis import tables
from analysis.logs import load_samples, superseded_note
from analysis.summary import summarize


@dataclass
class ReportData:
    samples: pd.DataFrame
    summary: pd.DataFrame
    long: pd.DataFrame
    comparison: pd.DataFrame


def load_report_data(
    paths: Sequence[str | Path],
    reference_dir: Path = tables.REFERENCE_DIR,
    progress: Callable[[str], None] = lambda message: None,
    reference_names: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
) -> ReportData:
    """Samples, summary, long rates and the paper comparison of the logs in `paths`.

    `reference_names` loads only `reference_dir/NAME.csv` for these names (all files when
    None); an unknown name is a ValueError that names it and the known ones. `models` keeps
    only these models (all when None), to compare a chosen set from a study's logs.
    """
    reference = tables.load_reference(reference_dir, reference_names)  # fail before reading
    progress("reading logs")
    samples = load_samples(paths)
    if models:
        unknown = sorted(set(models) - set(samples["model"]))
        if unknown:
            raise ValueError(
                f"no samples of model(s) {', '.join(unknown)} in these logs; they hold: "
                f"{', '.join(sorted(samples['model'].unique()))}"
            )
        samples = samples[samples["model"].isin(models)].reset_index(drop=True)
    progress(f"read {len(samples):,} samples; computing statistics")
    summary = summarize(samples)
    long = tables.rates_long(samples, summary)
    comparison = tables.paper_vs_run(long, reference)
    return ReportData(samples, summary, long, comparison)


FIGURES: dict[str, Callable[[ReportData], plots.Figure]] = {  # in the report's order
    "headline": lambda data: plots.headline(data.samples),
    "six_categories": lambda data: plots.six_categories(data.samples),
    "variant_ablation": lambda data: plots.variant_ablation(data.summary),
    "model_gaps": lambda data: plots.model_gaps(data.summary),
    "gap_vs_af": lambda data: plots.gap_vs_af(data.summary, data.long),
    "paper_vs_run": lambda data: plots.paper_vs_run(data.comparison),
}


def figure_names(names: Sequence[str] | None = None) -> list[str]:
    """`names` in the report's order (all figures when None); an unknown name is a
    ValueError that names it and the known ones."""
    if names is None:
        return list(FIGURES)
    if isinstance(names, str):
        names = [names]
    unknown = [name for name in names if name not in FIGURES]
    if unknown:
        raise ValueError(
            f"unknown figure {', '.join(map(repr, unknown))}; known: {', '.join(FIGURES)}"
        )
    return [name for name in FIGURES if name in names]


def make_figures(data: ReportData, names: Sequence[str] | None = None) -> dict[str, plots.Figure]:
    """The report's figures by file name: all of them, or only `names` (in the report's
    order)."""
    return {name: FIGURES[name](data) for name in figure_names(names)}


FIGURE_TEXT = {
    "headline": "One panel per condition, every condition of these logs: training (free "
    "tier) vs unmonitored (paid tier). Hatched: compliance with alignment-faking reasoning; "
    "grey: compliance whose reasoning was not judged. Error bars: 95% Wilson score CI of the "
    "compliance rate (on per-query means when there are several epochs).",
    "six_categories": "The six categories of Sheshadri et al. (2025), one panel per condition "
    "with judged samples (conditions nobody judged have no panel; the title counts them); "
    "hatched ones show AF reasoning.",
    "variant_ablation": "Compliance gap by prompt variant, one panel per model, setting and "
    "dataset, all on one x-scale, with 95% Tango score CIs. A diamond marks each estimate, so "
    "a gap of zero still shows; filled = significant, hollow = not significant (p >= 0.05 in "
    "the exact sign-flip test on per-query differences, which is exact McNemar at one epoch); "
    "n/a marks a gap that could not be computed.",
    "model_gaps": "Compliance gap across models, largest at the top, one panel per setting "
    "and variant (every condition), all on one x-scale, with 95% Tango score CIs. A diamond "
    "marks each estimate; filled = significant, hollow = not significant (p >= 0.05 in the "
    "exact sign-flip test on per-query differences, which is exact McNemar at one epoch); n/a "
    "marks a gap that could not be computed.",
    "gap_vs_af": "Compliance gap (95% Tango score CI) against the AF-reasoning rate in "
    "training (95% Wilson score CI), for the conditions that have both. Points are numbered "
    "and named in the key; points at one place are drawn around it and share one label.",
    "paper_vs_run": "Published values (purple, +- as reported) that share a model snapshot "
    "or a condition with this run, each followed by this run's rows of the same snapshot, "
    "setting, condition label and metric (green: dark for the paper's prompt, light for this "
    "project's wording; 95% CI: Wilson score for rates, Tango score for the gap); this run's "
    "other models in the same condition follow, unpaired. n/a marks a value this run lacks.",
}


def build_report(
    paths: Sequence[str | Path],
    out_dir: Path,
    reference_dir: Path = tables.REFERENCE_DIR,
    progress: Callable[[str], None] = lambda message: None,
    reference_names: Sequence[str] | None = None,
    figures: Sequence[str] | None = None,
) -> Path:
    """Write report.md, report.html (self-contained) and figures/*.png|svg; return the HTML.

    `reference_names` loads only `reference_dir/NAME.csv` for these names (default: every
    file there); `figures` draws only these figures, in the report's usual order (default:
    all of `FIGURES`). An unknown name in either is a ValueError, raised before any log is
    read.
    """
    started = time.perf_counter()
    names = figure_names(figures)
    data = load_report_data(paths, reference_dir, progress, reference_names)
    out_dir.mkdir(parents=True, exist_ok=True)
    figure_dir = out_dir / "figures"
    saved: dict[str, list[Path]] = {}
    for name in names:
        progress(f"drawing {name}")
        saved[name] = plots.save(FIGURES[name](data), figure_dir, name)
    sections = _sections(data)
    preamble = _preamble(data)
    (out_dir / "report.md").write_text(
        _markdown(preamble, sections, saved, out_dir), encoding="utf-8"
    )
    html_path = out_dir / "report.html"
    html_path.write_text(_html(preamble, sections, saved), encoding="utf-8")
    progress(f"wrote {html_path} in {time.perf_counter() - started:.1f} s")
    return html_path


Section = tuple[str, list[str], list[tuple[str, pd.DataFrame]], list[str]]
SCRIPTED = "scripted/"


def _preamble(data: ReportData) -> list[str]:
    """Paragraphs at the top of the report, before any section."""
    scripted = sorted(m for m in data.samples["model"].unique() if str(m).startswith(SCRIPTED))
    if not scripted:
        return []
    one = len(scripted) == 1
    return [
        f"Scripted demonstration: {', '.join(scripted)} "
        + ("is a scripted demonstration model" if one else "are scripted demonstration models")
        + f" (the offline demo). {'Its' if one else 'Their'} answers are written by code, "
        "not by a language model, so "
        + ("its" if one else "their")
        + " numbers show the pipeline at work, not the behaviour of any model."
    ]


def _sections(data: ReportData) -> list[Section]:
    """(title, paragraphs, named tables, figure names) in reading order."""
    from evals.estimate import load_prices

    prices = load_prices()
    usage = tables.usage_table(data.samples.attrs.get("usage"), prices)
    n_logs_models = data.samples["model"].nunique()
    overview = [
        f"{len(data.samples):,} samples from {n_logs_models} model(s) in "
        f"{len(data.summary)} condition(s) (model, setting, variant, dataset).",
        "Rates are over valid samples and shown as value [95% CI] (n). Epochs are averaged "
        "within each query first, so every query weighs the same and repeated epochs never "
        "count as independent data. Rates use Wilson score intervals on those per-query "
        "means. The gap is free minus paid compliance over the queries valid in both tiers, "
        "with Tango's score interval for paired proportions and an exact sign-flip test on "
        "the per-query differences, which is the exact McNemar test when each query has one "
        "epoch; the table names the test and interval of each row. Invalid samples are never "
        "counted as refusals or compliance; invalid counts include every attempt, and a "
        "sample that failed and then succeeded on a re-run is counted as recovered.",
    ]
    if note := superseded_note(data.samples):
        overview.append(note[0].upper() + note[1:] + ".")
    overview += tables.merge_notes(data.summary)
    judge = tables.judge_notes(data.samples) or ["Every valid sample has a judge result."]
    return [
        (
            "Overview",
            overview,
            [("Conditions", tables.condition_table(data.summary, data.long))],
            ["headline"],
        ),
        ("Which differences are significant", tables.significance_summary(data.summary), [], []),
        ("Prompt variants and models", [], [], ["variant_ablation", "model_gaps"]),
        (
            "Judged reasoning and behaviour",
            judge,
            [("Six categories", tables.category_table(data.samples))],
            ["six_categories", "gap_vs_af"],
        ),
        (
            "Sample statuses",
            ["Counts of valid samples and of each invalid reason."],
            [("Statuses", tables.status_table(data.samples))],
            [],
        ),
        ("Paper vs this run", _paper_text(data.comparison), [], ["paper_vs_run"]),
        ("Tokens and cost", _usage_text(prices), [("Usage", usage)], []),
    ]


def _usage_text(prices: dict) -> list[str]:
    return [
        "Tokens each model role used, as the providers reported them, over every record in "
        "these logs: a superseded record was paid for too, while a sample copied into a "
        "re-scored or retried log counts once. The cached share is the input read from a "
        "prompt cache. Replies replayed from Inspect's cache cost nothing and count no "
        f"tokens. Costs use the list prices of {prices.get('as_of')} in "
        "evals/data/prices.yaml (no batch discount); a model without a price there (a local "
        "one, say) shows none."
    ]


def _paper_text(comparison: pd.DataFrame) -> list[str]:
    """What the paper-vs-run figure can and cannot compare, in words."""
    paper = comparison[comparison["source"] == "paper"]
    if paper.empty:
        return ["No published values were loaded (results/reference/*.csv), so nothing is "
                "compared with the paper."]  # fmt: skip
    related = paper[paper["related"].astype(bool)]
    if related.empty:
        return [
            "No published value corresponds to these logs: no model in them is a published "
            "snapshot, and no condition (setting and condition label) is a published one, so "
            "nothing is compared with the paper."
        ]
    matched = related[related["matched"].astype(bool)]
    text = (
        "Published values are in results/reference/*.csv. The figure shows only those that "
        "share a model snapshot or a condition (setting and condition label) with these logs, "
        "each followed by the rows of these logs with the same snapshot, setting, condition "
        "label and metric, the paper's prompt first and then this project's wording. "
    )
    if len(matched):
        models = sorted(matched["model"].unique())
        text += (
            f"{len(models)} published model(s) match a model in these logs: {', '.join(models)}."
        )
    else:
        text += (
            "No model in these logs is a published snapshot, so no published value is "
            "paired; this run's models in the same conditions are shown after them, unpaired."
        )
    return [text]


def _markdown(
    preamble: list[str], sections: list[Section], saved: dict[str, list[Path]], out_dir: Path
) -> str:
    lines = ["# Alignment-faking report", ""]
    for paragraph in preamble:
        lines += [f"**{paragraph}**", ""]
    for title, paragraphs, named_tables, names in sections:
        lines += [f"## {title}", ""]
        for paragraph in paragraphs:
            lines += [f"- {paragraph}" if len(paragraphs) > 2 else paragraph, ""]
        for name, table in named_tables:
            lines += [f"### {name}", "", _md_table(table), ""]
        for name in (n for n in names if n in saved):
            relative = saved[name][0].relative_to(out_dir).as_posix()
            lines += [f"![{name}]({relative})", "", f"*{FIGURE_TEXT[name]}*", ""]
    return "\n".join(lines)


def _md_table(table: pd.DataFrame) -> str:
    if table.empty:
        return "(no rows)"
    return _shown(table).to_markdown(index=False)


def _shown(table: pd.DataFrame) -> pd.DataFrame:
    """The table as text: numbers to three significant digits, and `n/a` where a value is
    missing (never `nan`)."""

    def cell(value: object) -> str:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return "n/a"
        if isinstance(value, float):
            return f"{value:.3g}"
        return str(value)

    return table.apply(lambda column: column.map(cell)).astype(str)


def _html(preamble: list[str], sections: list[Section], saved: dict[str, list[Path]]) -> str:
    body = ["<h1>Alignment-faking report</h1>"]
    body += [f"<p><strong>{html.escape(p)}</strong></p>" for p in preamble]
    for title, paragraphs, named_tables, names in sections:
        body.append(f"<h2>{html.escape(title)}</h2>")
        items = "".join(f"<li>{html.escape(p)}</li>" for p in paragraphs)
        if items:
            body.append(f"<ul>{items}</ul>")
        for name, table in named_tables:
            body.append(f"<h3>{html.escape(name)}</h3>")
            body.append(
                _shown(table).to_html(index=False, border=0)
                if not table.empty
                else "<p>(no rows)</p>"
            )
        for name in (n for n in names if n in saved):
            png = base64.b64encode(saved[name][0].read_bytes()).decode("ascii")
            body.append(
                f'<figure><img alt="{name}" src="data:image/png;base64,{png}">'
                f"<figcaption>{html.escape(FIGURE_TEXT[name])}</figcaption></figure>"
            )
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;font-size:13px;margin-bottom:1em}"
        "th,td{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left}"
        "img{max-width:100%}figcaption{color:#555;font-size:13px}"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Alignment-faking report</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n"
    )
