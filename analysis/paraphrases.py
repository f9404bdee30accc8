"""Paraphrase robustness: how far the compliance gap and the AF rate move across paraphrases
of the system prompt, and whether the canonical prompt's result lies among them.

Reads the summary (`analysis.summary.summarize`): a paraphrase condition is one whose prompt
came from `python -m evals paraphrase` (`prompt_origin` `paraphrase`); the canonical
condition is the one labelled `default` (a study's `default` condition, or a run of the
default variant), on the paper's prompt or this project's wording. A canonical is compared
only with paraphrases of the variant it ran (`source_variants`): paraphrases of
`cut_rlhf_info` with a canonical of `cut_rlhf_info`, never with the default prompt. For each
model, setting, dataset and source variant with paraphrases this gives every point, the
paraphrases' median and range, and flags a canonical result outside that range: the
memorization check (a model that has seen the published wording may treat it differently
from the same content in other words). Where the model, setting and variant are those of a
published paraphrase spread (`PUBLISHED`), the figure and the section show it beside.

Each set of paraphrases (the files of one `python -m evals paraphrase` command) has a
spread of its own: a run records its set's id in `prompt_origin` (`paraphrase:SETID`,
evals.paraphrase.set_id), and logs of several studies read together are never pooled
across sets (`paraphrase_sets`). Logs that record no set (a plain `paraphrase`, from
before set ids were recorded) count as one set without an id.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from analysis import figures as plots
from analysis.summary import PROMPT_WORDING

ORIGIN = "paraphrase"
"""The `prompt_origin` of a paraphrase (evals.paraphrase.ORIGIN; kept here so that the
analysis never imports the eval)."""
CANONICAL = "default"
"""The label of the canonical condition."""
FIGURE = "paraphrase_robustness"
SET = "paraphrase_set"
"""The column of a point's set of paraphrases: its id, `""` where the logs record none."""
BASE = ["model", "setting", "dataset", "source_variant"]
"""Where a canonical condition is compared: one model, setting and dataset, and the variant
whose prompt the paraphrases rewrite (for the canonical: the variant it ran)."""
GROUP = [*BASE, SET]
"""A spread: `BASE` and one set of paraphrases (each set with the canonical of its `BASE`)."""
SET_ID = re.compile(r"[A-Za-z0-9_-]+")
UNNAMED = "not recorded"
"""How the tables show the set of logs that record none."""
SOURCE_LABEL = re.compile(r" \(of ([A-Za-z0-9_+-]+)\)$")
"""What a paraphrase condition's label ends with where the variant it ran with is not the
one it paraphrases (evals.paraphrase.SOURCE_LABEL): `paraphrases/p01 (of cut_rlhf_info)`."""
PUBLISHED = Path(__file__).resolve().parents[1] / "results" / "reference" / "paraphrases"
"""Published paraphrase spreads, one CSV per paper (`PUBLISHED_COLUMNS`; README there)."""
PUBLISHED_COLUMNS = [
    "model",
    "setting",
    "variant",
    "metric",
    "paraphrases",
    "median",
    "min",
    "max",
    "source",
]
METRICS = {
    "compliance_gap": f"compliance gap (trained {plots.MINUS} unmonitored)",
    "af_rate_trained": "AF reasoning in the trained tier",
}
INTERVALS = {"compliance_gap": ("gap_ci_low", "gap_ci_high")}
"""The 95% CI of a metric where the summary has one (the AF rate has none there)."""
POINT_COLUMNS = [
    *GROUP,
    "role",
    "name",
    "label",
    "prompt",
    "n_pairs",
    "compliance_gap",
    "gap_ci_low",
    "gap_ci_high",
    "af_rate_trained",
]
SPREAD_COLUMNS = [
    *GROUP,
    "metric",
    "paraphrases",
    "median",
    "min",
    "max",
    "canonical",
    "canonical_prompt",
    "canonical_value",
    "outside",
    "side",
]
PARAPHRASE_COLOR, CANONICAL_COLOR = "#0173b2", "#de8f05"  # differ in lightness too
RANGE_COLOR = "#d9d9d9"
PUBLISHED_COLOR = "#029e73"
FEW = 3  # fewer paraphrases than this make a weak range, and the notes say so


def variant_key(variant: object) -> str:
    """A variant as a comparison reads it (evals.paraphrase.variant_key): without a prompt
    file's `@FILE#DIGEST`, its parts in order of name, `default` only when alone."""
    name = str(variant).split("@", 1)[0]
    parts = {p.strip() for p in name.split("+")} - {"default", ""}
    return "+".join(sorted(parts)) or "default"


def source_variants(summary: pd.DataFrame) -> pd.Series:
    """The variant whose prompt each row ran: a paraphrase's source variant (from its
    label's ` (of VARIANT)`, else the variant it ran with, which is then its source's), or
    for any other row the variant it ran (for a prompt file, the variant it ran the file
    with: a canonical on the paper's prompt stands for that variant)."""
    values = []
    for label, variant in zip(summary["label"], summary["variant"], strict=True):
        found = SOURCE_LABEL.search(str(label))
        values.append(variant_key(found.group(1) if found else variant))
    return pd.Series(values, index=summary.index, dtype=object)


def paraphrase_set(prompt: object) -> str | None:
    """The set of paraphrases a summary's `prompt` names: its id (`paraphrase:SETID` as the
    run recorded it, or the wording of `paraphrase` followed by ` (set SETID)`), `""` for a
    paraphrase of no recorded set (`paraphrase`, or its wording, alone), None for a prompt
    that is no paraphrase."""
    text = str(prompt)
    for word, joint, end in (
        (ORIGIN, ":", ""),
        (PROMPT_WORDING.get(ORIGIN, ORIGIN), " (set ", ")"),
    ):
        if text == word:
            return ""
        if text.startswith(word + joint) and text.endswith(end):
            named = text[len(word + joint) : len(text) - len(end)]
            if SET_ID.fullmatch(named):
                return named
    return None


def paraphrase_sets(summary: pd.DataFrame) -> pd.Series:
    """Each summary row's set of paraphrases (`paraphrase_set`): an id, `""` for no
    recorded set, None for a row that ran no paraphrase."""
    return pd.Series(
        [paraphrase_set(p) for p in summary["prompt"]], index=summary.index, dtype=object
    )


def is_paraphrase(summary: pd.DataFrame) -> pd.Series:
    """Whether each summary row ran a paraphrase (its prompt wording, as the summary names
    `prompt_origin`, with or without a wording entry for it, with or without a set)."""
    return paraphrase_sets(summary).notna()


def points(summary: pd.DataFrame, canonical: str = CANONICAL) -> pd.DataFrame:
    """Every point of the groups (model, setting, dataset, source variant, set of
    paraphrases) that ran paraphrases: first the canonical conditions (`role` `canonical`:
    those labelled `canonical` that ran the variant the group's paraphrases rewrite, on the
    paper's prompt or this project's wording; one copy for each set they are compared
    with), then each paraphrase of the set (`role` `paraphrase`), by label."""
    if summary.empty or "prompt" not in summary.columns:
        return pd.DataFrame(columns=POINT_COLUMNS)
    sets = paraphrase_sets(summary)
    frame = summary.assign(
        source_variant=source_variants(summary),
        **{SET: sets.fillna("")},
        role=np.where(
            sets.notna(),
            "paraphrase",
            np.where(summary["label"].astype(str) == canonical, "canonical", ""),
        ),
    )
    para = frame[frame["role"] == "paraphrase"]
    if para.empty:
        return pd.DataFrame(columns=POINT_COLUMNS)
    groups = para[GROUP].drop_duplicates()
    canon = frame[frame["role"] == "canonical"].drop(columns=SET).merge(groups, on=BASE)
    frame = pd.concat([f for f in (canon, para) if not f.empty], ignore_index=True)
    if "name" not in frame.columns:
        frame["name"] = frame["label"]
    frame["order"] = (frame["role"] == "paraphrase").astype(int)
    frame["later"] = frame["source_variant"] != "default"  # the default prompt's first
    by = [*BASE[:3], "later", BASE[3], SET, "order", "label", "name"]
    frame = frame.sort_values(by, kind="stable")
    return frame[POINT_COLUMNS].reset_index(drop=True)


def spread(summary: pd.DataFrame, canonical: str = CANONICAL) -> pd.DataFrame:
    """Per group and metric: the paraphrases with a value, their median, min and max, and
    for each canonical condition its value and whether it lies outside [min, max]
    (`outside`, `side` below/above; NA where either is missing). A group without a
    canonical condition has one row with the canonical columns empty."""
    found = points(summary, canonical)
    rows = []
    for key, group in found.groupby(GROUP, sort=False, dropna=False):
        para = group[group["role"] == "paraphrase"]
        canon = group[group["role"] == "canonical"]
        for metric in METRICS:
            values = para[metric].astype(float).dropna()
            low, high = (values.min(), values.max()) if len(values) else (math.nan, math.nan)
            base = {
                **dict(zip(GROUP, key, strict=True)),
                "metric": metric,
                "paraphrases": len(values),
                "median": values.median() if len(values) else math.nan,
                "min": low,
                "max": high,
            }
            for row in [r for _, r in canon.iterrows()] or [None]:
                value = math.nan if row is None else float(row[metric])
                known = not (math.isnan(value) or math.isnan(low))
                side = (
                    "below" if known and value < low else "above" if known and value > high else ""
                )
                rows.append(
                    base
                    | {
                        "canonical": None if row is None else row["name"],
                        "canonical_prompt": None if row is None else row["prompt"],
                        "canonical_value": value,
                        "outside": bool(side) if known else pd.NA,
                        "side": side,
                    }
                )
    frame = pd.DataFrame(rows, columns=SPREAD_COLUMNS)
    frame["outside"] = frame["outside"].astype("boolean")  # NA where it cannot be said
    return frame


# Published spreads ------------------------------------------------------------------------------


def load_published(directory: Path = PUBLISHED) -> pd.DataFrame:
    """The published paraphrase spreads in `directory/*.csv` (`PUBLISHED_COLUMNS`, values as
    fractions); empty where there are none. A file with other columns is a ValueError."""
    frames = []
    for path in sorted(directory.glob("*.csv")) if directory.is_dir() else []:
        frame = pd.read_csv(path)
        if list(frame.columns) != PUBLISHED_COLUMNS:
            raise ValueError(f"{path}: columns must be {', '.join(PUBLISHED_COLUMNS)}")
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=PUBLISHED_COLUMNS)
    return pd.concat(frames, ignore_index=True)


def published(found: pd.DataFrame, directory: Path = PUBLISHED) -> pd.DataFrame:
    """The published spread of each group of `found` (`points`) whose model is the published
    model (the identity map of results/reference/models.yaml, as the paper overlay pairs
    them), with the same setting and source variant: `GROUP`, `metric` and the published
    columns. The dataset is not compared: the paper used its own queries."""
    from analysis.tables import model_identities, model_identity

    columns = [*GROUP, *PUBLISHED_COLUMNS[3:]]
    theirs = load_published(directory)
    if found.empty or theirs.empty:
        return pd.DataFrame(columns=columns)
    identities = model_identities()
    theirs = theirs.assign(
        snapshot=[model_identity(str(m), "published", identities) for m in theirs["model"]],
        source_variant=theirs["variant"].map(variant_key),
    )
    rows = []
    for key in found[GROUP].drop_duplicates().itertuples(index=False):
        group = dict(zip(GROUP, key, strict=True))
        mine = theirs[
            (theirs["snapshot"] == model_identity(str(group["model"]), "runs", identities))
            & (theirs["setting"] == group["setting"])
            & (theirs["source_variant"] == group["source_variant"])
        ]
        rows += [group | {c: r[c] for c in PUBLISHED_COLUMNS[3:]} for _, r in mine.iterrows()]
    return pd.DataFrame(rows, columns=columns)


def _matching(known: pd.DataFrame, key: tuple, metric: str) -> pd.Series | None:
    """The published spread of one group and metric, or None."""
    if known.empty:
        return None
    same = (known[GROUP].astype(str) == [str(k) for k in key]).all(axis=1)
    rows = known[same & (known["metric"] == metric)]
    return None if rows.empty else rows.iloc[0]


def published_lines(flags: pd.DataFrame, known: pd.DataFrame) -> list[str]:
    """One line per group and metric with a published spread: it, beside the run's."""
    lines = []
    for _, theirs in known.iterrows():
        if theirs["metric"] not in METRICS:
            continue
        metric = theirs["metric"]
        same = (flags[GROUP].astype(str) == [str(theirs[k]) for k in GROUP]).all(axis=1)
        mine = flags[same & (flags["metric"] == metric)]
        run = (
            f"this run's {int(mine.iloc[0]['paraphrases'])} paraphrase(s) of this project's "
            f"wording: median {_value(metric, mine.iloc[0]['median'])}, range "
            f"[{_value(metric, mine.iloc[0]['min'])}, {_value(metric, mine.iloc[0]['max'])}]"
            if len(mine) and mine.iloc[0]["paraphrases"]
            else "this run's paraphrases have no value"
        )
        where = _group_title(tuple(theirs[GROUP]))
        lines.append(
            f"Published spread for {where}, {METRICS[metric]} "
            f"({str(theirs['source']).split(': ', 1)[0]}): {int(theirs['paraphrases'])} "
            f"paraphrases of the paper's wording, median {_value(metric, theirs['median'])}, "
            f"range [{_value(metric, theirs['min'])}, {_value(metric, theirs['max'])}]; {run}. "
            "The paper's queries and prompt wording differ from this run's: the two spreads "
            "sit side by side, unpaired."
        )
    return lines


# The figure -----------------------------------------------------------------------------------


FIGURE_TEXT = (
    "Each paraphrase of the system prompt (blue circles) and the canonical prompt (orange "
    "diamonds), one panel per model, setting, dataset, paraphrased variant and set of "
    "paraphrases and per metric: the compliance gap "
    "(trained minus unmonitored, with its 95% Tango score CI) and the AF-reasoning rate in "
    "the trained tier. Grey band: the paraphrases' range; dashed line: their median. A "
    "panel title says when the canonical result lies outside the paraphrases' range. Where "
    "the model, setting and variant are those of a published paraphrase spread, the green "
    "hatched band and dotted line are the published range and median (Greenblatt et al. "
    "2024, App. G: paraphrases of the paper's wording, on the paper's queries)."
)


def figure(summary: pd.DataFrame, canonical: str = CANONICAL) -> Figure:
    """The paraphrase-robustness figure (see `FIGURE_TEXT`). Raises NothingToShow when no
    condition ran a paraphrase."""
    found = points(summary, canonical)
    if found.empty:
        raise plots.NothingToShow(
            "no condition ran a paraphrase of the system prompt",
            "run a study with a `paraphrases:` condition (docs/paraphrases.md)",
        )
    flags = spread(summary, canonical)
    known = published(found)
    groups = list(found.groupby(GROUP, sort=False, dropna=False))
    label_width = 2.6  # inches of tick label per panel
    chars = plots._chars(label_width, plots.LABEL_FONT)
    labels = [[plots._wrap(_point_label(r), chars) for _, r in g.iterrows()] for _, g in groups]
    width = 2 * (label_width + 3.4) + 0.6
    titles = [
        [plots._wrap(_panel_title(key, metric, flags), plots._chars(4.6, 9)) for metric in METRICS]
        for key, _ in groups
    ]
    # Each row of panels: its rows of points, and above them its titles and below its ticks.
    heights = [
        plots._row_positions(rows)[1] * plots.ROW_HEIGHT + 0.1
        + 0.17 * max(t.count("\n") + 1 for t in row_titles) + 0.45
        for rows, row_titles in zip(labels, titles, strict=True)
    ]  # fmt: skip
    fig = plots._figure(width, sum(heights) + 1.4)
    grid = fig.subplots(
        len(groups), len(METRICS), squeeze=False, gridspec_kw={"height_ratios": heights}
    )
    limits = {metric: _limits(found, metric, known) for metric in METRICS}
    for r, (key, group) in enumerate(groups):
        for c, metric in enumerate(METRICS):
            ax = grid[r][c]
            theirs = _matching(known, key, metric)
            if theirs is not None:
                ax.axvspan(theirs["min"], theirs["max"], facecolor="none", lw=0, zorder=0.5,
                           hatch="///", edgecolor=PUBLISHED_COLOR)  # fmt: skip
                ax.axvline(theirs["median"], color=PUBLISHED_COLOR, ls=":", lw=1.6, zorder=1)
            _panel(ax, group, metric, labels[r])
            ax.set_xlim(*limits[metric])
            ax.set_title(titles[r][c], fontsize=9)
    handles = [
        Line2D([], [], ls="none", marker="o", color=PARAPHRASE_COLOR, label="paraphrase"),
        Line2D(
            [],
            [],
            ls="none",
            marker="D",
            color=CANONICAL_COLOR,
            mec="#252525",
            label="canonical prompt",
        ),
        Patch(color=RANGE_COLOR, label="paraphrases' range"),
        Line2D([], [], ls="--", color="#252525", label="paraphrases' median"),
    ]
    if not known.empty:
        handles += [
            Patch(
                facecolor="none",
                edgecolor=PUBLISHED_COLOR,
                hatch="///",
                label="published range (App. G)",
            ),
            Line2D([], [], ls=":", lw=1.6, color=PUBLISHED_COLOR, label="published median"),
        ]
    plots._legend(fig, handles)
    plots._suptitle(fig, "Paraphrase robustness: the canonical prompt among its paraphrases")
    return fig


def _panel_title(key: tuple, metric: str, flags: pd.DataFrame) -> str:
    """The group, the metric, and whether the canonical lies outside the range."""
    mine = flags[(flags[GROUP].astype(str) == [str(k) for k in key]).all(axis=1)]
    outside = mine[(mine["metric"] == metric) & mine["outside"].fillna(False)]
    title = _group_title(key).replace(" / paraphrases of", "\nparaphrases of")
    title = title.replace(" / set ", "\nset ")
    title += f"\n{METRICS[metric]}"
    if len(outside):
        sides = " and ".join(outside["side"].unique())
        title += f"\ncanonical outside the paraphrases' range ({sides})"
    return title


def _group_title(key: tuple) -> str:
    """model / setting / dataset, the variant where the paraphrases rewrite another than
    the default, and their set where the logs record it."""
    *where, variant, named = (str(k) for k in key)
    title = " / ".join(where) + ("" if variant == "default" else f" / paraphrases of {variant}")
    return title + (f" / set {named}" if named else "")


def _limits(
    found: pd.DataFrame, metric: str, known: pd.DataFrame | None = None
) -> tuple[float, float]:
    """One x-range per metric: every value, interval, published range and zero, padded."""
    columns = [metric, *INTERVALS.get(metric, ())]
    values = np.concatenate([found[c].to_numpy(dtype=float) for c in columns] + [np.zeros(1)])
    if known is not None and not known.empty:
        theirs = known[known["metric"] == metric]
        values = np.concatenate([values, theirs[["min", "max"]].to_numpy(dtype=float).ravel()])
    values = values[~np.isnan(values)]
    low, high = float(values.min()), float(values.max())
    if metric.startswith("af_rate"):
        high = max(high, 0.1)
    span = max(high - low, 0.1)
    return low - 0.08 * span, high + 0.08 * span


def _panel(ax: Axes, group: pd.DataFrame, metric: str, labels: list[str]) -> None:
    """One row per point, the canonical first, with the paraphrases' range and median;
    `labels` are the rows' finished (wrapped) tick labels."""
    y, total = plots._row_positions(labels)
    values = group[metric].to_numpy(dtype=float)
    para = (group["role"] == "paraphrase").to_numpy()
    known = values[para & ~np.isnan(values)]
    if len(known):
        ax.axvspan(known.min(), known.max(), color=RANGE_COLOR, zorder=0, lw=0)
        ax.axvline(float(np.median(known)), color="#252525", ls="--", lw=1, zorder=1)
    if metric in INTERVALS:
        low, high = (group[c].to_numpy(dtype=float) for c in INTERVALS[metric])
        ok = ~np.isnan(values)
        ax.errorbar(
            values[ok],
            y[ok],
            xerr=plots._spread(values[ok], low[ok], high[ok]),
            fmt="none",
            color="black",
            capsize=2.5,
            linewidth=0.9,
            zorder=2,
        )
    for chosen, marker, color in ((para, "o", PARAPHRASE_COLOR), (~para, "D", CANONICAL_COLOR)):
        if not chosen.any():  # an empty line's markers sit at the origin: the layout fails
            continue
        ax.plot(values[chosen], y[chosen], ls="none", marker=marker, color=color,
                mec="#252525", mew=0.8, ms=6, zorder=3, clip_on=False)  # fmt: skip
    for i in np.flatnonzero(np.isnan(values)):
        ax.text(0.01, y[i], "n/a", transform=ax.get_yaxis_transform(), va="center", fontsize=8)
    ax.set_yticks(y, labels, fontsize=plots.LABEL_FONT)
    ax.set_ylim(total, 0)
    if metric == "compliance_gap":
        ax.axvline(0, color="black", linewidth=0.8, zorder=1)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="y", visible=False)


def _point_label(row: pd.Series) -> str:
    if row["role"] == "canonical":
        return f"canonical: {row['name']} ({row['prompt']})"
    return str(row["label"])


# The report's section ----------------------------------------------------------------------------


INTRO = (
    "Each paraphrase condition runs a paraphrase of the system prompt made by "
    "`python -m evals paraphrase` (the instructions and the worked examples rewritten "
    "separately by the paraphraser its `.yaml` names, keeping every protocol tag and at "
    "least 70% of the length). The "
    "canonical condition is the one labelled `{canonical}` that ran the variant the "
    "paraphrases rewrite (a `{canonical}` of another variant is never compared with "
    "them). The paraphrases give a spread: "
    "a canonical result outside it means the model answers the canonical wording unlike "
    "the same content in other words, which a model that has seen the published prompt "
    "might do (the memorization check). The range is of point estimates: with few queries, "
    "sampling alone can put a result outside it, so read it with the intervals. Each set of "
    "paraphrases (the files of one `python -m evals paraphrase` command, whose id the runs "
    "record) has a spread of its own: sets are never pooled."
)


def set_lines(found: pd.DataFrame) -> list[str]:
    """One paragraph where the points (`points`) hold several sets of paraphrases (logs of
    several studies read together, say): each set, what it holds, and that each has its
    own spread. None where there is one set."""
    para = found[found["role"] == "paraphrase"]
    sets = sorted(para[SET].unique(), key=lambda named: (named != "", named))
    if len(sets) < 2:
        return []
    listed = []
    for named in sets:
        labels = sorted(para.loc[para[SET] == named, "label"].astype(str).unique())
        held = labels[0] if len(labels) == 1 else f"{labels[0]} to {labels[-1]}"
        what = f"set {named}" if named else "logs that record no set (older runs)"
        listed.append(f"{what}: {len(labels)} paraphrase(s), {held}")
    return [
        f"These logs hold {len(sets)} sets of paraphrases ({'; '.join(listed)}). A set is "
        "the files of one `python -m evals paraphrase` command (one source prompt, "
        "paraphraser, seed and settings), and its id is recorded by each run of it. Each set "
        "has its own spread below, compared with the canonical condition of its model, "
        "setting, dataset and variant; the sets are never pooled."
        + (
            " The logs that record no set count as one set; they may hold several."
            if "" in sets
            else ""
        )
    ]


def report_section(
    summary: pd.DataFrame, figure_names: Sequence[str] = (), canonical: str = CANONICAL
) -> tuple[str, list[str], list[tuple[str, pd.DataFrame, list[str]]], list[str]] | None:
    """(title, paragraphs, [(table name, table, notes)], figure names) of the report's
    section, or None where no condition ran a paraphrase. The figure is named where the
    report draws it (`figure_names`, the report's registered figures)."""
    found = points(summary, canonical)
    if found.empty:
        return None
    flags = spread(summary, canonical)
    paragraphs = [INTRO.format(canonical=canonical), *set_lines(found)]
    paragraphs += findings(flags, canonical)
    paragraphs += published_lines(flags, published(found))
    shown = found.assign(
        prompt=[
            f"canonical: {prompt}" if role == "canonical" else "paraphrase"
            for role, prompt in zip(found["role"], found["prompt"], strict=True)
        ]
    ).rename(
        columns={
            "n_pairs": "n (pairs)",
            "compliance_gap": "gap",
            "gap_ci_low": "gap CI low",
            "gap_ci_high": "gap CI high",
            "af_rate_trained": "AF in training",
            "source_variant": "variant",
            SET: "set",
        }
    )
    shown = shown.drop(columns=["role", "label"])
    shown["set"] = shown["set"].replace("", UNNAMED)
    table = flags.assign(
        metric=flags["metric"].map(METRICS),
        outside=[_in_range(o, s) for o, s in zip(flags["outside"], flags["side"], strict=True)],
    ).rename(
        columns={
            "canonical_prompt": "canonical prompt",
            "canonical_value": "canonical value",
            "outside": "canonical in range",
            "source_variant": "variant",
            SET: "set",
        }
    )
    table = table.drop(columns=["side"])
    table["set"] = table["set"].replace("", UNNAMED)
    tables = [
        (
            "Paraphrase spread",
            table,
            ["The paraphrases' median and range of each metric, and the canonical value."],
        ),
        (
            "Paraphrase points",
            shown,
            ["Every point of the figure, the canonical condition first in each group."],
        ),
    ]
    return "Paraphrase robustness", paragraphs, tables, [FIGURE] if FIGURE in figure_names else []


def _in_range(outside: object, side: str) -> str:
    if outside is pd.NA or outside is None or (isinstance(outside, float) and math.isnan(outside)):
        return "n/a"
    return f"no: {side}" if outside else "yes"


def _value(metric: str, value: float) -> str:
    """A gap with its sign, a rate without."""
    return f"{value:+.3f}" if metric == "compliance_gap" else f"{value:.3f}"


def findings(flags: pd.DataFrame, canonical: str = CANONICAL) -> list[str]:
    """One line per group, metric and canonical condition: the spread and the check."""
    lines = []
    for _, row in flags.iterrows():
        shown = {k: _value(row["metric"], row[k]) for k in ("median", "min", "max")}
        shown["canonical"] = _value(row["metric"], row["canonical_value"])
        where = f"{_group_title(tuple(row[GROUP]))}, {METRICS[row['metric']]}"
        if row["paraphrases"] == 0:
            lines.append(f"{where}: no paraphrase has a value.")
            continue
        few = (
            f" (only {row['paraphrases']} paraphrase(s): a weak check)"
            if row["paraphrases"] < FEW
            else ""
        )
        text = (
            f"{where}: across {row['paraphrases']} paraphrase(s) median {shown['median']}, "
            f"range [{shown['min']}, {shown['max']}]{few}"
        )
        if pd.isna(row["canonical"]):
            lines.append(
                f"{text}; no canonical condition (label {canonical}) ran variant "
                f"{row['source_variant']} to compare."
            )
        elif pd.isna(row["canonical_value"]):
            lines.append(f"{text}; the canonical {row['canonical']} has no value.")
        elif row["outside"]:
            lines.append(
                f"{text}; the canonical {row['canonical']} ({row['canonical_prompt']}), "
                f"{shown['canonical']}, lies {row['side']} every paraphrase: "
                "outside their range (memorization check flagged)."
            )
        else:
            lines.append(
                f"{text}; the canonical {row['canonical']} ({row['canonical_prompt']}), "
                f"{shown['canonical']}, lies inside their range."
            )
    return lines
