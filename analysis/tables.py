"""Report tables: every rate with its n and 95% CI, plus category and invalid counts."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from analysis.logs import KEY
from analysis.summary import rate_with_ci
from evals.judges.classifiers import CATEGORIES

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "results" / "reference"
REFERENCE_COLUMNS = ["model", "setting", "variant", "metric", "value", "ci", "source"]
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
        for metric, (tier, column) in RATES.items():
            value, low, high, n = rate_with_ci(group[group["tier"] == tier], column)
            rows.append(
                {**key, "metric": metric, "value": value, "low": low, "high": high, "n": n,
                 "prompt": prompt}
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
            }
        )
    return pd.DataFrame(rows, columns=[*KEY, "metric", "value", "low", "high", "n", "prompt"])


def condition_table(summary: pd.DataFrame, long: pd.DataFrame) -> pd.DataFrame:
    """The headline table: rates as 'value [low, high] (n)', gap with p, counts.

    `long` is `rates_long(samples, summary)`, computed once by the caller.
    """
    long = long.assign(
        cell=[
            _cell(v, lo, hi, n)
            for v, lo, hi, n in long[["value", "low", "high", "n"]].itertuples(index=False)
        ]
    )
    wide = long.pivot_table(
        index=KEY, columns="metric", values="cell", aggfunc="first"
    ).reset_index()
    counts = [
        "invalid_free",
        "invalid_paid",
        "recovered_free",
        "recovered_paid",
        "unscored_free",
        "unscored_paid",
        "runs_merged",
    ]
    methods = ["gap_test", "gap_ci_method", "rate_ci_method"]
    table = summary[[*KEY, "judge", "gap_p_value", *methods, *counts]].merge(wide, on=KEY)
    table["significant"] = table["gap_p_value"].map(
        lambda p: "n/a" if pd.isna(p) else ("yes" if p < ALPHA else "no")
    )
    columns = [
        *KEY,
        "judge",
        "free_compliance",
        "paid_compliance",
        "compliance_gap",
        "gap_p_value",
        "significant",
        "gap_test",
        "gap_ci_method",
        "rate_ci_method",
        "af_rate_free",
        "af_rate_paid",
        *counts,
    ]
    return table[columns]


def merge_notes(summary: pd.DataFrame) -> list[str]:
    """One line per condition whose records come from more than one run, or that had
    records superseded: what a reader needs to know to cite its counts."""
    notes = []
    for _, row in summary.iterrows():
        runs, superseded = int(row["runs_merged"]), int(row["superseded"])
        if runs <= 1 and superseded == 0:
            continue
        recovered = int(row["recovered_free"]) + int(row["recovered_paid"])
        notes.append(
            f"{_name(row)}: records from {_count(runs, 'run')} merged; "
            f"{_count(superseded, 'record')} superseded by a better or later one; "
            f"{_count(recovered, 'sample')} recovered (valid after a failed attempt, which "
            "still counts in invalid_free/invalid_paid)."
        )
    return notes


def category_table(samples: pd.DataFrame) -> pd.DataFrame:
    """Counts of the six categories per condition and tier (judged samples only)."""
    judged = samples[samples["category"].notna()]
    counts = judged.groupby([*KEY, "judge", "tier"])["category"].value_counts()
    counts = counts.unstack(fill_value=0)
    counts = counts.reindex(columns=list(CATEGORIES), fill_value=0)
    counts["n"] = counts.sum(axis=1)
    return counts.reset_index()


def status_table(samples: pd.DataFrame) -> pd.DataFrame:
    """How many samples ended in each status, per condition and tier."""
    counts = samples.groupby([*KEY, "judge", "tier"])["status"].value_counts()
    counts = counts.unstack(fill_value=0)
    return counts.reset_index()


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
    """
    paper = reference.assign(
        source="paper",
        low=reference["value"] - reference["ci"],
        high=reference["value"] + reference["ci"],
        n=pd.NA,
        snapshot=reference["model"].map(normalise_model),
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
        snapshot=long["model"].map(normalise_model),
        label=long["variant"].map(condition_label),
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
    return [_significance_note(row) for _, row in summary.iterrows()]


def significance_summary(summary: pd.DataFrame) -> list[str]:
    """The report's notes: each significant gap, each non-significant gap whose interval
    excludes zero (the interval and the test disagree), then a count of the other
    non-significant gaps, and the conditions without a gap grouped by why."""
    tested = summary[summary["n_pairs"] > 0]
    untested = summary[summary["n_pairs"] == 0]
    significant = tested[tested["gap_p_value"] < ALPHA]
    rest = tested[~(tested["gap_p_value"] < ALPHA)]
    disagree = rest[(rest["gap_ci_low"] > 0) | (rest["gap_ci_high"] < 0)]
    quiet = rest.drop(disagree.index)
    notes = [_significance_note(row) for _, row in significant.iterrows()]
    table = "the Conditions table gives each gap with its interval, p-value and test"
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
    reasons: dict[str, list[str]] = {}
    for _, row in untested.iterrows():
        reasons.setdefault(_why_no_gap(row), []).append(_name(row))
    for reason, names in reasons.items():
        notes.append(f"{'; '.join(names)}: {reason}")
    return notes


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _name(row: pd.Series) -> str:
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
        f"({row['gap_test']} p = {row['gap_p_value']:.3g}, n = {row['n_pairs']} "
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
    """Why a condition has no pairs: nothing valid, valid answers nobody judged, or no query
    with a scored answer in both tiers."""
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


def judge_notes(samples: pd.DataFrame) -> list[str]:
    """Why AF rates or categories are missing, per condition, from `classifier_status`."""
    notes = []
    valid = samples[samples["status"] == "valid"]
    for key, group in valid.groupby(KEY):
        unscored = group["classifier_status"].str.startswith("unscored")
        if unscored.any():
            reason = group.loc[unscored, "classifier_status"].value_counts().index[0]
            notes.append(
                f"{' / '.join(map(str, key))}: {int(unscored.sum())} of {len(group)} valid samples "
                f"have no judge result (most common reason: {reason})."
            )
        no_compliance = group["complied"].isna()
        if no_compliance.any():
            reason = group.loc[no_compliance, "compliance_status"].value_counts().index[0]
            notes.append(
                f"{' / '.join(map(str, key))}: {int(no_compliance.sum())} of {len(group)} valid "
                f"samples have no compliance result (most common reason: {reason})."
            )
    return notes


def _cell(value: float, low: float, high: float, n: int) -> str:
    if pd.isna(value):
        return f"- (n={n})"
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
