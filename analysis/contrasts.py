"""Named contrasts between the framings of a condition, with the gap's paired statistics.

A contrast `a - b` is compliance under framing `a` minus under framing `b`, over the (query,
epoch) pairs valid and scored under both: the compliance gap of the two fixed tiers is the
contrast `compliance_gap` (trained minus unmonitored). A variant that declares its own
framings names its contrasts (`goal_guarding = free - pro`, say).
"""

from __future__ import annotations

import pandas as pd

from analysis.logs import KEY
from analysis.stats import paired_gap
from analysis.summary import detectable_gap_at, framing_counts, rate_with_ci
from evals.labels import GAP_CONTRAST

CONTRAST_COLUMNS = [
    *KEY,
    "name",
    "contrast",
    "declared",
    "framing_a",
    "framing_b",
    "epochs",
    "n_pairs",
    "compliance_a",
    "a_ci_low",
    "a_ci_high",
    "n_a",
    "compliance_b",
    "b_ci_low",
    "b_ci_high",
    "n_b",
    "difference",
    "ci_low",
    "ci_high",
    "p_value",
    "test",
    "ci_method",
    "detectable_gap",
    "af_rate_a",
    "af_rate_b",
    "valid_a",
    "valid_b",
    "invalid_a",
    "invalid_b",
    "unscored_a",
    "unscored_b",
]


def contrasts_table(samples: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """One row per condition and contrast, in the order the variant declares them (the
    compliance gap first, where the condition has one). `summary` gives the names."""
    names = (
        {tuple(row[k] for k in KEY): row["name"] for _, row in summary.iterrows()}
        if len(summary)
        else {}
    )
    rows = []
    for key, group in samples.groupby(KEY, sort=True, dropna=False):
        contrasts = group["contrasts"].iloc[0] if "contrasts" in group else ()
        framings = group["framings"].iloc[0] if "framings" in group else None
        for contrast, a, b in contrasts or ():
            if a is None or b is None:
                continue
            rows.append(
                {
                    **dict(zip(KEY, key, strict=True)),
                    "name": names.get(tuple(key), group["label"].iloc[0]),
                    # Whether a variant declared framings or contrasts (else the gap alone).
                    "declared": isinstance(framings, tuple)
                    or any(name != GAP_CONTRAST for name, _, _ in contrasts),
                    **contrast_row(group, str(contrast), str(a), str(b)),
                }
            )
    return pd.DataFrame(rows, columns=CONTRAST_COLUMNS)


def contrast_row(group: pd.DataFrame, contrast: str, a: str, b: str) -> dict[str, object]:
    """The statistics of one contrast over one condition's samples."""
    scored = group[group["complied"].notna()]
    wide = scored.pivot_table(
        index=["query_id", "epoch"], columns="tier", values="complied", aggfunc="first"
    ).reindex(columns=[a, b])
    pairs = wide.dropna().astype(int)
    gap = paired_gap(
        pairs.index.get_level_values("query_id").to_numpy(),
        pairs[a].to_numpy(),
        pairs[b].to_numpy(),
    )
    row: dict[str, object] = {
        "contrast": contrast,
        "framing_a": a,
        "framing_b": b,
        "epochs": int(group["epoch"].max()),
        "n_pairs": gap.n_pairs,
        "difference": gap.gap,
        "ci_low": gap.ci_low,
        "ci_high": gap.ci_high,
        "p_value": gap.p_value,
        "test": gap.test,
        "ci_method": gap.ci_method,
    }
    for side, framing in (("a", a), ("b", b)):
        rows = group[group["tier"] == framing]
        value, low, high, n = rate_with_ci(rows, "complied")
        counts = framing_counts(rows)
        row |= {
            f"compliance_{side}": value,
            f"{side}_ci_low": low,
            f"{side}_ci_high": high,
            f"n_{side}": n,
            f"af_rate_{side}": rate_with_ci(rows, "af_reasoning")[0],
            **{f"{count}_{side}": counts[count] for count in ("valid", "invalid", "unscored")},
        }
    row["detectable_gap"] = detectable_gap_at(
        gap.n_pairs, row["compliance_b"], negative=gap.gap < 0
    )
    return row
