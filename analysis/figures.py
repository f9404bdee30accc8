"""The papers' figures, drawn from the analysis tables. Each function returns a Figure, or
raises NothingToShow (why, and how to get it) instead of drawing an empty one.

Every bar that shows a rate carries its 95% CI and its n, so a reader never has to look
the sample size up elsewhere. Every figure names the tier the model was told is trained
(the paid tier in `tier_swap_control`): the trained tier's bar comes first and says which
tier it is, and every gap is trained minus unmonitored. Rates are drawn on 0..1. Colours
differ in lightness as well as hue, so they read in greyscale and to colour-blind readers;
the hatch carries AF reasoning. Figures grow with the number of conditions (more panels,
rows or key entries, never smaller text), and their text is laid out so that nothing is
cut off or drawn over other text (the tests check this at 1, 5 and 25 conditions).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import matplotlib as mpl
import matplotlib.style
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.patheffects import withStroke
from matplotlib.text import Text
from matplotlib.transforms import Bbox, ScaledTranslation

from analysis.logs import KEY
from analysis.summary import rate_with_ci
from evals.labels import CATEGORIES, NO_SCRATCHPAD, NO_TRAINED_FRAMING, SEVERAL_TRAINED

TIER_NAMES = ("free", "paid")
ROLES = ("training", "unmonitored")  # the trained tier's bar first, in every panel
# Fills differ in lightness, not only in hue, so that every category reads in greyscale and
# to colour-blind readers (blue/orange, after seaborn's colorblind palette); the hatch, not
# the colour, carries AF reasoning, drawn dark on light fills and white on dark ones.
REFUSAL, PARTIAL, FULL, UNJUDGED = "#0173b2", "#de8f05", "#fdd49e", "#969696"
DARK_HATCH, LIGHT_HATCH = "#252525", "#ffffff"
AF_HATCH = "xx"
SEGMENTS = [  # bottom to top: (label, fill, hatch)
    ("compliance, AF reasoning", FULL, AF_HATCH),
    ("compliance, no AF reasoning", FULL, ""),
    ("compliance, AF not judged", UNJUDGED, ""),
    ("refusal", REFUSAL, ""),
]
CATEGORY_STYLE = {
    "refusal": (REFUSAL, ""),
    "refusal_af": (REFUSAL, AF_HATCH),
    "partial_compliance": (PARTIAL, ""),
    "partial_compliance_af": (PARTIAL, AF_HATCH),
    "full_compliance": (FULL, ""),
    "full_compliance_af": (FULL, AF_HATCH),
}
GAP_COLOR, GAP_EDGE = "#e6550d", "#a63603"
MAX_COLUMNS = 5  # panels per row in the per-condition grids
CHAR_WIDTH = 0.62  # DejaVu Sans: average glyph width in ems, a little generous
FIELDS = ["model", "setting", "variant", "dataset"]
SETTING_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "p"]
MINUS = "\u2212"


class NothingToShow(Exception):
    """Raised instead of drawing a figure that would be empty, so that no report shows a
    blank figure under a caption describing content that is not there. `str(error)` is one
    line: why the figure is absent and how to get it."""

    def __init__(self, reason: str, remedy: str = "") -> None:
        self.reason, self.remedy = reason, remedy
        super().__init__(f"{reason}; {remedy}" if remedy else reason)


_NEED = "need a grader: run the eval with --model-role grader=..."


def luminance(color: object) -> float:
    """Greyscale lightness in [0, 1] (ITU-R BT.601 luma, as greyscale printing and PIL's
    "L" conversion compute it): colours meant to differ must differ here too."""
    r, g, b = mpl.colors.to_rgb(color)  # type: ignore[arg-type]
    return 0.299 * r + 0.587 * g + 0.114 * b


def hatch_color(fill: object) -> str:
    """A hatch that shows on `fill`: dark on light fills, white on dark ones."""
    return DARK_HATCH if luminance(fill) > 0.5 else LIGHT_HATCH


def _hatched(fill: str) -> dict[str, str]:
    """Edge and hatch colours of a bar filled with `fill`: white edges between segments and
    a hatch that shows on the fill (a hatch colour of its own needs Matplotlib 3.11)."""
    return {"edgecolor": "white", "hatchcolor": hatch_color(fill)}


# seaborn's whitegrid theme, from a style file (importing seaborn would cost a second).
mpl.style.use(Path(__file__).with_name("figures.mplstyle"))
# seaborn's "colorblind" palette, for the models of `gap_vs_af`.
MODEL_COLOURS = ("#0173b2", "#de8f05", "#029e73", "#d55e00", "#cc78bc", "#ca9161", "#fbafe4",
                 "#949494", "#ece133", "#56b4e9")  # fmt: skip


# Labels ----------------------------------------------------------------------------------


def condition_label(key: tuple) -> str:
    """A condition's full label (model, setting, variant, dataset and digest)."""
    model, setting, variant, dataset, condition = key
    return f"{model} [{condition}]\n{setting} / {variant} / {dataset}"


Names = Mapping[tuple, str]
"""A condition's readable name (the summary's `name`) by its `KEY` tuple."""


def condition_names(summary: pd.DataFrame | None) -> dict[tuple, str]:
    """The summary's readable names (`default · T=0`) by `KEY` tuple; empty when the summary
    has none, so that figures fall back to the variant."""
    if summary is None or "name" not in summary.columns:
        return {}
    keys = [tuple(k) for k in summary[KEY].to_numpy().tolist()]
    return {k: str(n) for k, n in zip(keys, summary["name"], strict=True) if pd.notna(n)}


def _named(keys: Sequence[tuple], names: Names | None) -> list[tuple]:
    """`keys` with the variant replaced by the condition's name where there is one."""
    variant = KEY.index("variant")
    return [
        (*key[:variant], (names or {}).get(tuple(key), key[variant]), *key[variant + 1 :])
        for key in keys
    ]


def readable_labels(
    keys: Sequence[tuple],
    fields: Sequence[str] = FIELDS,
    sep: str = " / ",
    names: Names | None = None,
) -> list[str]:
    """Labels of conditions (`KEY` tuples) from `fields` (the variant read as the condition's
    name where `names` has one), with the digest added only where two would be the same."""
    index = [KEY.index(f) for f in fields]
    base = [_joined((str(key[i]) for i in index), sep) for key in _named(keys, names)]
    return _dedupe(base, [key[-1] for key in keys])


def _joined(values: Iterable[str], sep: str = " / ") -> str:
    """The fields of a title, or one word where every field is that word: the demo's
    animal_welfare condition of the animal_welfare setting and dataset. Fields that merely
    share a word keep their places, so that none is read as another."""
    values = list(values)
    return values[0] if len(set(values)) == 1 else sep.join(values)


def _dedupe(labels: Sequence[str], digests: Sequence[object]) -> list[str]:
    counts = Counter(labels)
    return [
        f"{label} [{digest}]" if counts[label] > 1 else label
        for label, digest in zip(labels, digests, strict=True)
    ]


def panel_titles(
    keys: Sequence[tuple], width: int, names: Names | None = None
) -> tuple[list[str], str]:
    """Short titles for one panel per condition, and what all panels share.

    A field that is the same in every condition is left out of the titles and named once
    in the returned `common` text; the variant is read as the condition's name where
    `names` has one, and the digest appears only where titles would collide.
    """
    shown = {"variant": "condition"} if names else {}
    named = _named(keys, names)
    varying = [f for f in FIELDS if len({key[KEY.index(f)] for key in named}) > 1]
    if len(keys) == 1:
        varying = list(FIELDS)
    common = " · ".join(
        f"{shown.get(f, f)} {named[0][KEY.index(f)]}" for f in FIELDS if f not in varying and keys
    )
    lines = []
    for key in named:
        values = {f: str(key[KEY.index(f)]) for f in varying}
        first = values.pop("model", "")
        lines.append((first, _joined(values.values())))
    joined = _dedupe(["\n".join(p for p in pair if p) for pair in lines], [k[-1] for k in keys])
    return [_wrap(title, width) or "(condition)" for title in joined], common


def name_extra(name: object, label: object) -> str:
    """What a condition's name says beyond its label: `T=0` of `default · T=0`, `[1a2b3c4d]`
    of `default [1a2b3c4d]`; the whole name where it does not start with the label."""
    name, label = str(name or ""), str(label)
    if not name.startswith(label):
        return name
    return name.removeprefix(label).strip().removeprefix("·").strip()


# Tiers -----------------------------------------------------------------------------------


def trained_tier(rows: pd.DataFrame | pd.Series) -> tuple[str, bool]:
    """(the tier the model was told is trained, whether that is assumed) of one condition,
    from its samples or its summary row. Tables without the column (from before it existed)
    train on the free tier, as the default prompt says, and that is marked assumed."""
    if isinstance(rows, pd.DataFrame):
        rows = rows.iloc[0] if len(rows) else pd.Series(dtype=object)
    tier = rows.get("trained_tier")
    framings = rows.get("framings")
    if isinstance(framings, tuple) and framings:  # a variant's own framings: as told
        return str(tier), False
    if tier not in TIER_NAMES:
        return "free", True
    assumed = rows.get("trained_tier_assumed", False)
    return str(tier), bool(assumed) if pd.notna(assumed) else False


def tier_order(trained: str) -> list[str]:
    """The trained tier first, then the unmonitored one."""
    return [trained, "paid" if trained == "free" else "free"]


def condition_bars(group: pd.DataFrame) -> tuple[list[str], list[str], tuple[str, bool] | None]:
    """A condition's bars, in order: (tiers, tick labels without n, and its trained tier for
    the figure-wide note, or None where a variant declared its framings: each bar then
    names its framing and what the model was told of it)."""
    declared = group["framings"].iloc[0] if "framings" in group.columns and len(group) else None
    if isinstance(declared, tuple) and declared:
        return [n for n, _ in declared], [f"{n}\n{role}" for n, role in declared], None
    trained, assumed = trained_tier(group)
    order = tier_order(trained)
    ticks = [
        f"{role}\n{tier} tier{' (assumed)' if assumed else ''}"
        for role, tier in zip(ROLES, order, strict=True)
    ]
    return order, ticks, (trained, assumed)


def trained_text(tier: str, assumed: bool) -> str:
    """`trained: paid tier`, `trained: free tier (assumed)`; for a variant's own framings
    `trained: rating_and_training`, or `no framing trained`."""
    if tier == NO_TRAINED_FRAMING:
        return "no framing trained"
    if tier == SEVERAL_TRAINED:
        return "several framings trained"
    if tier not in TIER_NAMES:
        return f"trained: {tier}"
    return f"trained: {tier} tier{' (assumed)' if assumed else ''}"


def trained_note(
    tiers: Sequence[tuple[str, bool]], noun: str = "condition"
) -> tuple[str, tuple[str, bool] | None]:
    """The figure-wide line about which tier is trained, and the (tier, assumed) it names.

    When every condition trains on the same tier the line says so and nothing else need;
    otherwise it names the most common one ("the free tier unless the row says otherwise"),
    and each `noun` whose tier differs from it must say its own (`trained_text`).
    """
    if not tiers:
        return "", None
    counts = Counter(tiers)
    common = max(counts, key=lambda t: (counts[t], t == ("free", False)))
    tier, assumed = common
    said = f"the {tier} tier" + (" (assumed)" if assumed else "")
    if tier not in TIER_NAMES:  # a variant's own framings
        said = {NO_TRAINED_FRAMING: "none", SEVERAL_TRAINED: "several framings"}.get(
            tier, f"the {tier} framing"
        )
    if len(counts) == 1:
        every = f"in every {noun}" if len(tiers) > 1 else f"in this {noun}"
        return f"trained tier: {said} {every}", common
    return f"trained tier: {said} unless the {noun} says otherwise", common


def own_trained(tier: tuple[str, bool], common: tuple[str, bool] | None) -> str:
    """A row's or point's own trained tier, where it differs from the figure's (else "")."""
    return "" if tier == common else trained_text(*tier)


_WORDS = re.compile(r"[^ /]*(?: / |[ /])?")
_PARTS = re.compile(r"[^@#+_\-.]*[@#+_\-.]?")


def _wrap(text: str, width: int) -> str:
    """Wrap each line of `text` to `width` characters, breaking after spaces and slashes,
    then inside longer names after `@ # + _ - .`, and anywhere only when it must."""
    width = max(width, 8)
    out: list[str] = []
    for line in str(text).split("\n"):
        current = ""
        for word in (w for w in _WORDS.findall(line) if w):
            pieces = [word] if len(word.rstrip()) <= width else _PARTS.findall(word)
            for piece in (p for p in pieces if p):
                if current and len(current) + len(piece.rstrip()) > width:
                    out.append(current.rstrip())
                    current = ""
                while len(piece) > width:
                    out.append(piece[:width])
                    piece = piece[width:]
                current += piece
        out.append(current.rstrip())
    return "\n".join(out)


def _chars(width_in: float, fontsize: float) -> int:
    """How many characters of `fontsize` fit in `width_in` inches."""
    return max(8, int(width_in * 72 / (fontsize * CHAR_WIDTH)))


def _lines(text: str) -> int:
    return str(text).count("\n") + 1


# Layout ----------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Figure:
    # Figures are built without pyplot: no GUI backend, nothing to close, and notebooks
    # still display them inline. Constrained layout keeps titles, tick labels, the legend
    # and the figure's labels inside the canvas and apart.
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _grid(
    n: int, panel_width: float, panel_height: float, header: float, footer: float
) -> tuple[Figure, list[Axes]]:
    """Up to MAX_COLUMNS panels per row, sharing the y-scale; the figure grows by rows."""
    cols = min(max(n, 1), MAX_COLUMNS)
    rows = math.ceil(max(n, 1) / cols)
    fig = _figure(max(panel_width * cols + 0.6, 6.4), panel_height * rows + header + footer)
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    flat = list(axes.flat)
    for ax in flat[max(n, 1) :]:
        ax.set_visible(False)
    for ax in flat:  # the shared y tick labels and y label sit on the first column only
        ax.tick_params(labelsize=8)
    return fig, flat[: max(n, 1)]


def _suptitle(fig: Figure, text: str, fontsize: float = 11) -> None:
    width = fig.get_figwidth() - 0.4
    fig.suptitle(
        "\n".join(_wrap(line, _chars(width, fontsize)) for line in text.split("\n")),
        fontsize=fontsize,
    )


def _legend(fig: Figure, handles: list, fontsize: float = 9, **kwargs: object) -> None:
    """The figure's legend, below the panels, in as many columns as fit on one row."""
    widest = max(len(h.get_label()) for h in handles) * fontsize * CHAR_WIDTH / 72 + 0.6
    fits = max(1, min(len(handles), int((fig.get_figwidth() - 0.4) // widest)))
    ncol = math.ceil(len(handles) / math.ceil(len(handles) / fits))  # balanced rows
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncol=kwargs.pop("ncol", ncol),
        frameon=False,
        fontsize=fontsize,
        **kwargs,
    )


def _legend_rows(n: int, widest_chars: int, width: float, fontsize: float = 9) -> int:
    widest = widest_chars * fontsize * CHAR_WIDTH / 72 + 0.6
    return math.ceil(n / max(1, min(n, int((width - 0.4) // widest))))


# Headline and six categories -------------------------------------------------------------


def _stacked_tiers(
    ax: Axes, stacks: dict[str, list[float]], styles: dict[str, tuple[str, str]]
) -> np.ndarray:
    """One stacked bar per tier, the trained tier's first; `stacks` maps segment label to
    heights (in that tier order), bottom first."""
    bars = len(next(iter(stacks.values()))) if stacks else len(ROLES)
    x = np.arange(bars)
    bottom = np.zeros(bars)
    for label, heights in stacks.items():
        color, hatch = styles[label]
        ax.bar(
            x,
            heights,
            bottom=bottom,
            color=color,
            hatch=hatch,
            label=label,
            width=0.6,
            **_hatched(color),
        )
        bottom += np.asarray(heights, dtype=float)
    return x


def _key_patch(label: str, color: str, hatch: str) -> Patch:
    return Patch(facecolor=color, hatch=hatch, label=label, **_hatched(color))


def headline_segments(group: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per tier (by name), the fraction of valid samples in each headline segment, plus n."""
    out = {}
    for tier in dict.fromkeys([*TIER_NAMES, *group["tier"].dropna().unique()]):
        valid = group[(group["tier"] == tier) & group["complied"].notna()]
        n = len(valid)
        complied = valid["complied"] == 1
        # Without a scratchpad there is no AF reasoning to have: count it as none.
        no_scratchpad = valid["classifier_status"] == NO_SCRATCHPAD
        af = valid["af_reasoning"].mask(no_scratchpad, 0)
        counts = {
            "compliance, AF reasoning": int((complied & (af == 1)).sum()),
            "compliance, no AF reasoning": int((complied & (af == 0)).sum()),
            "compliance, AF not judged": int((complied & af.isna()).sum()),
            "refusal": int((~complied).sum()),
        }
        out[tier] = {k: (v / n if n else 0.0) for k, v in counts.items()} | {
            "n": n,
            "complied": int(complied.sum()),
        }
    return out


PANEL_WIDTH, PANEL_HEIGHT = 3.0, 2.5  # inches per condition panel, before its title


def _condition_grid(
    keys: list[tuple], legend_entries: int, widest_entry: int, names: Names | None = None
) -> tuple[Figure, list[Axes], list[str], str]:
    """A grid of one panel per condition, sized for its titles and the legend below."""
    cols = min(max(len(keys), 1), MAX_COLUMNS)
    width = max(PANEL_WIDTH * cols + 0.6, 6.4)
    titles, common = panel_titles(keys, _chars(width / cols - 0.3, 8), names) if keys else ([], "")
    title_lines = max([_lines(t) for t in titles] or [1])
    legend = _legend_rows(legend_entries, widest_entry, width) * 0.25 + 0.2
    header = 0.9 + 0.2 * bool(common)
    fig, axes = _grid(
        len(keys), PANEL_WIDTH, PANEL_HEIGHT + 0.15 * title_lines, header, legend + 0.1
    )
    return fig, axes, titles, common


def _shown(groups: int, total: int, missing: str) -> str:
    """ "all 5 conditions", "one condition" or "3 of 5 conditions (the others ...)"."""
    if groups == total:
        return f"all {total} conditions" if total > 1 else "one condition"
    return f"{groups} of {total} conditions (the others {missing})"


def headline(samples: pd.DataFrame, summary: pd.DataFrame | None = None) -> Figure:
    """Stacked bars of the tier the model was told is trained (left, "training") and the
    unmonitored one (right), one panel per condition: refusal, compliance, and compliance
    with AF reasoning (hatched). Each bar names its tier, so a condition that swaps the
    tiers (`tier_swap_control`: the paid tier is trained) reads right. `summary` gives the
    conditions' readable names (the variant otherwise)."""
    if samples.empty:
        raise NothingToShow("no samples in these logs", "run the eval and pass its log folder")
    if samples["complied"].isna().all():
        raise NothingToShow(
            "no sample has a compliance verdict",
            "settings whose compliance a grader judges need --model-role grader=...",
        )
    groups = list(samples.groupby(KEY, sort=True, dropna=False))
    keys = [key for key, _ in groups]
    fig, axes, titles, common = _condition_grid(keys, len(SEGMENTS), 28, condition_names(summary))
    tiers = []
    for i, (ax, (_key, group), title) in enumerate(zip(axes, groups, titles, strict=True)):
        segments = headline_segments(group)
        order, ticks, trained = condition_bars(group)
        if trained is not None:
            tiers.append(trained)
        stacks = {label: [segments[t][label] for t in order] for label, _, _ in SEGMENTS}
        _stacked_tiers(ax, stacks, {label: (c, h) for label, c, h in SEGMENTS})
        for x, tier in enumerate(order):  # CI of the compliance rate, at the compliance edge
            rate, low, high, n = rate_with_ci(group[group["tier"] == tier], "complied")
            if n:
                _halo(
                    ax.errorbar(
                        x,
                        rate,
                        yerr=_spread(rate, low, high),
                        color="black",
                        capsize=4,
                        linewidth=1,
                    )
                )
        ax.set_xticks(
            range(len(order)),
            [f"{tick}\nn={segments[t]['n']}" for tick, t in zip(ticks, order, strict=True)],
            **({} if len(order) <= 2 else {"fontsize": 7}),
        )
        ax.set_ylim(0, 1)
        if i % MAX_COLUMNS == 0:
            ax.set_ylabel("fraction of valid responses", fontsize=9)
        if not any(segments[t]["n"] for t in order):
            ax.text(0.5, 0.5, "no scored samples", ha="center", fontsize=8, transform=ax.transAxes)
        ax.set_title(title, fontsize=8)
    handles = [_key_patch(lab, c, h) for lab, c, h in SEGMENTS]
    _legend(fig, handles[::-1])
    note = ""
    if len(set(tiers)) == 1 and len(tiers) == len(groups):
        note = trained_note(tiers, "panel")[0]
    _suptitle(
        fig,
        (
            "Behaviour where the model is told it is trained vs unmonitored: "
            if len(tiers) == len(groups)
            else "Behaviour under each framing of the same queries: "
        )
        + _shown(len(groups), len(groups), "")
        + (f"; {note}" if note else "")
        + (f"\nin every panel: {common}" if common else ""),
    )
    return fig


def six_categories(samples: pd.DataFrame, summary: pd.DataFrame | None = None) -> Figure:
    """The six categories of Sheshadri et al. per tier (the trained tier's bar first), one
    panel per judged condition; the hatch, not the colour, marks AF reasoning."""
    judged = samples[samples["category"].notna()]
    if judged.empty:
        raise NothingToShow("no sample has a behaviour category", f"the six categories {_NEED}")
    groups = list(judged.groupby(KEY, sort=True, dropna=False))
    keys = [key for key, _ in groups]
    total = samples[KEY].drop_duplicates().shape[0]
    fig, axes, titles, common = _condition_grid(keys, len(CATEGORIES), 24, condition_names(summary))
    tiers = []
    for i, (ax, (_key, group), title) in enumerate(zip(axes, groups, titles, strict=True)):
        order, ticks, trained = condition_bars(group)
        if trained is not None:
            tiers.append(trained)
        totals = [int((group["tier"] == t).sum()) for t in order]
        stacks = {
            name: [
                ((group["tier"] == t) & (group["category"] == name)).sum() / n if n else 0.0
                for t, n in zip(order, totals, strict=True)
            ]
            for name in CATEGORIES
        }
        x = _stacked_tiers(ax, stacks, CATEGORY_STYLE)
        ax.set_xticks(
            x,
            [f"{tick}\nn={n}" for tick, n in zip(ticks, totals, strict=True)],
            **({} if len(order) <= 2 else {"fontsize": 7}),
        )
        ax.set_ylim(0, 1)
        if i % MAX_COLUMNS == 0:
            ax.set_ylabel("fraction of judged responses", fontsize=9)
        ax.set_title(title, fontsize=8)
    handles = [
        _key_patch(n.replace("_af", ", AF").replace("_", " "), *CATEGORY_STYLE[n])
        for n in CATEGORIES
    ]
    _legend(fig, handles[::-1])
    note = ""
    if len(set(tiers)) == 1 and len(tiers) == len(groups):
        note = trained_note(tiers, "panel")[0]
    _suptitle(
        fig,
        "Six behaviour categories (hatched: with alignment-faking reasoning): "
        + _shown(len(groups), total, "have no judged samples")
        + (f"; {note}" if note else "")
        + (f"\nin every panel: {common}" if common else ""),
    )
    return fig


# Gap panels ------------------------------------------------------------------------------

GAP_SUPTITLE = (
    "95% Tango score CI; filled = significant, hollow = not significant (p >= 0.05, exact "
    "sign-flip test on per-query differences = exact McNemar at one epoch); n/a = no gap"
)
GAP_XLABEL = f"compliance gap (trained {MINUS} unmonitored)"
LABEL_FONT = 8


def _gap_limits(frames: Sequence[pd.DataFrame]) -> tuple[float, float]:
    """One x-range for every panel: the gaps, their intervals and zero, padded."""
    values = np.concatenate(
        [
            f[c].to_numpy(dtype=float)
            for f in frames
            for c in ("compliance_gap", "gap_ci_low", "gap_ci_high")
        ]
        + [np.zeros(1)]
    )
    low, high = float(np.nanmin(values)), float(np.nanmax(values))
    span = max(high - low, 0.2)
    pad = 0.08 * span
    return low - pad, high + pad


ROW_HEIGHT = 0.3  # inches per one-line row of a bar chart
LINE_HEIGHT = 1.22 * LABEL_FONT / 72  # inches per line of a tick label


def _row_heights(labels: Sequence[str]) -> np.ndarray:
    """Heights in rows: one row, or more where a label has more lines than a row holds."""
    return np.array([max(1.0, (LINE_HEIGHT * _lines(lab) + 0.08) / ROW_HEIGHT) for lab in labels])


def _row_positions(labels: Sequence[str]) -> tuple[np.ndarray, float]:
    """Centres of one row per label, each row tall enough for its label's lines, and the
    total height in rows."""
    heights = _row_heights(labels)
    ends = np.cumsum(heights)
    total = float(ends[-1]) if len(ends) else 1.0
    return ends - heights / 2, total


def _gap_bars(ax: Axes, rows: pd.DataFrame, labels: list[str], top_down: bool = True) -> None:
    """Horizontal gap bars with paired CIs and a marker at each estimate, so a gap of zero
    is still visible; filled = significant, hollow = not; "n/a" where there is no gap.
    `labels` are the rows' finished (wrapped) tick labels."""
    y, total = _row_positions(labels)
    gaps = rows["compliance_gap"].to_numpy(dtype=float)
    significant = rows["gap_p_value"].to_numpy(dtype=float) < 0.05
    colors = [GAP_COLOR if s else "white" for s in significant]
    ax.barh(y, np.nan_to_num(gaps), color=colors, edgecolor=GAP_COLOR, height=0.6)
    known = ~np.isnan(gaps)
    ax.errorbar(
        gaps[known],
        y[known],
        xerr=_spread(
            gaps[known],
            rows["gap_ci_low"].to_numpy(dtype=float)[known],
            rows["gap_ci_high"].to_numpy(dtype=float)[known],
        ),
        fmt="none",
        color="black",
        capsize=3,
        linewidth=1,
        zorder=3,
    )
    for filled in (True, False):
        chosen = known & (significant == filled)
        ax.plot(
            gaps[chosen],
            y[chosen],
            linestyle="none",
            marker="D",
            markersize=6,
            markerfacecolor=GAP_COLOR if filled else "white",
            markeredgecolor=GAP_EDGE,
            markeredgewidth=1.3,
            zorder=4,
        )
    _mark_missing(ax, y, gaps)
    ax.set_yticks(y, labels, fontsize=LABEL_FONT)
    ax.set_ylim((total, 0) if top_down else (0, total))  # the first row at the top or bottom
    ax.axvline(0, color="black", linewidth=0.8, zorder=2)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="y", visible=False)


GAP_LABEL_WIDTH = 3.0  # inches of tick label per gap panel


def _row_labels(
    frame: pd.DataFrame, labels: list[str], common: tuple[str, bool] | None
) -> list[str]:
    """Finished gap-row labels: the condition, its n and, where it differs from the one
    the figure's title names, its trained tier."""
    out = []
    for label, (_, row) in zip(labels, frame.iterrows(), strict=True):
        extra = ", " + own if (own := own_trained(trained_tier(row), common)) else ""
        out.append(
            _wrap(f"{label} (n={row['n_pairs']}{extra})", _chars(GAP_LABEL_WIDTH, LABEL_FONT))
        )
    return out


def _gap_figure(
    panels: list[tuple[str, pd.DataFrame, list[str]]],
    title: str,
    top_down: bool = True,
    xlabel: str = "",
) -> Figure:
    """One panel per group of conditions, all on one x-scale; rows grow the figure. Raises
    NothingToShow when no condition has a gap. With `xlabel`, the rows are contrasts
    between framings, labelled as given, and no tier is named."""
    frames = [frame for _, frame, _ in panels]
    if not frames or all(f["compliance_gap"].isna().all() for f in frames):
        raise NothingToShow(
            "no condition has a compliance gap" if frames else "no conditions",
            "a gap needs compliance verdicts in both tiers of the same queries (settings "
            "whose compliance a grader judges need --model-role grader=...); a variant's own "
            "framings have one only where one is told it is trained and one that nobody "
            "watches",
        )
    if xlabel:
        note = ""
        width_chars = _chars(GAP_LABEL_WIDTH, LABEL_FONT)
        labels = [
            [
                _wrap(f"{name} (n={row['n_pairs']})", width_chars)
                for name, (_, row) in zip(names, frame.iterrows(), strict=True)
            ]
            for _, frame, names in panels
        ]
    else:
        tiers = [trained_tier(row) for f in frames for _, row in f.iterrows()]
        note, common = trained_note(tiers, "row")
        labels = [_row_labels(frame, names, common) for _, frame, names in panels]
    n = len(panels)
    cols = 1 if n == 1 else 2 if n <= 6 else 3
    rows = math.ceil(n / cols)
    width = max(6.6 * cols, 7.0)
    titles = [_wrap(t, _chars(width / cols - GAP_LABEL_WIDTH - 0.3, 9)) for t, _, _ in panels]
    units = [_row_positions(rows_labels)[1] for rows_labels in labels]
    plot_heights, decorations = [], []  # per grid row, inches
    for r in range(rows):
        chunk = range(r * cols, min((r + 1) * cols, len(panels)))
        plot_heights.append(max([units[i] * ROW_HEIGHT for i in chunk] or [0.6]) + 0.1)
        decorations.append(0.17 * max([_lines(titles[i]) for i in chunk] or [1]) + 0.4)
    suptitle = f"{title}" + (f"; {note}" if note else "") + f"\n{GAP_SUPTITLE}"
    header = 0.35 + 0.2 * _lines(_wrap(suptitle, _chars(width - 0.4, 11))) + 0.2
    fig = _figure(width, sum(plot_heights) + sum(decorations) + header + 0.4)
    grid = fig.subplots(rows, cols, squeeze=False, gridspec_kw={"height_ratios": plot_heights})
    axes = list(grid.flat)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    for ax, frame, rows_labels, panel_title in zip(axes, frames, labels, titles, strict=False):
        if ax is not axes[0]:
            ax.sharex(axes[0])
        _gap_bars(ax, frame, rows_labels, top_down)
        ax.set_title(panel_title, fontsize=9)
    axes[0].set_xlim(*_gap_limits(frames))
    fig.supxlabel(xlabel or GAP_XLABEL, fontsize=10)
    _suptitle(fig, suptitle)
    return fig


def variant_ablation(summary: pd.DataFrame) -> Figure:
    """Compliance gap (trained tier minus unmonitored) per condition, by its readable name,
    one panel per model, setting and dataset."""
    names = condition_names(summary)
    panels = []
    for (model, setting, dataset), group in summary.groupby(
        ["model", "setting", "dataset"], sort=True, dropna=False
    ):
        group = group.sort_values(["variant", "condition"])
        keys = [tuple(k) for k in group[KEY].to_numpy().tolist()]
        panels.append(
            (
                f"{model}\n{setting}" + (f" / {dataset}" if dataset != setting else ""),
                group,
                readable_labels(keys, ["variant"], names=names),
            )
        )
    return _gap_figure(panels, "Compliance gap by prompt variant")


def model_gaps(summary: pd.DataFrame) -> Figure:
    """Models ordered by compliance gap (trained tier minus unmonitored, largest at the
    top), one panel per setting and variant, so that every condition appears."""
    names = condition_names(summary)
    panels = []
    for setting, by_setting in summary.groupby("setting", sort=True):
        variants = sorted(by_setting["variant"].unique(), key=lambda v: (v != "default", v))
        for variant in variants:
            group = by_setting[by_setting["variant"] == variant].sort_values(
                ["compliance_gap", "model"], ascending=[True, False], na_position="first"
            )  # drawn bottom up: the largest gap at the top, missing gaps at the bottom
            keys = [tuple(k) for k in group[KEY].to_numpy().tolist()]
            labels = []
            for key, label in zip(keys, group.get("label", group["variant"]), strict=True):
                model, dataset, name = key[0], key[KEY.index("dataset")], names.get(key)
                # What the name says beyond the condition's label (`T=0` of `default · T=0`).
                extra = name_extra(name, label)
                sep = " " if extra.startswith("[") else " · "  # a digest, or settings
                labels.append(f"{model} [{dataset}]" + (sep + extra if extra else ""))
            panels.append((f"{setting} / {variant}", group, _dedupe(labels, [k[-1] for k in keys])))
    return _gap_figure(panels, "Compliance gap across models", top_down=False)


def contrast_gaps(contrasts: pd.DataFrame) -> Figure:
    """Every named contrast between framings (compliance under `a` minus under `b`), one
    panel per condition, each row named by its contrast, the two framings it compares and,
    where there are several, the model."""
    if contrasts.empty:
        raise NothingToShow(
            "no contrasts", "the logs hold no condition with two framings of a query"
        )
    declared = contrasts[contrasts["declared"].astype(bool)]
    if declared.empty:
        raise NothingToShow(
            "no condition declares framings",
            "a variant that declares framings and contrasts (three_tiers, harm_scope, ...) "
            "adds them; the other figures show the gap",
        )
    frame = contrasts.rename(
        columns={
            "difference": "compliance_gap",
            "ci_low": "gap_ci_low",
            "ci_high": "gap_ci_high",
            "p_value": "gap_p_value",
        }
    )
    # Only conditions with declared framings: the plain gap of the others is drawn elsewhere.
    frame = frame[frame["declared"].astype(bool)]
    # One panel per condition, its contrasts in the variant's order with the models side by
    # side: the motives a study separates read across the rows of one panel.
    order = {name: k for k, name in enumerate(dict.fromkeys(frame["contrast"]))}
    frame = frame.assign(_order=frame["contrast"].map(order))
    several = frame["model"].nunique() > 1
    panels = []
    for (setting, name, dataset), group in frame.groupby(
        ["setting", "name", "dataset"], sort=True, dropna=False
    ):
        group = group.sort_values(["_order", "model"], kind="stable")
        labels = [
            (f"{row['model']}: " if several else "")
            + f"{row['contrast']} ({row['framing_a']} {MINUS} {row['framing_b']})"
            for _, row in group.iterrows()
        ]
        where = f"{setting}" + (f" / {dataset}" if dataset != setting else "")
        only = "" if several else f"{group['model'].iloc[0]}\n"
        panels.append((f"{only}{name}\n{where}", group, labels))
    return _gap_figure(
        panels,
        "Contrasts between framings",
        xlabel=f"compliance under the first framing {MINUS} under the second",
    )


# Gap against AF reasoning ----------------------------------------------------------------


def _same_key(frame: pd.DataFrame, row: pd.Series) -> pd.Series:
    """Rows of `frame` with `row`'s `KEY` (a missing value matches a missing value)."""
    mask = pd.Series(True, index=frame.index)
    for column in KEY:
        value = row[column]
        mask &= frame[column].isna() if pd.isna(value) else frame[column] == value
    return mask


def trained_af(summary: pd.DataFrame, long: pd.DataFrame) -> pd.DataFrame:
    """Per summary row, the AF-reasoning rate in the tier the model was told is trained,
    with its CI and n (`af`, `af_low`, `af_high`, `af_n`): the long table's
    `af_rate_trained` where it has one, else its rate of that condition's trained tier by
    name, else the summary's `af_rate_trained` (no interval). Never the free tier's rate for
    a condition that trains on the paid tier."""
    values = []
    for _, row in summary.iterrows():
        tier, _ = trained_tier(row)
        same = long[_same_key(long, row)]
        found = (math.nan, math.nan, math.nan, 0)
        for metric in ("af_rate_trained", f"af_rate_{tier}"):
            hit = same[same["metric"] == metric]
            if len(hit):
                first = hit.iloc[0]
                found = (first["value"], first["low"], first["high"], first["n"])
                break
        else:
            column = "af_rate_trained" if "af_rate_trained" in row.index else f"af_rate_{tier}"
            found = (row.get(column, math.nan), math.nan, math.nan, 0)
        values.append([float(v) if pd.notna(v) else math.nan for v in found])
    columns = ["af", "af_low", "af_high", "af_n"]
    return pd.DataFrame(values, columns=columns, index=summary.index)


RATE_LIMITS = (-0.03, 1.03)  # a rate axis: 0 to 1, with room for the markers at its ends
GAP_LIMITS = (-1.08, 1.08)  # the widest a gap axis needs: -1 to 1, likewise


def gap_vs_af(summary: pd.DataFrame, long: pd.DataFrame) -> Figure:
    """Scatter of the compliance gap (trained tier minus unmonitored) against the
    AF-reasoning rate in the trained tier, on the full 0..1 and -1..1 scales.

    Each point is numbered, and the key below the plot names its condition. Points at the
    same place are spread around it (their data values are unchanged) and share one label.
    Raises NothingToShow when no condition has both values.
    """
    data = pd.concat([summary, trained_af(summary, long)], axis=1)
    total = len(data)
    data = data[data["af"].notna() & data["compliance_gap"].notna()].reset_index(drop=True)
    if data.empty:
        raise NothingToShow(
            "no condition has both a compliance gap and AF-reasoning verdicts in the trained tier",
            f"AF figures {_NEED}",
        )

    keys = [tuple(k) for k in data[KEY].to_numpy().tolist()]
    n = len(data)
    ncol = 1 if n <= 4 else 2 if n <= 12 else 3
    width = {1: 8.0, 2: 10.0, 3: 13.0}[ncol]
    titles, common = panel_titles(keys, 10_000, condition_names(summary))
    tiers = [trained_tier(row) for _, row in data.iterrows()]
    note, usual = trained_note(tiers)
    entries = [
        _wrap(
            f"{title} (n={n_pairs}" + (f", {own})" if (own := own_trained(tier, usual)) else ")"),
            _chars(width / ncol - 0.8, 8),
        )
        for title, n_pairs, tier in zip(titles, data["n_pairs"], tiers, strict=True)
    ]
    key_lines = [_lines(t) for t in entries]
    key_height = sum(
        max(key_lines[i : i + ncol]) * 0.15 + 0.1
        for i in range(0, n, ncol)  # rows of the key
    )
    fig = _figure(width, 5.4 + key_height + 0.3 * bool(common))
    ax = fig.subplots()

    x = data["af"].to_numpy(dtype=float)
    y = data["compliance_gap"].to_numpy(dtype=float)
    ax.set_xlim(*RATE_LIMITS)
    ax.set_xticks(np.linspace(0, 1, 6))
    y_lo, y_hi = _padded(np.r_[y, data["gap_ci_low"], data["gap_ci_high"], 0.0], 0.12)
    ax.set_ylim(max(y_lo, GAP_LIMITS[0]), min(y_hi, GAP_LIMITS[1]))  # a gap is within +-1
    ax.errorbar(
        x,
        y,
        xerr=_spread(x, data["af_low"], data["af_high"]),
        yerr=_spread(y, data["gap_ci_low"], data["gap_ci_high"]),
        fmt="none",
        ecolor="grey",
        alpha=0.5,
        linewidth=1,
        zorder=1,
    )
    ax.axhline(0, color="black", linewidth=0.8, zorder=0)
    ax.set_xlabel("AF-reasoning rate in the trained tier", fontsize=10)
    ax.set_ylabel(GAP_XLABEL, fontsize=10)
    ax.tick_params(labelsize=8)
    fig.suptitle("Compliance gap vs alignment-faking reasoning", fontsize=11)
    subtitle = _shown(n, total, "lack a gap or AF judgements")
    subtitle += "; numbers: see the key below" + (f"; {note}" if note else "")
    subtitle += f"\nall points: {common}" if common else ""
    ax.set_title(_wrap(subtitle, _chars(width - 1.2, 9)), fontsize=9)
    models = sorted(data["model"].unique())
    settings = sorted(data["setting"].unique())
    palette = {m: MODEL_COLOURS[i % len(MODEL_COLOURS)] for i, m in enumerate(models)}
    markers = {s: SETTING_MARKERS[i % len(SETTING_MARKERS)] for i, s in enumerate(settings)}

    def key_entry(i: int, number: int) -> Line2D:
        return Line2D(
            [],
            [],
            linestyle="none",
            marker=markers[data["setting"][i]],
            color=palette[data["model"][i]],
            markeredgecolor="white",
            markersize=7,
            label=f"{number}. {entries[i]}",
        )

    def key(order: list[int]) -> None:
        for old in fig.legends:
            old.remove()
        fig.legend(
            handles=[key_entry(i, number) for number, i in enumerate(order, 1)],
            loc="outside lower center",
            ncol=ncol,
            frameon=False,
            fontsize=8,
            handletextpad=0.3,
            columnspacing=1.2,
        )
        fig.draw_without_rendering()  # settle the layout: display positions are final

    # Number the points by place (left to right), so that points at one place get one
    # run of numbers; the key's size fixes the plot's, so lay it out before measuring.
    key(list(range(n)))
    display = ax.transData.transform(np.c_[x, y])
    clusters = sorted(
        (sorted(c, key=lambda i: keys[i]) for c in _clusters(display, fig.dpi * 10 / 72)),
        key=lambda c: (display[c[0]][0], -display[c[0]][1]),
    )
    order = [i for cluster in clusters for i in cluster]
    key(order)
    fig.set_layout_engine("none")  # freeze it: the labels below are placed for this layout
    display = ax.transData.transform(np.c_[x, y])
    numbers = {i: number for number, i in enumerate(order, 1)}
    marker_boxes = []
    radius = fig.dpi * 4.5 / 72
    for cluster in clusters:
        for j, i in enumerate(cluster):
            dx, dy = _ring_offset(j, len(cluster))
            ax.scatter(
                [x[i]],
                [y[i]],
                s=46,
                color=palette[data["model"][i]],
                marker=markers[data["setting"][i]],
                edgecolor="white",
                linewidth=0.6,
                zorder=3,
                transform=ax.transData + ScaledTranslation(dx / 72, dy / 72, fig.dpi_scale_trans),
            )
            cx, cy = display[i] + np.array([dx, dy]) * fig.dpi / 72
            marker_boxes.append(Bbox([[cx - radius, cy - radius], [cx + radius, cy + radius]]))
    _place_labels(
        fig,
        ax,
        [
            (_number_ranges([numbers[i] for i in c]), x[c[0]], y[c[0]], _ring_radius(len(c)))
            for c in clusters
        ],
        marker_boxes,
    )
    return fig


def _padded(values: np.ndarray, share: float) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    low, high = float(np.nanmin(values)), float(np.nanmax(values))
    span = max(high - low, 0.2)
    return low - share * span, high + share * span


def _clusters(points: np.ndarray, radius: float) -> list[list[int]]:
    """Groups of points closer than `radius` (display units) to the group's first point."""
    clusters: list[list[int]] = []
    for i, point in enumerate(points):
        for cluster in clusters:
            if np.hypot(*(points[cluster[0]] - point)) < radius:
                cluster.append(i)
                break
        else:
            clusters.append([i])
    return clusters


def _ring_offset(j: int, size: int) -> tuple[float, float]:
    """Offset in points of member `j` of a group of `size` points at one place: rings of
    6, 12, 18 ... around it, so that every marker shows."""
    if size == 1:
        return 0.0, 0.0
    ring, first = 1, 0
    while j >= first + 6 * ring:
        first += 6 * ring
        ring += 1
    on_ring = min(6 * ring, size - first)
    angle = 2 * math.pi * (j - first) / on_ring + math.pi / 2
    return 6.5 * ring * math.cos(angle), 6.5 * ring * math.sin(angle)


def _ring_radius(size: int) -> float:
    """The outer radius in points of a group of `size` points (see `_ring_offset`)."""
    return math.hypot(*_ring_offset(size - 1, size))


def _number_ranges(numbers: list[int]) -> str:
    """`[1, 2, 3, 5]` -> "1-3, 5"."""
    parts: list[str] = []
    for number in sorted(numbers):
        if parts and number == int(parts[-1].split("-")[-1]) + 1:
            parts[-1] = f"{parts[-1].split('-')[0]}-{number}"
        else:
            parts.append(str(number))
    return ", ".join(p.replace("-", "\u2013") for p in parts)


DIRECTIONS = [(1, 1), (-1, 1), (1, -1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1)]


def _place_labels(
    fig: Figure, ax: Axes, labels: list[tuple[str, float, float, float]], avoid: list[Bbox]
) -> None:
    """Annotate each point group with its numbers, at the first of several positions
    around it that stays inside the plot and clear of other labels and of markers."""
    renderer = fig.canvas.get_renderer()
    inside = ax.get_window_extent(renderer).padded(-3)
    placed: list[Bbox] = []
    for text, px, py, ring in labels:
        best = None
        for extra in (6, 13, 22, 34, 50, 70):
            for sx, sy in DIRECTIONS:
                radius = ring + extra
                offset = (sx * radius, sy * radius)
                ann = ax.annotate(
                    text,
                    (px, py),
                    xytext=offset,
                    textcoords="offset points",
                    ha={1: "left", -1: "right", 0: "center"}[sx],
                    va={1: "bottom", -1: "top", 0: "center"}[sy],
                    fontsize=8,
                    color="#252525",
                    annotation_clip=False,
                    arrowprops=(
                        {"arrowstyle": "-", "color": "#969696", "lw": 0.6, "shrinkB": 3}
                        if extra >= 22
                        else None
                    ),
                )
                ann.set_in_layout(False)
                box = _text_box(ann, renderer)
                clash = not _contains(inside, box) or any(
                    _overlap(box.padded(2), other) for other in placed + avoid
                )
                if not clash:
                    best = (ann, box)
                    break
                ann.remove()
            if best:
                break
        if best is None:  # crowded beyond every candidate: the key still names the point
            continue
        placed.append(best[1])


def _text_box(text: object, renderer: object) -> Bbox:
    """A text's own box, without an annotation's arrow."""
    text.update_positions(renderer)  # type: ignore[attr-defined]
    return Text.get_window_extent(text, renderer)  # type: ignore[arg-type]


def _contains(outer: Bbox, inner: Bbox) -> bool:
    return (
        inner.x0 >= outer.x0 and inner.x1 <= outer.x1 and inner.y0 >= outer.y0
        and inner.y1 <= outer.y1
    )  # fmt: skip


def _overlap(a: Bbox, b: Bbox) -> bool:
    return min(a.x1, b.x1) > max(a.x0, b.x0) and min(a.y1, b.y1) > max(a.y0, b.y0)


# Paper vs this run -----------------------------------------------------------------------

PAPER_METRICS = [
    "trained_compliance",
    "unmonitored_compliance",
    "compliance_gap",
    "af_rate_trained",
]
METRIC_TITLES = {
    "trained_compliance": "compliance in the trained tier",
    "unmonitored_compliance": "compliance unmonitored",
    "compliance_gap": f"compliance gap\n(trained {MINUS} unmonitored)",
    "af_rate_trained": "AF reasoning in the trained tier",
}
PAPER_TRAINED = ("free", False)  # every published condition trains on the free tier
PROMPT_NAMES = {
    "the paper's prompts": "paper prompt",
    "this project's wording": "this project's wording",
}
PAPER_COLORS = {  # lightness steps of at least 0.15 (see `luminance`)
    "paper": "#3f007d",
    "paper prompt": "#238b45",
    "own prompt file": "#de8f05",
    "this project's wording": "#a1d99b",
}


def _prompt_name(prompt: object) -> str:
    return PROMPT_NAMES.get(str(prompt), "own prompt file")


def paper_rows(comparison: pd.DataFrame, summary: pd.DataFrame | None = None) -> list[dict]:
    """The rows of the paper-vs-run figure, top to bottom.

    Only published rows related to the run are kept (same model snapshot, or same setting
    and condition label). Each is followed by the run rows it pairs with (same snapshot,
    setting, condition label and metric), paper prompt first; after the published rows of a
    condition come this run's other models in that condition, which no published row pairs
    with. Each row: `kind` (paper, run, other), `label`, `block`, `color`, `trained` (the
    trained tier and whether it is assumed) and `values` (metric of `PAPER_METRICS` ->
    (value, low, high, n)). A run row's trained tier and name come from the comparison's
    `trained_tier` and `name` columns where it has them, else from `summary`.
    """
    comparison = comparison.copy()
    paper = comparison[(comparison["source"] == "paper") & comparison["related"].astype(bool)]
    run = _with_summary(comparison[comparison["source"] == "this run"], summary)
    run_id = ["model", "setting", "variant", "dataset", "condition"]
    out: list[dict] = []
    conditions = sorted(set(zip(paper["setting"], paper["label"], strict=True)))
    for block, (setting, label) in enumerate(conditions):
        in_condition = paper[(paper["setting"] == setting) & (paper["label"] == label)]
        runs_here = run[(run["setting"] == setting) & (run["label"] == label)]
        paired_snapshots = set()
        for model, published in in_condition.groupby("model", sort=True):
            snapshot = published["snapshot"].iloc[0]
            paired = runs_here[runs_here["snapshot"] == snapshot]
            paired_snapshots.add(snapshot)
            out.append(
                {
                    "kind": "paper",
                    "block": block,
                    "label": f"paper: {model} · {setting} / {label}"
                    + ("" if len(paired) else "\n(no run of this model in this condition)"),
                    "color": PAPER_COLORS["paper"],
                    "trained": PAPER_TRAINED,
                    "values": _metric_values(published, PAPER_TRAINED[0]),
                }
            )
            out += _run_rows(paired, run_id, block, "this run, {prompt}")
        others = runs_here[~runs_here["snapshot"].isin(paired_snapshots)]
        out += _run_rows(others, run_id, block, "this run, other model: {model}\n{prompt}")
    return out


def _with_summary(run: pd.DataFrame, summary: pd.DataFrame | None) -> pd.DataFrame:
    """`run` with `trained_tier`, `trained_tier_assumed` and `name`, taken from the summary
    by `KEY` where `run` lacks them."""
    wanted = ["trained_tier", "trained_tier_assumed", "name", "framings", "unmonitored_tier"]
    missing = [c for c in wanted if c not in run.columns]
    if not missing or summary is None or run.empty:
        return run
    have = [c for c in missing if c in summary.columns]
    if not have:
        return run
    return run.merge(summary[[*KEY, *have]], on=KEY, how="left")


def _run_rows(run: pd.DataFrame, run_id: list[str], block: int, template: str) -> list[dict]:
    order = {"paper prompt": 0, "this project's wording": 1, "own prompt file": 2}
    groups = list(run.groupby(run_id, sort=True, dropna=False))
    groups.sort(key=lambda item: order[_prompt_name(item[1]["prompt"].iloc[0])])
    labels = [
        template.format(model=key[0], prompt=_prompt_name(group["prompt"].iloc[0]))
        for key, group in groups
    ]
    # Add the dataset where it tells colliding labels apart, then the name (or the digest)
    # if still needed.
    datasets: dict[str, set] = {}
    for lab, (key, _) in zip(labels, groups, strict=True):
        datasets.setdefault(lab, set()).add(key[3])
    labels = [
        f"{lab}, {key[3]}" if len(datasets[lab]) > 1 else lab
        for lab, (key, _) in zip(labels, groups, strict=True)
    ]
    # What a condition's name says beyond its label and its prompt (which the row names
    # already), e.g. `T=0`; its digest where that says nothing.
    tell = []
    for key, group in groups:
        first = group.iloc[0]
        name = first["name"] if "name" in group.columns else None
        extra = name_extra(name, first.get("label", key[2])) if pd.notna(name) else ""
        parts = [p for p in extra.split(" · ") if p and not p.startswith("prompt=")]
        tell.append(" · ".join(parts) or key[4])
    labels = _dedupe(labels, tell)
    out = []
    for label, (_, group) in zip(labels, groups, strict=True):
        trained = trained_tier(group)
        out.append(
            {
                "kind": "other" if "{model}" in template else "run",
                "block": block,
                "label": label,
                "color": PAPER_COLORS[_prompt_name(group["prompt"].iloc[0])],
                "trained": trained,
                "values": _metric_values(group, trained[0]),
            }
        )
    return out


def _metric_values(
    rows: pd.DataFrame, trained: str
) -> dict[str, tuple[float, float, float, object]]:
    """(value, low, high, n) per metric of `PAPER_METRICS`: a trained/unmonitored metric
    where the rows have it, else the tier-named one of the tier that is trained (or not)."""
    by_name = {}
    for metric, row in rows.groupby("metric"):
        first = row.iloc[0]
        by_name[metric] = (
            float(first["value"]),
            float(first["low"]) if pd.notna(first["low"]) else math.nan,
            float(first["high"]) if pd.notna(first["high"]) else math.nan,
            first["n"],
        )
    # A variant's own framings: the one told nothing is watched, if there is one.
    unmonitored = tier_order(trained)[1] if trained in TIER_NAMES else None
    if "framings" in rows.columns and isinstance(rows["framings"].iloc[0], tuple):
        other = rows["unmonitored_tier"].iloc[0] if "unmonitored_tier" in rows.columns else None
        unmonitored = other if isinstance(other, str) else None
    fallback = {
        "trained_compliance": f"{trained}_compliance",
        "unmonitored_compliance": f"{unmonitored}_compliance" if unmonitored else "",
        "compliance_gap": "compliance_gap",
        "af_rate_trained": f"af_rate_{trained}",
    }
    out = {}
    for metric, other in fallback.items():
        if metric in by_name or other in by_name:
            out[metric] = by_name.get(metric, by_name.get(other))
    return out


def _halo(container: object) -> None:
    """A white outline round error bars, so that they show on dark and light bars alike."""
    for artist in (*container[1], *container[2]):  # type: ignore[index]
        artist.set_path_effects([withStroke(linewidth=2.6, foreground="white")])


def paper_vs_run(comparison: pd.DataFrame, summary: pd.DataFrame | None = None) -> Figure:
    """Published values and the run rows that correspond to them, side by side: one column
    of bars per metric, one row per published value or run condition (error bars: 95% CI
    for this run, +- as reported for the paper). Rates run from 0 to 1 and the gap (trained
    tier minus unmonitored) from -1 to 1. `summary` gives the run rows' trained tier and
    names where the comparison lacks them. Raises NothingToShow when no published row
    corresponds to the run."""
    rows = paper_rows(comparison, summary)
    if not rows:
        if (comparison["source"] == "paper").any():
            raise NothingToShow(
                "no published value shares a model snapshot, or a setting and condition, "
                "with this run",
                "run a published model or condition (see results/reference/*.csv)",
            )
        raise NothingToShow(
            "no published values were loaded",
            "keep results/reference/*.csv, or pass --reference DIR",
        )
    note, common = trained_note([r["trained"] for r in rows], noun="row")
    label_width = 4.0
    labels = [
        _wrap(
            r["label"] + (f"\n{own}" if (own := own_trained(r["trained"], common)) else ""),
            _chars(label_width, LABEL_FONT),
        )
        for r in rows
    ]
    y, total = _row_positions(labels)
    edges = np.cumsum(_row_heights(labels))
    height = total * ROW_HEIGHT
    width = label_width + 0.4 + 2.7 * len(PAPER_METRICS)
    present = ["paper"] + [
        p for p in PAPER_COLORS if p != "paper" and any(r["color"] == PAPER_COLORS[p] for r in rows)
    ]
    legend = _legend_rows(len(present), 24, width) * 0.25 + 0.2
    fig = _figure(width, height + 1.8 + legend)
    axes = fig.subplots(1, len(PAPER_METRICS), sharey=True)
    for ax, metric in zip(axes, PAPER_METRICS, strict=True):
        low, high = (-1.0, 1.0) if metric == "compliance_gap" else (0.0, 1.0)
        span = high - low
        for i, row in enumerate(rows):
            value, lo, hi, n = row["values"].get(metric, (math.nan, math.nan, math.nan, None))
            if math.isnan(value):
                ax.text(
                    low + 0.02 * span,
                    y[i],
                    "n/a" if row["kind"] != "paper" else "not published",
                    va="center",
                    ha="left",
                    fontsize=7,
                    color="#636363",
                )
                continue
            ax.barh(y[i], value, color=row["color"], height=0.7, edgecolor="white")
            if abs(value) < 0.01 * span:  # a zero (or nearly) still shows
                ax.plot(
                    value,
                    y[i],
                    marker="D",
                    markersize=5,
                    color=row["color"],
                    mec="#252525",
                    clip_on=False,  # at the axis' end: whole, not halved
                )
            if not (math.isnan(lo) or math.isnan(hi)):
                _halo(
                    ax.errorbar(
                        value,
                        y[i],
                        xerr=_spread(value, lo, hi),
                        fmt="none",
                        color="black",
                        capsize=2.5,
                        linewidth=0.9,
                    )
                )
            if row["kind"] != "paper" and n is not None and pd.notna(n):
                ax.text(  # right of the panel, so that the rate axis stays 0 to 1
                    1.02,
                    y[i],
                    f"n={int(n)}",
                    va="center",
                    ha="left",
                    fontsize=7,
                    color="#636363",
                    transform=ax.get_yaxis_transform(),
                )
        for i in range(1, len(rows)):
            if rows[i]["block"] != rows[i - 1]["block"]:
                ax.axhline(edges[i - 1], color="#969696", linewidth=0.8)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_xlim(low, high)
        ax.set_xticks(np.linspace(low, high, 5 if metric == "compliance_gap" else 6))
        ax.set_title(METRIC_TITLES[metric], fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="y", visible=False)
    axes[0].set_yticks(y, labels, fontsize=LABEL_FONT)
    axes[0].set_ylim(total, 0)
    handles = [
        Patch(
            color=PAPER_COLORS[p],
            label="published" if p == "paper" else f"this run, {p}",
        )
        for p in present
    ]
    _legend(fig, handles)
    _suptitle(
        fig,
        "Paper vs this run: published values that share a model snapshot or a condition "
        "with this run,\neach followed by this run's rows of the same snapshot, setting, "
        "condition and metric" + f"; {note}",
    )
    return fig


# Anti-lab behaviour and lying -------------------------------------------------------------

BEHAVIOUR_PANEL = ["model", "setting", "scratchpad", "judge"]
"""What the conditions of one panel share: a condition and its baseline share all of it."""
BAR_SLOT = 0.2  # inches per bar of a behaviour panel
BEHAVIOUR_LABEL_WIDTH = 2.4  # inches of tick label
PUBLISHED_COLOR = PAPER_COLORS["paper"]
BASELINE_HATCH = "///"
UNPAIRED_BASELINE = "#bdbdbd"
BEHAVIOUR_TITLES = {
    "taken": "took the opportunity (final output)",
    "lie": "decided to lie about its views",
    "egregious_lie": "lied egregiously",
}


def _tint(color: str, share: float = 0.55) -> str:
    """`color` mixed with white: a condition's baseline in its condition's hue, lighter."""
    rgb = np.array(mpl.colors.to_rgb(color))
    return mpl.colors.to_hex(rgb + (1 - rgb) * share)


def _behaviour_conditions(table: pd.DataFrame) -> pd.DataFrame:
    """One row per condition of a behaviour table: its name, panel fields, whether it is a
    baseline and its baseline's condition (empty where it has none)."""
    columns = ["cid", "name", "variant", *BEHAVIOUR_PANEL, "base_cid"]
    first = table[columns].copy()
    first["is_baseline"] = table["baseline_note"].astype(str).str.startswith("a baseline")
    first = first.sort_values("base_cid", na_position="last", kind="stable")
    return first.drop_duplicates("cid").sort_values(["name", "cid"]).reset_index(drop=True)


def _behaviour_styles(conditions: pd.DataFrame) -> dict[str, tuple[str, str, str]]:
    """(fill, hatch, key label) per condition: each condition that is not a baseline has a
    colour of its own name, and its baseline the same hue, lighter and hatched; a baseline
    whose condition is not in these logs is grey and hatched."""
    names = list(dict.fromkeys(conditions.loc[~conditions["is_baseline"], "name"]))
    colour = {name: MODEL_COLOURS[i % len(MODEL_COLOURS)] for i, name in enumerate(names)}
    partner = {}
    for row in conditions.itertuples(index=False):
        if isinstance(row.base_cid, str) and row.base_cid:
            partner.setdefault(row.base_cid, row.name)
    styles = {}
    for row in conditions.itertuples(index=False):
        if row.cid in partner:
            styles[row.cid] = (
                _tint(colour.get(partner[row.cid], UNPAIRED_BASELINE)),
                BASELINE_HATCH,
                f"{row.name} (baseline of {partner[row.cid]})",
            )
        elif row.is_baseline:
            styles[row.cid] = (UNPAIRED_BASELINE, BASELINE_HATCH, f"{row.name} (baseline)")
        else:
            styles[row.cid] = (colour[row.name], "", str(row.name))
    return styles


def _beside(conditions: pd.DataFrame) -> str:
    """What the title says of the baselines: beside their conditions, or absent."""
    if conditions["is_baseline"].any():
        return "each condition beside its baseline (hatched)"
    return "no baseline run (cut_conflicting_criteria) in these logs"


def _condition_keys(conditions: pd.DataFrame, styles: dict[str, tuple[str, str, str]]) -> list:
    """One key entry per distinct condition label and style, in drawing order."""
    entries = dict.fromkeys(styles[c] for c in _panel_order(conditions))
    return [_key_patch(label, fill, hatch) for fill, hatch, label in entries]


def _panel_order(conditions: pd.DataFrame) -> list[str]:
    """A panel's conditions in drawing order: each condition followed by its baseline."""
    order: list[str] = []
    present = set(conditions["cid"])
    for row in conditions.itertuples(index=False):
        if row.is_baseline or row.cid in order:
            continue
        order.append(row.cid)
        if isinstance(row.base_cid, str) and row.base_cid in present:
            if row.base_cid not in order:
                order.append(row.base_cid)
    return order + [c for c in conditions["cid"] if c not in order]


def _panel_title(key: tuple, width_in: float) -> str:
    model, setting, scratchpad, judge = key
    pad = "scratchpad" if bool(scratchpad) else "no scratchpad"
    judge = "no judge" if judge == "none" else f"judge {judge}"
    return _wrap(f"{model}\n{setting} · {pad} · {judge}", _chars(width_in, 9))


def _group_layout(
    groups: list[tuple[str, list[str]]],
) -> tuple[list[float], dict[tuple[str, str], float], float, list[float]]:
    """Positions (in bar slots, top down) of grouped bars: (group centres, each (group,
    condition) bar's centre, total height, the edges between groups). A group is at least as
    tall as its label."""
    centres, bars, edges = [], {}, []
    top = 0.0
    for label, members in groups:
        need = (LINE_HEIGHT * _lines(label) + 0.1) / BAR_SLOT
        height = max(len(members) + 0.6, need)
        start = top + (height - len(members)) / 2
        for j, member in enumerate(members):
            bars[(label, member)] = start + j + 0.5
        centres.append(top + height / 2)
        top += height
        edges.append(top)
    return centres, bars, top, edges[:-1]


def _behaviour_bar(
    ax: Axes,
    y: float,
    row: pd.Series | None,
    style: tuple[str, str, str],
    stacked: pd.Series | None = None,
) -> None:
    """One condition's bar of a verdict: its rate with its 95% Wilson interval, the count
    and n at the panel's right; `stacked` (the reversed row) adds an outlined segment."""
    fill, hatch, _ = style
    if row is None or not row["n"]:
        text = "not run" if row is None else f"n=0 (unscored {row['unscored']})"
        ax.text(0.01, y, text, va="center", ha="left", fontsize=7, color="#636363")
        return
    rate = float(row["rate"])
    ax.barh(y, rate, height=0.8, color=fill, hatch=hatch, **_hatched(fill))
    if rate < 0.005:  # a zero still shows, in its condition's colour
        ax.plot(
            rate,
            y,
            marker="D",
            markersize=4.5,
            color=fill,
            mec="#252525",
            mew=0.8,
            clip_on=False,
            zorder=4,
        )
    label = f"{int(row['count'])}/{int(row['n'])}"
    if stacked is not None and stacked["n"]:
        extra = float(stacked["count"]) / float(row["n"])
        if extra > 0:
            ax.barh(
                y,
                extra,
                left=rate,
                height=0.8,
                facecolor="none",
                edgecolor="#252525",
                linestyle="--",
                linewidth=0.9,
            )
        label += f", rev {int(stacked['count'])}"
    _halo(
        ax.errorbar(
            rate,
            y,
            xerr=_spread(rate, row["ci_low"], row["ci_high"]),
            fmt="none",
            color="black",
            capsize=2,
            linewidth=0.9,
            zorder=3,
        )
    )
    ax.text(
        1.02,
        y,
        label,
        va="center",
        ha="left",
        fontsize=7,
        color="#404040",
        transform=ax.get_yaxis_transform(),
    )


def _behaviour_frame(table: pd.DataFrame, task: str, what: str) -> pd.DataFrame:
    """The table with `cid` and `base_cid`, each condition's and its baseline's identity
    (model and digest: runs of two models alike share a digest), or NothingToShow."""
    if table.empty:
        raise NothingToShow(
            f"no {what} logs", f"run evals/{task}.py (or `python -m evals study {task}`)"
        )
    if not (table["n"] > 0).any():
        raise NothingToShow(
            f"no {what} sample has a verdict",
            "the judge needs a grader: run the eval with --model-role grader=...",
        )
    cid = table["model"].astype(str) + "|" + table["condition"].astype(str)
    base = table["model"].astype(str) + "|" + table["baseline_condition"].astype(str)
    return table.assign(cid=cid, base_cid=base.where(table["baseline_condition"].notna()))


def anti_lab(table: pd.DataFrame) -> Figure:
    """The share of samples that took each opportunity in the final output, one panel per
    model, setting, scratchpad and judge: each condition beside its baseline (the same hue,
    lighter and hatched), with 95% Wilson intervals over samples. A dashed outline extends a
    bar by the samples that decided to take it and then did not (reversed); the count, n and
    reversed count stand at the right. `table` is `analysis.behaviour.rates_table(...,
    "anti_lab")`."""
    table = _behaviour_frame(table, "anti_lab", "anti-lab")
    items = table[table["scope"] == "item"]
    conditions = _behaviour_conditions(items)
    styles = _behaviour_styles(conditions)
    panels = []
    for key, group in items.groupby(BEHAVIOUR_PANEL, sort=True, dropna=False):
        chosen = conditions[conditions["cid"].isin(group["cid"])]
        order = _panel_order(chosen)
        taken = group[group["metric"] == "taken"].sort_values(["kind", "item"], na_position="last")
        groups = []
        for item in dict.fromkeys(taken["item"]):
            kind = taken.loc[taken["item"] == item, "kind"].iloc[0]
            label = _wrap(str(item), _chars(BEHAVIOUR_LABEL_WIDTH, LABEL_FONT))
            label += f"\n({kind})" if isinstance(kind, str) else ""
            groups.append((label, str(item), order))
        panels.append((key, group, groups))
    cols = 1 if len(panels) <= 2 else 2
    rows = math.ceil(len(panels) / cols)
    panel_width = BEHAVIOUR_LABEL_WIDTH + 5.4
    width = panel_width * cols
    layouts = [_group_layout([(label, members) for label, _, members in g]) for _, _, g in panels]
    titles = [_panel_title(key, panel_width - BEHAVIOUR_LABEL_WIDTH - 0.8) for key, _, _ in panels]
    # One height per row of panels, that of its tallest: bars keep one thickness throughout.
    totals = [max(layouts[i][2] for i in range(r * cols, min((r + 1) * cols, len(panels))))
              for r in range(rows)]  # fmt: skip
    heights = [total * BAR_SLOT + 0.1 for total in totals]
    decorations = [
        0.17 * max(_lines(t) for t in titles[r * cols : (r + 1) * cols]) + 0.45 for r in range(rows)
    ]
    handles = _condition_keys(conditions, styles)
    handles.append(
        Patch(
            facecolor="none",
            edgecolor="#252525",
            linestyle="--",
            label="reversed: decided to take it, then did not",
        )
    )
    legend = _legend_rows(len(handles), max(len(h.get_label()) for h in handles), width)
    suptitle = (
        "Anti-lab behaviour: share of valid, judged samples that took each opportunity in the "
        f"final output, {_beside(conditions)}; error bars: 95% Wilson score CI over samples; "
        "at the right: taken / n, rev = reversed"
    )
    header = 0.35 + 0.2 * _lines(_wrap(suptitle, _chars(width - 0.4, 11)))
    fig = _figure(width, sum(heights) + sum(decorations) + header + legend * 0.25 + 0.8)
    grid = fig.subplots(rows, cols, squeeze=False, gridspec_kw={"height_ratios": heights})
    axes = list(grid.flat)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    for i, (ax, (_key, group, groups), layout, title) in enumerate(
        zip(axes, panels, layouts, titles, strict=False)
    ):
        centres, bars, _, edges = layout
        total = totals[i // cols]
        taken = group[group["metric"] == "taken"].set_index(["item", "cid"])
        reversed_ = group[group["metric"] == "reversed"].set_index(["item", "cid"])
        for label, item, members in groups:
            for condition in members:
                row = taken.loc[(item, condition)] if (item, condition) in taken.index else None
                back = (
                    reversed_.loc[(item, condition)]
                    if (item, condition) in reversed_.index
                    else None
                )
                _behaviour_bar(ax, bars[(label, condition)], row, styles[condition], back)
        for edge in edges:
            ax.axhline(edge, color="#d9d9d9", linewidth=0.8)
        ax.set_yticks(centres, [label for label, _, _ in groups], fontsize=LABEL_FONT)
        ax.set_ylim(total, 0)
        ax.set_xlim(0, 1)
        ax.set_xticks(np.linspace(0, 1, 6))
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="y", visible=False)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("share of valid, judged samples", fontsize=8)
    _legend(fig, handles, fontsize=8)
    _suptitle(fig, suptitle)
    return fig


def lying(table: pd.DataFrame) -> Figure:
    """Lie and egregious-lie rates per question (mildest first) and pooled over the
    questions, one row of panels per model, setting, scratchpad and judge: each condition
    beside its baseline (the same hue, lighter and hatched), with 95% Wilson intervals (over
    samples per question; over the per-question rates when pooled). Published values
    (Greenblatt et al. 2024, Table 4) are drawn as diamonds on the pooled rows of the
    conditions whose setting and variant they were published for. `table` is
    `analysis.behaviour.rates_table(..., "lying", reference)`."""
    table = _behaviour_frame(table, "lying", "lying")
    conditions = _behaviour_conditions(table)
    styles = _behaviour_styles(conditions)
    metrics = ["lie", "egregious_lie"]
    panels = []
    for key, group in table.groupby(BEHAVIOUR_PANEL, sort=True, dropna=False):
        chosen = conditions[conditions["cid"].isin(group["cid"])]
        order = _panel_order(chosen)
        items = group[group["scope"] == "item"].sort_values(["question_index", "item"])
        groups = []
        for item in dict.fromkeys(items["item"]):
            index = items.loc[items["item"] == item, "question_index"].iloc[0]
            text = f"{int(index)}. {item}" if pd.notna(index) else str(item)
            groups.append((_wrap(text, _chars(BEHAVIOUR_LABEL_WIDTH, LABEL_FONT)), item, order))
        pooled = group[group["scope"] == "pooled"]
        for item in dict.fromkeys(pooled["item"]):
            label = _wrap(
                f"{item}, pooled (mean of the questions)", _chars(BEHAVIOUR_LABEL_WIDTH, LABEL_FONT)
            )
            groups.append((label, item, order))
        panels.append((key, group, groups))
    column_width = 3.6
    width = BEHAVIOUR_LABEL_WIDTH + 0.4 + column_width * len(metrics)
    layouts = [_group_layout([(label, members) for label, _, members in g]) for _, _, g in panels]
    titles = [_panel_title(key, width - BEHAVIOUR_LABEL_WIDTH - 1.0) for key, _, _ in panels]
    heights = [layout[2] * BAR_SLOT + 0.1 for layout in layouts]
    handles = _condition_keys(conditions, styles)
    published = table[table["published"].notna()] if "published" in table.columns else table[:0]
    if len(published):
        models = ", ".join(sorted(set(published["published_model"].astype(str))))
        handles.append(
            Line2D(
                [],
                [],
                linestyle="none",
                marker="D",
                markersize=6,
                color=PUBLISHED_COLOR,
                mec="white",
                label=f"published: {models} (Greenblatt et al. 2024, Table 4)",
            )
        )
    legend = _legend_rows(len(handles), max(len(h.get_label()) for h in handles), width, 8)
    suptitle = (
        "Lying about its views: share of valid, judged samples per question and pooled, "
        f"{_beside(conditions)}; error bars: 95% Wilson score CI (pooled: on per-question "
        "rates); at the right of each bar: count / n"
    )
    header = 0.35 + 0.2 * _lines(_wrap(suptitle, _chars(width - 0.4, 11)))
    title_height = sum(0.17 * _lines(t) + 0.5 for t in titles)
    fig = _figure(width, sum(heights) + title_height + header + legend * 0.25 + 0.9)
    subfigs = fig.subfigures(
        len(panels),
        1,
        squeeze=False,
        height_ratios=[h + 0.17 * _lines(t) + 0.5 for h, t in zip(heights, titles, strict=True)],
    )
    for subfig, (_key, group, groups), layout, title in zip(
        subfigs[:, 0], panels, layouts, titles, strict=True
    ):
        centres, bars, total, edges = layout
        axes = subfig.subplots(1, len(metrics), sharey=True)
        subfig.suptitle(title, fontsize=9)
        for ax, metric in zip(axes, metrics, strict=True):
            rows = group[group["metric"] == metric].set_index(["item", "cid"])
            for label, item, members in groups:
                for condition in members:
                    row = rows.loc[(item, condition)] if (item, condition) in rows.index else None
                    y = bars[(label, condition)]
                    _behaviour_bar(ax, y, row, styles[condition])
                    if row is not None and pd.notna(row.get("published", math.nan)):
                        ax.plot(
                            row["published"],
                            y,
                            linestyle="none",
                            marker="D",
                            markersize=6,
                            color=PUBLISHED_COLOR,
                            mec="white",
                            zorder=5,
                            clip_on=False,
                        )
            for edge in edges:
                ax.axhline(edge, color="#d9d9d9", linewidth=0.8)
            if len(groups) and any(g[0].endswith("questions)") for g in groups):
                pooled_at = [i for i, g in enumerate(groups) if "pooled" in g[0]]
                for i in pooled_at:
                    top = edges[i - 1] if i > 0 else 0
                    ax.axhline(top, color="#737373", linewidth=1.0)
            ax.set_xlim(0, 1)
            ax.set_xticks(np.linspace(0, 1, 6))
            ax.tick_params(axis="x", labelsize=8)
            ax.grid(axis="y", visible=False)
            ax.set_title(BEHAVIOUR_TITLES[metric], fontsize=9)
        axes[0].set_yticks(centres, [label for label, _, _ in groups], fontsize=LABEL_FONT)
        axes[0].set_ylim(total, 0)
    _legend(fig, handles, fontsize=8)
    _suptitle(fig, suptitle)
    return fig


# Shared helpers --------------------------------------------------------------------------


def _mark_missing(ax: Axes, y: np.ndarray, values: np.ndarray) -> None:
    """Write "n/a" where a value could not be computed, so it never reads as a zero."""
    for position in y[np.isnan(values)]:
        ax.text(
            0,
            position,
            "n/a",
            va="center",
            ha="center",
            fontsize=8,
            color="#636363",
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0},
            zorder=5,
        )


def _spread(value: object, low: object, high: object) -> np.ndarray:
    """Error-bar lengths below and above, never negative; missing bounds draw no bar."""
    value, low, high = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (value, low, high))
    below = np.clip(np.nan_to_num(value - low), 0, None)
    above = np.clip(np.nan_to_num(high - value), 0, None)
    return np.vstack([below, above])


def save(fig: Figure, out_dir: Path, name: str) -> list[Path]:
    """Write the figure as PNG and SVG (the same layout in both)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.svg"]
    fig.savefig(paths[0], dpi=120)
    if fig.get_layout_engine() is not None:  # keep the PNG's layout: the SVG matches it,
        fig.set_layout_engine("none")  # and is spared a second layout pass
    fig.savefig(paths[1], metadata={"Date": None})  # no timestamp: same figure, same bytes
    return paths
