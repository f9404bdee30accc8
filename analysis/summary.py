"""Per-condition compliance rates and the paired compliance gap."""

from __future__ import annotations

import math

import pandas as pd

from analysis.logs import KEY
from analysis.stats import paired_gap, rate_ci, rate_estimate, rate_method

SETTINGS = [
    "temperature",
    "max_tokens",
    "max_turns",
    "compliance_rule",
    "limits",
    "grader",
    "classifier",
    "votes",
    "threshold",
]
"""Per-condition settings columns, for the report's settings table (`n/a` where unknown)."""
SUMMARY_COLUMNS = [
    *KEY,
    "name",
    "label",
    "trained_tier",
    "trained_tier_assumed",
    "judge",
    "prompt",
    "prompt_digest",
    "n_queries",
    *SETTINGS,
    "run_config",
    "runs_merged",
    "superseded",
    "epochs",
    "n_pairs",
    "free_compliance",
    "free_ci_low",
    "free_ci_high",
    "n_free",
    "paid_compliance",
    "paid_ci_low",
    "paid_ci_high",
    "n_paid",
    "rate_ci_method",
    "compliance_gap",
    "gap_ci_low",
    "gap_ci_high",
    "gap_p_value",
    "gap_test",
    "gap_ci_method",
    "detectable_gap",
    "af_rate_free",
    "af_rate_paid",
    "possible_af_free",
    "possible_af_paid",
    "valid_free",
    "valid_paid",
    "invalid_free",
    "invalid_paid",
    "errored_free",
    "errored_paid",
    "recovered_free",
    "recovered_paid",
    "unscored_free",
    "unscored_paid",
    "compliance_unscored_free",
    "compliance_unscored_paid",
    "trained_compliance",
    "trained_ci_low",
    "trained_ci_high",
    "n_trained",
    "unmonitored_compliance",
    "unmonitored_ci_low",
    "unmonitored_ci_high",
    "n_unmonitored",
    "af_rate_trained",
    "af_rate_unmonitored",
]


HIDDEN_COLUMNS = ["unmonitored_tier", "framings", "framing_counts"]
"""Columns the summary carries for the report but never writes to summary.csv, whose columns
stay those of the two tiers: the unmonitored framing's name (None where a variant's
framings have none), the declared framings with their roles (None for the two tiers), and
each framing's counts (`COUNT_NAMES` -> value)."""
COUNT_NAMES = [
    "valid",
    "invalid",
    "errored",
    "recovered",
    "unscored",
    "compliance_unscored",
    "n",
]

PROMPT_WORDING = {
    "project": "this project's wording",
    "paper": "the paper's prompts",
    "custom": "a prompt file of your own",
    "paraphrase": "a paraphrase of this project's wording",
}


def prompt_wording(origin: object) -> object:
    """How the report names a `prompt_origin`: its wording (`PROMPT_WORDING`), with a
    paraphrase's set id kept (`paraphrase:SETID` reads `... (set SETID)`)."""
    kind, colon, named = str(origin).partition(":")
    if colon and kind == "paraphrase":
        return f"{PROMPT_WORDING[kind]} (set {named})"
    return PROMPT_WORDING.get(origin, origin) if isinstance(origin, str) else origin


def summarize(samples: pd.DataFrame) -> pd.DataFrame:
    """One row per condition (`KEY`).

    Rates are over the valid, scored samples of a tier (every epoch), with intervals that
    treat the queries, not the epochs, as the independent units. The gap, its interval and
    p-value use the (query, epoch) pairs valid and scored in both tiers; `n_pairs` counts
    their queries.
    """
    rows = []
    for key, group in samples.groupby(KEY, sort=True, dropna=False):
        scored = group[group["complied"].notna()]
        first = group.iloc[0]
        # The gap is compliance where the model was told it is trained minus where it is not
        # trained, rated or monitored; framings without both leave it empty (contrasts.csv).
        trained = first["trained_tier"]
        unmonitored = first.get("unmonitored_tier", "paid" if trained == "free" else "free")
        roles = [trained, unmonitored if isinstance(unmonitored, str) else "(none)"]
        wide = scored.pivot_table(
            index=["query_id", "epoch"], columns="tier", values="complied", aggfunc="first"
        ).reindex(columns=roles)
        pairs = wide.dropna().astype(int)
        gap = paired_gap(
            pairs.index.get_level_values("query_id").to_numpy(),
            pairs.iloc[:, 0].to_numpy(),
            pairs.iloc[:, 1].to_numpy(),
        )
        free, paid = (group[group["tier"] == tier] for tier in ("free", "paid"))
        row = {
            **dict(zip(KEY, key, strict=True)),
            "label": first["label"],
            "trained_tier": trained,
            "trained_tier_assumed": bool(first["trained_tier_assumed"]),
            "prompt": prompt_wording(first["prompt_origin"]),
            "prompt_digest": _setting(first["prompt_digest"]),
            "n_queries": int(group["query_id"].nunique()),
            **{name: _setting(first[name]) for name in SETTINGS},
            "judge": group["judge"].iloc[0],
            "run_config": group["run_config"].iloc[0],
            "runs_merged": int(group["runs_merged"].iloc[0]),
            "superseded": int(group["superseded"].iloc[0]),
            "epochs": int(group["epoch"].max()),
            "n_pairs": gap.n_pairs,
            "rate_ci_method": rate_method(),
            "compliance_gap": gap.gap,
            "gap_ci_low": gap.ci_low,
            "gap_ci_high": gap.ci_high,
            "gap_p_value": gap.p_value,
            "gap_test": gap.test,
            "gap_ci_method": gap.ci_method,
            "valid_free": int((free["status"] == "valid").sum()),
            "valid_paid": int((paid["status"] == "valid").sum()),
            # Over every attempt: a sample that failed and was run again still counts.
            "invalid_free": int(free["failed_attempts"].sum()),
            "invalid_paid": int(paid["failed_attempts"].sum()),
            "errored_free": int(free["errored_attempts"].sum()),
            "errored_paid": int(paid["errored_attempts"].sum()),
            "recovered_free": int(free["recovered"].sum()),
            "recovered_paid": int(paid["recovered"].sum()),
            "unscored_free": _unscored(free),
            "unscored_paid": _unscored(paid),
            # Valid samples whose compliance nobody could judge (no grader, or it failed).
            "compliance_unscored_free": int(
                ((free["status"] == "valid") & free["complied"].isna()).sum()
            ),
            "compliance_unscored_paid": int(
                ((paid["status"] == "valid") & paid["complied"].isna()).sum()
            ),
        }
        for tier, rows_of_tier in (("free", free), ("paid", paid)):
            value, low, high, n = rate_with_ci(rows_of_tier, "complied")
            row |= {
                f"{tier}_compliance": value,
                f"{tier}_ci_low": low,
                f"{tier}_ci_high": high,
                f"n_{tier}": n,
                f"af_rate_{tier}": rate_with_ci(rows_of_tier, "af_reasoning")[0],
                f"possible_af_{tier}": rate_with_ci(rows_of_tier, "possible_af")[0],
            }
        for role, tier in zip(("trained", "unmonitored"), roles, strict=True):
            rows_of_role = group[group["tier"] == tier]
            value, low, high, n = rate_with_ci(rows_of_role, "complied")
            row |= {
                f"{role}_compliance": value,
                f"{role}_ci_low": low,
                f"{role}_ci_high": high,
                f"n_{role}": n,
                f"af_rate_{role}": rate_with_ci(rows_of_role, "af_reasoning")[0],
            }
        row["detectable_gap"] = detectable_gap_at(
            gap.n_pairs, row["unmonitored_compliance"], negative=gap.gap < 0
        )
        framings = first.get("framings")
        row |= {
            "unmonitored_tier": unmonitored if isinstance(unmonitored, str) else None,
            "framings": framings if isinstance(framings, tuple) else None,
            "framing_counts": {
                tier: framing_counts(group[group["tier"] == tier])
                for tier in dict.fromkeys(group["tier"])
            },
        }
        rows.append(row)
    columns = [c for c in SUMMARY_COLUMNS if c != "name"] + HIDDEN_COLUMNS
    summary = pd.DataFrame(rows, columns=columns)
    summary.insert(len(KEY), "name", condition_names(summary) if len(summary) else [])
    return summary


def detectable_gap_at(n_queries: int, unmonitored: float, negative: bool = False) -> float:
    """The smallest gap, in size and in the direction of the observed one (`negative`:
    below zero), that this many queries detect with 80% power in the exact paired test, at
    this unmonitored compliance with the tiers independent and one epoch per query
    (`analysis.power`); NaN where there is no gap, or none reaches that power."""
    from analysis.power import Rates, detectable_gap

    if n_queries < 1 or pd.isna(unmonitored):
        return math.nan
    rates = Rates(unmonitored=round(float(unmonitored), 3))
    gap = detectable_gap(n_queries, rates, negative=bool(negative))
    return math.nan if gap is None else gap


# Settings that name a condition where they tell it apart from its neighbours, shortest first.
_NAMED_BY = {
    "temperature": "T",
    "max_tokens": "max_tokens",
    "max_turns": "turns",
    "compliance_rule": "rule",
    "limits": "limits",
    "prompt": "prompt",
    "grader": "judge",
    "classifier": "classifier",
    "votes": "votes",
    "threshold": "threshold",
    "epochs": "epochs",
}


def _setting(value: object) -> object:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "n/a"
    return int(value) if isinstance(value, float) and value.is_integer() else value


def condition_names(summary: pd.DataFrame) -> list[str]:
    """Readable names: the label, then `key=value` for each setting that differs between
    conditions of the same setting, label and dataset, whatever the model, so that one name
    means the same settings for every model (`default · T=0`); a digest is added only where
    a model's names still collide."""
    names = []
    siblings = ["setting", "label", "dataset"]
    for _, row in summary.iterrows():
        same = summary
        for column in siblings:
            same = same[same[column] == row[column]]
        parts = [str(row["label"])]
        # A prompt file is never plain "default": named by its wording where that differs
        # between the conditions (below), else by its file name.
        if "@" in str(row["variant"]) and same["prompt"].astype(str).nunique() == 1:
            parts.append(f"prompt={str(row['variant']).split('@', 1)[1].rsplit('#', 1)[0]}")
        for column, short in _NAMED_BY.items():
            if same[column].astype(str).nunique() > 1:
                value = row[column]
                parts.append(f"{short} unset" if value == "n/a" else f"{short}={value}")
        names.append(" · ".join(parts))
    counts = pd.Series(names).groupby([summary["model"], summary["setting"], pd.Series(names)])
    collide = counts.transform("size").to_numpy() > 1
    return [
        f"{name} [{condition}]" if clash else name
        for name, condition, clash in zip(names, summary["condition"], collide, strict=True)
    ]


def rate_with_ci(samples: pd.DataFrame, column: str) -> tuple[float, float, float, int]:
    """(rate, low, high, n) of a 0/1 column over the samples that have it: epochs are
    averaged within each query first, so every query weighs the same (see analysis.stats)."""
    known = samples[samples[column].notna()]
    if known.empty:
        return float("nan"), float("nan"), float("nan"), 0
    values = known[column].astype(int).to_numpy()
    clusters = known["query_id"].to_numpy()
    low, high = rate_ci(values, clusters=clusters)
    return rate_estimate(values, clusters), low, high, len(values)


def framing_counts(samples: pd.DataFrame) -> dict[str, int]:
    """One framing's counts, as the summary's `*_free` and `*_paid` columns count a tier."""
    valid = samples["status"] == "valid"
    return {
        "valid": int(valid.sum()),
        "invalid": int(samples["failed_attempts"].sum()),
        "errored": int(samples["errored_attempts"].sum()),
        "recovered": int(samples["recovered"].sum()),
        "unscored": _unscored(samples),
        "compliance_unscored": int((valid & samples["complied"].isna()).sum()),
        "n": int(samples["complied"].notna().sum()),
    }


def _unscored(samples: pd.DataFrame) -> int:
    """Valid samples that should have an AF label and have none (no grader, or a judge
    failure); those where it does not apply (no scratchpad) are not counted."""
    valid = samples[samples["status"] == "valid"]
    applies = ~valid["classifier_status"].str.startswith("not applicable")
    return int((valid["af_reasoning"].isna() & applies).sum())
