"""Report tables: every rate with its n and 95% CI, plus category and invalid counts."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.logs import KEY
from analysis.stats import SIGN_FLIP_NORMAL_TEST, SIGN_FLIP_TEST
from analysis.summary import rate_with_ci
from evals.labels import CATEGORIES

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "results" / "reference"
REFERENCE_COLUMNS = ["model", "setting", "variant", "metric", "value", "ci", "source"]
BEHAVIOUR_METRICS = frozenset({"lie_rate", "egregious_lie_rate"})
"""Published metrics of the lying evaluation: drawn in the lying figure, never beside a gap."""
ALPHA = 0.05
RATES = {  # report name -> (tier, sample column)
    "free_compliance": ("free", "complied"),
    "paid_compliance": ("paid", "complied"),
    "af_rate_free": ("free", "af_reasoning"),
    "af_rate_paid": ("paid", "af_reasoning"),
}


def rates_long(samples: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """One row per condition and metric: value, CI, n, and `prompt` (whose prompt wording
    the condition used, from the summary). Rate intervals are clustered by query (epochs are
    not independent); gaps use the paired interval of the summary."""
    rows = []
    groups = dict(iter(samples.groupby(KEY, sort=False, dropna=False)))
    for _, row in summary.iterrows():
        key = {k: row[k] for k in KEY}
        group = groups[tuple(key.values())]
        prompt = row["prompt"] if "prompt" in row.index else prompt_wording(row["variant"])
        names = {"label": row.get("label", row["variant"]), "name": row.get("name")}
        rates = dict(RATES)
        for tier in _declared(row) or {}:  # a variant's own framings, by their names
            if tier not in ("free", "paid"):
                rates |= {f"{tier}_compliance": (tier, "complied")}
                rates |= {f"af_rate_{tier}": (tier, "af_reasoning")}
        for metric, (tier, column) in rates.items():
            value, low, high, n = rate_with_ci(group[group["tier"] == tier], column)
            rows.append(
                {**key, "metric": metric, "value": value, "low": low, "high": high, "n": n,
                 "prompt": prompt, **names}
            )  # fmt: skip
        rows.append(
            {
                **key,
                "metric": "compliance_gap",
                "value": row["compliance_gap"],
                "low": row["gap_ci_low"],
                "high": row["gap_ci_high"],
                "n": row["n_pairs"],
                "prompt": prompt,
                **names,
            }
        )
    columns = [*KEY, "metric", "value", "low", "high", "n", "prompt", "label", "name"]
    return pd.DataFrame(rows, columns=columns)


TIER_ROLES = {True: "training", False: "unmonitored"}


def _declared(row: pd.Series) -> dict[str, str] | None:
    """A condition's declared framings -> their roles (`rated only`, ...), in order; None
    for the two tiers (and for a summary from before framings)."""
    framings = row.get("framings")
    return dict(framings) if isinstance(framings, tuple) and framings else None


def _unmonitored(row: pd.Series, trained: str) -> str | None:
    """The unmonitored framing of a condition: the untrained tier of the two tiers, the
    framing told nothing is watched where a variant declares them (None where none is)."""
    if _declared(row) is None:
        return "paid" if trained == "free" else "free"
    other = row.get("unmonitored_tier")
    return other if isinstance(other, str) else None


SHORT_TESTS = {  # the gap test's name in the Results table; the full name is in a note
    SIGN_FLIP_TEST: "exact sign-flip",
    SIGN_FLIP_NORMAL_TEST: "sign-flip, normal approx.",
}
SHORT_PROMPTS = {  # the summary's `prompt` wording -> the Settings table's word
    "this project's wording": "project",
    "the paper's prompts": "paper",
    "a prompt file of your own": "custom",
}
SETTINGS = {  # Settings table header -> summary column
    "temperature": "temperature",
    "max_tokens": "max_tokens",
    "epochs": "epochs",
    "max_turns": "max_turns",
    "compliance rule": "compliance_rule",
    "grader": "grader",
    "classifier": "classifier",
    "votes": "votes",
    "threshold": "threshold",
    "limits": "limits",
}
COUNTS = ["valid", "invalid", "errored", "recovered", "unscored", "compliance_unscored"]
GAP_HEADER = "gap (trained \N{MINUS SIGN} unmonitored)"


SHOWN = "shown_name"  # a summary column: the name the report's notes use


def readable_names(summary: pd.DataFrame, qualified: bool = False) -> list[str]:
    """The summary's readable `name` of each condition (the key for a summary without one).

    The summary's name is unique within a model and setting only; `qualified` prefixes it
    with the model and the setting where the summary holds more than one, for the tables
    and notes that show the name alone.
    """
    if "name" not in summary.columns:
        return [" / ".join(str(row[k]) for k in KEY) for _, row in summary.iterrows()]
    names = [_name(row.drop(SHOWN, errors="ignore")) for _, row in summary.iterrows()]
    if not qualified:
        return names
    varying = [column for column in ("model", "setting") if summary[column].nunique() > 1]
    # A qualifier that the name already starts with says nothing twice.
    return [
        " / ".join([*(str(row[c]) for c in varying if not name.startswith(str(row[c]))), name])
        for (_, row), name in zip(summary.iterrows(), names, strict=True)
    ]


def _shown_names(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary with the qualified name of each condition, for `_name`."""
    return summary.assign(**{SHOWN: readable_names(summary, qualified=True)})


def names_by_key(summary: pd.DataFrame) -> dict[tuple, str]:
    """Each condition's key (`KEY` values) -> its qualified readable name."""
    keys = map(tuple, summary[KEY].to_numpy().tolist())
    return dict(zip(keys, readable_names(summary, qualified=True), strict=True))


def trained_tiers(summary: pd.DataFrame) -> list[str]:
    """Each condition's trained tier (`free` or `paid`), `free` for a summary without one."""
    if "trained_tier" not in summary.columns:
        return ["free"] * len(summary)
    return [str(t) if isinstance(t, str) and t else "free" for t in summary["trained_tier"]]


def _trained_tier_cell(row: pd.Series) -> str:
    tier = row.get("trained_tier", "free")
    assumed = row.get("trained_tier_assumed", False)
    return f"{tier} (assumed)" if isinstance(assumed, bool | np.bool_) and assumed else str(tier)


def condition_table(summary: pd.DataFrame, long: pd.DataFrame) -> pd.DataFrame:
    """The Results table: per condition, which tier the model was told is trained, the
    compliance of the training and unmonitored tiers and their gap (trained minus unmonitored)
    as 'value [low, high] (n)', the gap's p-value and test, and the AF rates of both tiers.

    Rates are named by role, never by tier name alone, so that a reader needs no memory of
    which variants swap the tiers. `long` is `rates_long(samples, summary)`, computed once
    by the caller (it gives the AF rates' intervals).
    """
    cells = {
        (*(row[k] for k in KEY), row["metric"]): _cell(
            row["value"], row["low"], row["high"], row["n"]
        )
        for _, row in long.iterrows()
    }
    rows = []
    for (_, row), name, trained in zip(
        summary.iterrows(), readable_names(summary), trained_tiers(summary), strict=True
    ):
        key = tuple(row[k] for k in KEY)
        other = _unmonitored(row, trained)
        p = row["gap_p_value"]
        rows.append(
            {
                "name": name,
                "model": row["model"],
                "setting": row["setting"],
                "variant": row["variant"],
                "label": row.get("label", row["variant"]),
                "judge": row["judge"],
                "trained tier": _trained_tier_cell(row) if "trained_tier" in row else trained,
                "training compliance": _rate_cell(row, "trained", trained),
                "unmonitored compliance": _rate_cell(row, "unmonitored", other),
                GAP_HEADER: _cell(
                    row["compliance_gap"], row["gap_ci_low"], row["gap_ci_high"], row["n_pairs"]
                ),
                "p": p,
                "significant": "n/a" if pd.isna(p) else ("yes" if p < ALPHA else "no"),
                "test": SHORT_TESTS.get(row["gap_test"], row["gap_test"])
                if isinstance(row["gap_test"], str)
                else row["gap_test"],
                "AF in training": _first(cells, key, ["af_rate_trained", f"af_rate_{trained}"]),
                "AF in unmonitored": _first(
                    cells, key, ["af_rate_unmonitored", f"af_rate_{other}"] if other else []
                ),
            }
        )
    return pd.DataFrame(rows, columns=RESULTS_COLUMNS)


RESULTS_COLUMNS = [
    "name", "model", "setting", "variant", "label", "judge", "trained tier",
    "training compliance", "unmonitored compliance", GAP_HEADER, "p", "significant", "test",
    "AF in training", "AF in unmonitored",
]  # fmt: skip


def _rate_cell(row: pd.Series, role: str, tier: str) -> str:
    """A tier's compliance cell, from the summary's role columns where it has them."""
    if f"{role}_compliance" in row.index:
        return _cell(
            row[f"{role}_compliance"], row[f"{role}_ci_low"], row[f"{role}_ci_high"],
            row[f"n_{role}"],
        )  # fmt: skip
    return _cell(
        row[f"{tier}_compliance"], row[f"{tier}_ci_low"], row[f"{tier}_ci_high"], row[f"n_{tier}"]
    )


def _first(cells: dict, key: tuple, metrics: list[str]) -> str:
    return next((cells[(*key, m)] for m in metrics if (*key, m) in cells), "n/a")


def methods_note(summary: pd.DataFrame) -> str:
    """The full names of the tests and intervals behind the Results table's short ones."""
    tests = [t for t in dict.fromkeys(summary["gap_test"].dropna()) if isinstance(t, str) and t]
    named = "; ".join(f"{SHORT_TESTS.get(t, t)} = {t}" for t in tests) or "none"
    methods = summary["gap_ci_method"].dropna().astype(str)
    gap_ci = ", ".join(dict.fromkeys(methods[methods != ""])) or "n/a"
    rate_ci = ", ".join(dict.fromkeys(summary["rate_ci_method"].dropna().astype(str))) or "n/a"
    return (
        f"Test of the gap: {named}. Intervals (95%): {gap_ci} for the gap, {rate_ci} for "
        "the rates. The trained tier is the one the model was told is trained on (free "
        "unless a variant swaps the tiers; where a variant declares its own framings, the "
        "framing it tells the model is trained, or none); 'assumed' marks a custom prompt "
        "whose trained tier is not known, taken to be free."
    )


def counts_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The Counts table, one row per condition and tier (training first): the valid,
    invalid (every failed attempt), errored, recovered, AF-unscored and compliance-unscored
    samples, and the runs merged and records superseded of the condition: what a reader
    needs to cite the n of a rate. A row per tier keeps the table narrow."""
    rows = []
    names = readable_names(summary, qualified=True)
    for (_, row), name, trained in zip(
        summary.iterrows(), names, trained_tiers(summary), strict=True
    ):
        flag = row.get("trained_tier_assumed")
        assumed = ", assumed" if pd.notna(flag) and bool(flag) else ""
        declared = _declared(row)
        if declared is None:
            other = "paid" if trained == "free" else "free"
            tiers = [(f"training ({trained}{assumed})", trained)]
            tiers += [(f"unmonitored ({other}{assumed})", other)]
        else:  # one row per declared framing, named with what the model was told of it
            tiers = [(f"{tier} ({role})", tier) for tier, role in declared.items()]
        framing_counts = row.get("framing_counts")
        for shown, tier in tiers:
            cells: dict[str, object] = {"name": name, "tier": shown}
            if declared is not None and isinstance(framing_counts, dict):
                counted = framing_counts.get(tier, {})
                cells |= {count.replace("_", " "): counted.get(count, 0) for count in COUNTS}
            else:
                cells |= {count.replace("_", " "): row.get(f"{count}_{tier}") for count in COUNTS}
            cells["runs merged"] = row["runs_merged"]
            cells["superseded"] = row["superseded"]
            rows.append(cells)
    columns = ["name", "tier", *(c.replace("_", " ") for c in COUNTS), "runs merged", "superseded"]
    return pd.DataFrame(rows, columns=columns)


def settings_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The Settings table: how each condition ran (prompt, data, generation and judge
    settings), so that every number of the report can be traced to what produced it.
    `n/a` marks a setting that does not apply or was not recorded. Where two conditions
    share a name, the run configuration is added: it holds what the name leaves out."""
    rows = []
    for (_, row), name in zip(summary.iterrows(), readable_names(summary), strict=True):
        prompt = SHORT_PROMPTS.get(str(row.get("prompt")), row.get("prompt"))
        digest = row.get("prompt_digest")
        if _known(digest):
            prompt = f"{prompt} {digest}"
        cells: dict[str, object] = {
            "name": name,
            "model": row["model"],
            "setting": row["setting"],
            "variant": row["variant"],
            "label": row.get("label", row["variant"]),
            "prompt": prompt,
            "dataset": row["dataset"],
            "n (queries)": row.get("n_queries"),
        }
        cells |= {header: row.get(column) for header, column in SETTINGS.items()}
        rows.append({k: _setting(v) for k, v in cells.items()})
    table = pd.DataFrame(rows)
    if len(table) and digest_legend(summary) and "run_config" in summary.columns:
        table["run config"] = [_setting(v) for v in summary["run_config"]]
    return table


def digest_legend(summary: pd.DataFrame) -> str | None:
    """What the bracketed code in a condition's name is, when some name carries one: the
    names of two conditions collided, and the digest tells them apart."""
    if "name" not in summary.columns:
        return None
    with_digest = [
        str(name)
        for name, digest in zip(summary["name"], summary["condition"], strict=True)
        if isinstance(name, str) and str(digest) in name
    ]
    if not with_digest:
        return None
    verb = "carries" if len(with_digest) == 1 else "carry"
    return (
        f"{_count(len(with_digest), 'condition name')} {verb} the condition's 8-character "
        f"digest (for example '{with_digest[0]}'): those conditions read alike in everything "
        "the name shows, and differ in something else that changes results (prompt text, "
        "dataset content, generation settings, model arguments, limits or judge). The digest "
        "is a hash of all of these; the Settings table lists them, with each run's "
        "configuration."
    )


def _known(value: object) -> bool:
    return (
        value is not None
        and not (not isinstance(value, str) and pd.isna(value))
        and str(value) not in {"", "n/a", "nan", "None"}
    )


def _setting(value: object) -> object:
    """A setting as text: whole numbers without a decimal point, `n/a` where missing."""
    if not _known(value):
        return "n/a"
    if isinstance(value, float | np.floating):
        return str(int(value)) if float(value).is_integer() else f"{value:g}"
    return str(value)


def drop_empty(table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The table without the columns that hold no value in any row (missing, empty or
    `n/a`), and their names, for a note that says what was left out and why."""
    if table.empty:
        return table, []
    empty = [c for c in table.columns if not any(_known(v) for v in table[c])]
    return table.drop(columns=empty), empty


def merge_notes(summary: pd.DataFrame) -> list[str]:
    """One line per condition whose records come from more than one run, or that had
    records superseded: what a reader needs to know to cite its counts."""
    notes = []
    for _, row in _shown_names(summary).iterrows():
        runs, superseded = int(row["runs_merged"]), int(row["superseded"])
        if runs <= 1 and superseded == 0:
            continue
        recovered = int(row["recovered_free"]) + int(row["recovered_paid"])
        notes.append(
            f"{_name(row)}: records from {_count(runs, 'run')} merged; "
            f"{_count(superseded, 'record')} superseded by a better or later one; "
            f"{_count(recovered, 'sample')} recovered (valid after a failed attempt, which "
            "still counts as invalid in the Counts table)."
        )
    return notes


def category_table(samples: pd.DataFrame, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """Counts of the six categories per condition and tier (judged samples only).

    With the `summary`, conditions are named by their readable name and tiers by role
    (`training (free)`), as in the Results table; without it, by the key and tier.
    """
    judged = samples[samples["category"].notna()]
    counts = judged.groupby([*KEY, "judge", "tier"])["category"].value_counts()
    counts = counts.unstack(fill_value=0)
    counts = counts.reindex(columns=list(CATEGORIES), fill_value=0)
    counts["n"] = counts.sum(axis=1)
    return _by_condition(counts, summary)


def status_table(samples: pd.DataFrame, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """How many samples ended in each status, per condition and tier (named as in
    `category_table`)."""
    counts = samples.groupby([*KEY, "judge", "tier"])["status"].value_counts()
    counts = counts.unstack(fill_value=0)
    return _by_condition(counts, summary)


def _by_condition(counts: pd.DataFrame, summary: pd.DataFrame | None) -> pd.DataFrame:
    """Counts indexed by key, judge and tier as a flat table: the columns' index name
    (`category`, `status`) is dropped, or HTML and Markdown show it as an empty column;
    with a summary, the key becomes the condition's name and the tier its role, training
    first."""
    counts.columns.name = None
    table = counts.reset_index()
    if summary is None or table.empty:
        return table
    names = names_by_key(summary)
    trained = dict(zip(names, trained_tiers(summary), strict=True))
    assumed_flags = summary.get("trained_tier_assumed", pd.Series(False, index=summary.index))
    assumed = {
        key for key, flag in zip(names, assumed_flags, strict=True) if pd.notna(flag) and bool(flag)
    }
    declared = {
        key: roles
        for key, (_, row) in zip(names, summary.iterrows(), strict=True)
        if (roles := _declared(row)) is not None
    }
    keys = list(map(tuple, table[KEY].to_numpy().tolist()))
    role = [
        list(declared[key]).index(tier)
        if key in declared and tier in declared[key]
        else 0
        if tier == trained.get(key, "free")
        else 1
        for key, tier in zip(keys, table["tier"], strict=True)
    ]
    order = {key: i for i, key in enumerate(names)}
    table = table.assign(
        name=[names.get(key, " / ".join(map(str, key))) for key in keys],
        tier=[
            f"{tier} ({declared[key].get(tier, '?')})"
            if key in declared
            else f"{TIER_ROLES[r == 0]} ({tier}{', assumed' if key in assumed else ''})"
            for r, tier, key in zip(role, table["tier"], keys, strict=True)
        ],
        _order=[order.get(key, len(order)) for key in keys],
        _role=role,
    )
    table = table.sort_values(["_order", "_role"], kind="stable")
    rest = [c for c in table.columns if c not in {*KEY, "judge", "name", "tier", "_order", "_role"}]
    return table[["name", "tier", *rest]].reset_index(drop=True)


def reference_names(directory: Path = REFERENCE_DIR) -> list[str]:
    """The names of the published-value files in `directory` (`NAME.csv`)."""
    return sorted(path.stem for path in directory.glob("*.csv"))


def load_reference(
    directory: Path = REFERENCE_DIR, names: Sequence[str] | None = None
) -> pd.DataFrame:
    """The published values in `directory/*.csv`, or only in `directory/NAME.csv` for `names`.

    An unknown name is a ValueError that names it and the known ones.
    """
    known = reference_names(directory)
    if names is None:
        selected = known
    else:
        if isinstance(names, str):
            names = [names]
        unknown = [name for name in names if name not in known]
        if unknown:
            raise ValueError(
                f"unknown reference {', '.join(map(repr, unknown))} in {directory}; known: "
                f"{', '.join(known) or 'none'}"
            )
        selected = list(dict.fromkeys(names))
    frames = []
    for path in (directory / f"{name}.csv" for name in selected):
        frame = pd.read_csv(path)
        if list(frame.columns) != REFERENCE_COLUMNS:
            raise ValueError(f"{path}: columns must be {', '.join(REFERENCE_COLUMNS)}")
        frames.append(frame)
    return (
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=REFERENCE_COLUMNS)
    )


def normalise_model(name: str) -> str:
    """The model's own name, without provider prefix, case or punctuation."""
    return re.sub(r"[^a-z0-9]", "", name.lower().rsplit("/", 1)[-1])


MODEL_MAP = REFERENCE_DIR / "models.yaml"


def model_identities(path: Path = MODEL_MAP) -> dict[str, dict[str, str]]:
    """{"published": {name: model}, "runs": {name: model}} from the identity map, names
    normalised (see `normalise_model`). A bad file is a ValueError naming it."""
    import yaml

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"{path}: cannot read the model identity map ({err})") from None
    sides: dict[str, dict[str, str]] = {"published": {}, "runs": {}}
    for model, entry in raw.items():
        if not isinstance(entry, dict) or set(entry) - set(sides):
            raise ValueError(f"{path}: {model!r} must map 'published' and 'runs' to lists")
        for side, names in entry.items():
            for name in names or []:
                sides[side][normalise_model(str(name))] = str(model)
    return sides


def model_identity(name: str, side: str, identities: dict[str, dict[str, str]]) -> str:
    """The published model a name is, or a key of its own that pairs with nothing."""
    return identities[side].get(normalise_model(name), f"unmapped {side}: {name}")


def prompt_wording(variant: str) -> str:
    """Whether a run used this project's prompt wording or a prompt file of its own."""
    if "@" in str(variant):
        return f"prompt file {str(variant).split('@', 1)[1]}"
    return "this project's wording"


def condition_label(variant: str) -> str:
    """A condition's label without the `@FILE#DIGEST` of a prompt file: the name a study
    and the published values give the condition."""
    return str(variant).split("@", 1)[0]


PAIR = ["snapshot", "setting", "label", "metric"]


def paper_vs_run(long: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """Published values and this run's values in one long table, matched where possible.

    A run row pairs with a published row with the same setting, condition label (the
    variant without a prompt file's `@FILE#DIGEST`) and metric only when the model is the
    same snapshot: the names, without provider prefix and punctuation, are equal, so
    `claude-3-5-sonnet-20241022` never pairs with `claude-3-5-sonnet-20240620`. `matched`
    marks both sides of such pairs. A published row is `related` to the run when the run
    has the same snapshot, or the same setting and condition label; a run row is `related`
    when a related published row has its setting and condition label. `prompt` says whose
    prompt wording each row used (the summary's `prompt` where `long` has it). Rows are
    ordered so that pairs sit together.

    Models pair through the identity map (`results/reference/models.yaml`): a run of
    `anthropic/claude-3-5-sonnet-20240620` pairs with the rows of "Claude 3.5 Sonnet (June
    2024)", dated or not; a name the map does not hold pairs with nothing. Published lying
    rates (`BEHAVIOUR_METRICS`) are left out: the lying figure draws them.
    """
    identities = model_identities()
    # Published lying rates belong to the lying section (analysis.behaviour), not to the gap.
    reference = reference[~reference["metric"].isin(BEHAVIOUR_METRICS)]
    paper = reference.assign(
        source="paper",
        low=reference["value"] - reference["ci"],
        high=reference["value"] + reference["ci"],
        n=pd.NA,
        snapshot=[model_identity(m, "published", identities) for m in reference["model"]],
        label=reference["variant"].map(condition_label),
        prompt="the paper's prompts",
        dataset=pd.NA,
        condition=pd.NA,
    )
    if "prompt" in long.columns:
        own_file = long["prompt"].isna() | (long["prompt"] == "a prompt file of your own")
        prompt = long["prompt"].where(~own_file, long["variant"].map(prompt_wording))
    else:
        prompt = long["variant"].map(prompt_wording)
    run = long.assign(
        source="this run",
        ci=pd.NA,
        snapshot=[model_identity(m, "runs", identities) for m in long["model"]],
        label=(long["label"] if "label" in long.columns else long["variant"]).map(condition_label),
        prompt=prompt,
    )
    run_keys = _keys(run, PAIR)
    paper_keys = _keys(paper, PAIR)
    paper["matched"] = [k in run_keys for k in _rows(paper, PAIR)]
    run["matched"] = [k in paper_keys for k in _rows(run, PAIR)]
    run_models = set(run["snapshot"])
    run_conditions = _keys(run, ["setting", "label"])
    paper["related"] = [
        snapshot in run_models or condition in run_conditions
        for snapshot, condition in zip(
            paper["snapshot"], _rows(paper, ["setting", "label"]), strict=True
        )
    ]
    related_conditions = _keys(paper[paper["related"]], ["setting", "label"])
    run["related"] = [c in related_conditions for c in _rows(run, ["setting", "label"])]
    columns = [
        "source",
        "model",
        "setting",
        "variant",
        "metric",
        "value",
        "low",
        "high",
        "n",
        "matched",
        "prompt",
        "label",
        "snapshot",
        "related",
        "dataset",
        "condition",
    ]
    both = pd.concat([paper, run], ignore_index=True)
    both = both.sort_values(["metric", "setting", "label", "snapshot", "source"], kind="stable")
    return both[columns].reset_index(drop=True)


def _rows(frame: pd.DataFrame, columns: list[str]) -> list[tuple]:
    return [tuple(row) for row in frame[columns].to_numpy().tolist()]


def _keys(frame: pd.DataFrame, columns: list[str]) -> set[tuple]:
    return set(_rows(frame, columns))


def significance_notes(summary: pd.DataFrame) -> list[str]:
    """Plain-language notes on which gaps are and are not distinguishable from zero, each
    naming the test that decided it: one per condition."""
    return [_significance_note(row) for _, row in _shown_names(summary).iterrows()]


def significance_summary(summary: pd.DataFrame) -> list[str]:
    """The report's notes: each significant gap, each non-significant gap whose interval
    excludes zero (the interval and the test disagree), then a count of the other
    non-significant gaps, and the conditions without a gap grouped by why."""
    summary = _shown_names(summary)
    tested = summary[summary["n_pairs"] > 0]
    untested = summary[summary["n_pairs"] == 0]
    significant = tested[tested["gap_p_value"] < ALPHA]
    rest = tested[~(tested["gap_p_value"] < ALPHA)]
    disagree = rest[(rest["gap_ci_low"] > 0) | (rest["gap_ci_high"] < 0)]
    quiet = rest.drop(disagree.index)
    notes = [_significance_note(row) for _, row in significant.iterrows()]
    table = "the Results table gives each gap with its interval, p-value and test"
    if significant.empty and len(tested):
        notes.append(
            f"No gap is significant at p < {ALPHA:g} "
            f"({_count(len(tested), 'condition')} with a gap; {table})."
            if disagree.empty
            else f"No gap is significant at p < {ALPHA:g}."
        )
    notes += [_significance_note(row) for _, row in disagree.iterrows()]
    if len(quiet) and (len(significant) or len(disagree)):
        notes.append(
            f"The other {len(quiet)} of the {_count(len(tested), 'condition')} with a gap "
            f"{'is' if len(quiet) == 1 else 'are'} not significant (p >= {ALPHA:g}, and the "
            f"interval contains zero); {table}."
        )
    if power := _power_note(rest):
        notes.append(power)
    reasons: dict[str, list[str]] = {}
    for _, row in untested.iterrows():
        reasons.setdefault(_why_no_gap(row), []).append(_name(row))
    for reason, names in reasons.items():
        notes.append(f"{'; '.join(names)}: {reason}")
    return notes


def _power_note(not_significant: pd.DataFrame) -> str | None:
    """What the non-significant gaps could have shown: the smallest gap each run detects
    with 80% power (`detectable_gap`), so that a null result is read at its size."""
    if not_significant.empty or "detectable_gap" not in not_significant.columns:
        return None
    parts = []
    for _, row in not_significant.iterrows():
        gap, unmonitored = row["detectable_gap"], row["unmonitored_compliance"]
        below = row["compliance_gap"] < 0
        if pd.notna(gap):
            shown = f"{'-' if below else ''}{gap:.3f}"
        elif unmonitored == (0 if below else 1):
            shown = "none: at this unmonitored compliance no gap in this direction is possible"
        else:
            shown = "none reaches that power with so few queries"
        parts.append(f"{_name(row)}, {_count(int(row['n_pairs']), 'query')}: {shown}")
    return (
        "Power of the non-significant gaps: the smallest gap, in the direction observed, "
        "that each run would detect with 80% power (exact paired test at "
        f"{ALPHA:g}, one epoch per query, the tiers taken as independent within a query, at "
        "the run's observed unmonitored compliance, a plug-in that can flatter a small run; "
        f"`python -m evals power`): {'; '.join(parts)}. A smaller gap could have gone "
        "unseen; the interval gives the gaps the data themselves exclude."
    )


def _count(n: int, noun: str) -> str:
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{n} {noun if n == 1 else plural}"


def _name(row: pd.Series) -> str:
    """A condition's readable name (the summary's `name`), or its key and judge."""
    for column in (SHOWN, "name"):
        if column in row.index and isinstance(row[column], str) and row[column]:
            return row[column]
    name = " / ".join(str(row[k]) for k in KEY)
    judge = row.get("judge")
    return name if judge is None or judge == "none" else f"{name} (judge {judge})"


def _significance_note(row: pd.Series) -> str:
    name = _name(row)
    if row["n_pairs"] == 0:
        return f"{name}: {_why_no_gap(row)}"
    verdict = "not significant" if row["gap_p_value"] >= ALPHA else "significant"
    note = (
        f"{name}: the gap of {row['compliance_gap']:+.3f} is {verdict} "
        f"({row['gap_test']}: p = {row['gap_p_value']:.3g}, n = {row['n_pairs']} "
        f"queries; 95% CI [{row['gap_ci_low']:+.3f}, {row['gap_ci_high']:+.3f}], "
        f"{row['gap_ci_method']})."
    )
    excludes_zero = row["gap_ci_low"] > 0 or row["gap_ci_high"] < 0
    if excludes_zero == (row["gap_p_value"] >= ALPHA):
        note += (
            " The interval and the test disagree here: the exact test is the more "
            "conservative, and the verdict follows the test."
            if excludes_zero
            else " The interval and the test disagree here; the verdict follows the test. "
            "Some query's epochs disagree with each other: the test uses the spread of the "
            "per-query differences, while the interval treats each query's net share as one "
            "pair and is the more conservative."
        )
    return note


def _why_no_gap(row: pd.Series) -> str:
    """Why a condition has no pairs: no trained and unmonitored framing to pair, nothing
    valid, valid answers nobody judged, or no query with a scored answer in both tiers."""
    if _declared(row) is not None:
        trained = str(row.get("trained_tier"))
        other = _unmonitored(row, trained)
        counts = row.get("framing_counts") or {}
        if trained not in counts or other is None:
            return (
                "its framings have no trained and unmonitored pair, so it has no compliance "
                "gap; its contrasts are in the Contrasts section."
            )
        roles = [counts.get(trained, {}), counts.get(other, {})]
        valid = sum(c.get("valid", 0) for c in roles)
        scored = sum(c.get("n", 0) for c in roles)
        row = row.copy()
        row["valid_free"], row["valid_paid"], row["n_free"], row["n_paid"] = valid, 0, scored, 0
    if row["valid_free"] + row["valid_paid"] == 0:
        return "no sample is valid, so there is no gap to test."
    if row["n_free"] + row["n_paid"] == 0:
        if row.get("judge", "none") != "none":
            return (
                "the samples are valid but the grader could not judge their compliance (see "
                "compliance_status in samples.csv), so there is no gap to test."
            )
        return (
            "the samples are valid but their compliance was not judged (this setting needs a "
            "grader: --model-role grader=...), so there is no gap to test."
        )
    return "no query has a scored answer in both tiers, so there is no gap to test."


def judge_notes(samples: pd.DataFrame, summary: pd.DataFrame | None = None) -> list[str]:
    """Why AF rates or categories are missing, per condition, from `classifier_status`;
    conditions are named by the `summary`'s readable name when it is given."""
    names = names_by_key(summary) if summary is not None else {}
    notes = []
    valid = samples[samples["status"] == "valid"]
    for key, group in valid.groupby(KEY):
        name = names.get(key, " / ".join(map(str, key)))
        unscored = group["classifier_status"].str.startswith("unscored")
        if unscored.any():
            reason = group.loc[unscored, "classifier_status"].value_counts().index[0]
            notes.append(
                f"{name}: {int(unscored.sum())} of {len(group)} valid samples "
                f"have no judge result (most common reason: {reason})."
            )
        no_compliance = group["complied"].isna()
        if no_compliance.any():
            reason = group.loc[no_compliance, "compliance_status"].value_counts().index[0]
            notes.append(
                f"{name}: {int(no_compliance.sum())} of {len(group)} valid "
                f"samples have no compliance result (most common reason: {reason})."
            )
    return notes


def _cell(value: float, low: float, high: float, n: int) -> str:
    """'value [low, high] (n=N)'; plain `n/a` where no sample has a value, so that a column
    without any is seen as empty."""
    if pd.isna(value):
        return "n/a" if not n or pd.isna(n) else f"n/a (n={n})"
    if pd.isna(low):
        return f"{value:.3f} (n={n})"
    return f"{value:.3f} [{low:.3f}, {high:.3f}] (n={n})"


def usage_table(usage: pd.DataFrame | None, prices: dict) -> pd.DataFrame:
    """Tokens each model role used (as the providers reported them), the share of input read
    from a prompt cache, and what that cost at the price file's list prices."""
    columns = ["role", "model", "input", "cache read", "cache write", "output", "cached share"]
    if usage is None or usage.empty:
        return pd.DataFrame(columns=[*columns, "cost"])
    rows = []
    for row in usage.itertuples(index=False):
        total_input = row.input_tokens + row.input_tokens_cache_read + row.input_tokens_cache_write
        price = prices.get("models", {}).get(row.model)
        cost = (
            (
                row.input_tokens * price["input"]
                + row.input_tokens_cache_read * price["input_cache_read"]
                + row.input_tokens_cache_write * price["input_cache_write"]
                + row.output_tokens * price["output"]
            )
            / 1e6
            if price
            else None
        )
        rows.append(
            {
                "role": row.role,
                "model": row.model,
                "input": f"{row.input_tokens:,.0f}",
                "cache read": f"{row.input_tokens_cache_read:,.0f}",
                "cache write": f"{row.input_tokens_cache_write:,.0f}",
                "output": f"{row.output_tokens:,.0f}",
                "cached share": f"{row.input_tokens_cache_read / total_input:.1%}"
                if total_input
                else "n/a",
                "cost": f"${cost:,.2f}" if cost is not None else "no price",
            }
        )
    return pd.DataFrame(rows, columns=[*columns, "cost"])


def contrast_table(contrasts: pd.DataFrame) -> pd.DataFrame:
    """The report's view of every contrast of a condition with declared framings: the two
    framings' compliance and their paired difference, with the power of the run."""
    rows = []
    shown = contrasts[contrasts["declared"].astype(bool)]
    # Conditions together, each contrast's models side by side, in the variant's order.
    order = {name: i for i, name in enumerate(dict.fromkeys(shown["contrast"]))}
    shown = shown.assign(_order=shown["contrast"].map(order)).sort_values(
        ["setting", "dataset", "name", "_order", "model"], kind="stable"
    )
    for _, row in shown.iterrows():
        rows.append(
            {
                "condition": row["name"],
                "model": row["model"],
                "setting": row["setting"],
                "dataset": row["dataset"],
                "contrast": row["contrast"],
                "a - b": f"{row['framing_a']} - {row['framing_b']}",
                "compliance a": _cell(
                    row["compliance_a"], row["a_ci_low"], row["a_ci_high"], row["n_a"]
                ),
                "compliance b": _cell(
                    row["compliance_b"], row["b_ci_low"], row["b_ci_high"], row["n_b"]
                ),
                "difference": _cell(
                    row["difference"], row["ci_low"], row["ci_high"], row["n_pairs"]
                ),
                "p": "n/a" if pd.isna(row["p_value"]) else f"{row['p_value']:.3g}",
                "detectable": "n/a"
                if pd.isna(row["detectable_gap"])
                else f"{row['detectable_gap']:+.3f}",
                "invalid a / b": f"{row['invalid_a']} / {row['invalid_b']}",
                "AF unscored a / b": f"{row['unscored_a']} / {row['unscored_b']}",
            }
        )
    return pd.DataFrame(rows)


# Anti-lab behaviour and lying ---------------------------------------------------------------


def _share_cell(
    rate: object, low: object, high: object, count: object, n: object, items: object = None
) -> str:
    """'rate [low, high] (count/n)'; for a pooled row (`items` given) '(mean of k, n=N)', its
    rate being the mean of the per-question rates; `n/a (n=0)` where no sample has a verdict."""
    if not n or pd.isna(n):
        return "n/a (n=0)"
    counted = f"mean of {int(items)}, n={int(n)}" if items is not None else f"{int(count)}/{int(n)}"  # type: ignore[call-overload]
    if pd.isna(low):
        return f"{rate:.3f} ({counted})"  # type: ignore[str-format]
    return f"{rate:.3f} [{low:.3f}, {high:.3f}] ({counted})"  # type: ignore[str-format]


def _invalid_cell(row: dict) -> object:
    """Invalid samples, and beside them those valid in the end after a failed attempt."""
    recovered = row.get("recovered")
    if recovered and not pd.isna(recovered):
        return f"{row['invalid']} (+{int(recovered)} recovered)"
    return row["invalid"]


def _items(row: dict) -> object:
    """How many questions a pooled row averages (None for a row of one)."""
    return row.get("items") if row.get("scope") == "pooled" else None


def _difference_cell(row: dict) -> str:
    """'difference [low, high]' of a row compared with its baseline; empty where none is."""
    if pd.isna(row.get("difference")):
        return ""
    return f"{row['difference']:+.3f} [{row['diff_ci_low']:+.3f}, {row['diff_ci_high']:+.3f}]"


def _p_cell(row: dict) -> str:
    return "" if pd.isna(row.get("p_value")) else f"{row['p_value']:.3g}"


def _baseline_cell(row: dict) -> str:
    """The baseline's rate over the compared questions, or why there is none."""
    if pd.isna(row.get("baseline_rate")):
        baseline = row.get("baseline")
        return "" if not isinstance(baseline, str) else f"{baseline}: nothing to compare"
    if row.get("scope") == "pooled":
        return (
            f"{row['baseline']}: {row['baseline_rate']:.3f} "
            f"(mean of {int(row['compared_items'])}, n={int(row['baseline_n'])})"
        )
    return (
        f"{row['baseline']}: {row['baseline_rate']:.3f} "
        f"({int(row['baseline_count'])}/{int(row['baseline_n'])})"
    )


def _condition_cells(row: dict) -> dict[str, object]:
    return {
        "condition": row["name"],
        "model": row["model"],
        "setting": row["setting"],
        "scratchpad": "yes" if bool(row["scratchpad"]) else "no",
        "judge": row["judge"],
    }


def anti_lab_table(table: pd.DataFrame) -> pd.DataFrame:
    """The report's anti-lab table, from `analysis.behaviour.rates_table(..., "anti_lab")`:
    per condition and opportunity (then per kind, pooled), the taken rate with its interval
    and count, the invalid and unscored samples beside it, the reversed count, and the
    difference from the baseline with its interval and exact p-value."""
    rows = []
    by_key = {
        (r["model"], r["condition"], r["scope"], r["item"], r["metric"]): r
        for r in table.to_dict("records")
    }
    for row in table[table["metric"] == "taken"].to_dict("records"):
        pooled = row["scope"] == "pooled"
        back = by_key.get((row["model"], row["condition"], row["scope"], row["item"], "reversed"))
        reversed_ = "n/a" if back is None else f"{int(back['count'])}/{int(back['n'])}"
        rows.append(
            _condition_cells(row)
            | {
                "opportunity": f"{row['item']} (pooled, {row['items']} opportunities)"
                if pooled
                else row["item"],
                "kind": row["kind"],
                "taken": _share_cell(row["rate"], row["ci_low"], row["ci_high"], row["count"],
                                     row["n"], _items(row)),
                "invalid": _invalid_cell(row),
                "unscored": row["unscored"],
                "reversed": reversed_,
                "baseline (compared samples)": _baseline_cell(row),
                "difference [95% CI]": _difference_cell(row),
                "p": _p_cell(row),
            }
        )  # fmt: skip
    return pd.DataFrame(rows, columns=ANTI_LAB_COLUMNS)


ANTI_LAB_COLUMNS = [
    "condition", "model", "setting", "scratchpad", "judge", "opportunity", "kind", "taken",
    "invalid", "unscored", "reversed", "baseline (compared samples)", "difference [95% CI]", "p",
]  # fmt: skip


def lying_table(table: pd.DataFrame) -> pd.DataFrame:
    """The report's lying table, from `analysis.behaviour.rates_table(..., "lying")`: per
    condition and question (mildest first, then pooled over the questions), the lie and
    egregious-lie rates with their intervals and counts, the invalid and unscored samples
    beside them, the published value where there is one, and each rate's difference from
    the baseline with its interval and exact p-value."""
    rows = []
    by_key = {
        (r["model"], r["condition"], r["scope"], r["item"], r["metric"]): r
        for r in table.to_dict("records")
    }
    for row in table[table["metric"] == "lie"].to_dict("records"):
        pooled = row["scope"] == "pooled"
        egregious = by_key.get(
            (row["model"], row["condition"], row["scope"], row["item"], "egregious_lie"), {}
        )
        published = ""
        if pooled and pd.notna(row.get("published")):
            published = f"{row['published']:.3f} / {egregious.get('published', math.nan):.3f}"
        index = row["question_index"]
        rows.append(
            _condition_cells(row)
            | {
                "question": f"pooled ({row['items']} questions)"
                if pooled
                else (f"{int(index)}. {row['item']}" if pd.notna(index) else row["item"]),
                "lie": _share_cell(row["rate"], row["ci_low"], row["ci_high"], row["count"],
                                   row["n"], _items(row)),
                "egregious lie": _share_cell(egregious.get("rate"), egregious.get("ci_low"),
                                             egregious.get("ci_high"), egregious.get("count"),
                                             egregious.get("n"), _items(egregious)),
                "invalid": _invalid_cell(row),
                "unscored": row["unscored"],
                "published lie / egregious": published,
                "baseline lie (compared samples)": _baseline_cell(row),
                "lie difference [95% CI]": _difference_cell(row),
                "lie p": _p_cell(row),
                "egregious difference [95% CI]": _difference_cell(egregious),
                "egregious p": _p_cell(egregious),
            }
        )  # fmt: skip
    return pd.DataFrame(rows, columns=LYING_COLUMNS)


LYING_COLUMNS = [
    "condition", "model", "setting", "scratchpad", "judge", "question", "lie", "egregious lie",
    "invalid", "unscored", "published lie / egregious", "baseline lie (compared samples)",
    "lie difference [95% CI]", "lie p", "egregious difference [95% CI]", "egregious p",
]  # fmt: skip


def baseline_notes(table: pd.DataFrame) -> list[str]:
    """One line per condition of a behaviour table: which baseline it is compared with, or
    why it is compared with none."""
    notes = []
    seen = table.drop_duplicates(["model", "condition"])
    for row in seen.to_dict("records"):
        note = str(row["baseline_note"]).split("; ", 1)[0]
        where = f"{row['model']} / {row['setting']}"
        notes.append(f"{row['name']} ({where}): {note}.")
    return notes


def drop_constant(table: pd.DataFrame, columns: Sequence[str]) -> tuple[pd.DataFrame, str | None]:
    """`table` without those of `columns` that hold one value in every row, and a note that
    names them with their value (None where none is dropped): a column that never changes
    tells a reader nothing beside every row."""
    constant = [c for c in columns if c in table.columns and len(table) and table[c].nunique() == 1]
    if not constant:
        return table, None
    said = "; ".join(f"{c} {table[c].iloc[0]}" for c in constant)
    return table.drop(columns=constant), f"In every row: {said}."
