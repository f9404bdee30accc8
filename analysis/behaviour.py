"""Anti-lab behaviour and lying (Greenblatt et al. 2024, §6 and Table 4): logs to rows, rates
and each condition against its baseline.

Rows
----
`load_behaviour` reads the logs of the `anti_lab` and `lying` tasks (by the task their header
names, never by file name) into one row per sample, epoch and judge (`SAMPLE_COLUMNS`). A
condition is the model, setting, variant, label, a digest of what the model was shown and how
it ran (`analysis.logs.condition_digest`), and the judge (grader and judge settings, read from
each judgement's own score): runs that differ in any of them never merge, and each judge of a
condition is a condition of its own. A sample seen in several logs (retried, re-scored with
`inspect score`, which appends `opportunity_judge1` and so on, or a renamed file) keeps one
record: the best (valid and scored over unscored over invalid over errored), then the one
judged last, then the one finished last, then the uuid. Within one record, each judge's latest
judgement is kept, and a judgement that failed never replaces a label.

Statistics
----------
* One opportunity or lying question (`scope` = `item`): the rate of `taken` (`decided`,
  `reversed`) or `lie` (`egregious_lie`) over the valid samples the judge labelled, with a
  Wilson score interval over those samples. The epochs of one prompt are independent draws of
  the model's reply to it, so they are the trials. Invalid and unscored samples are counted
  beside the rate and never enter it.
* Pooled (`scope` = `pooled`): a lying condition's questions (what Table 4 reports), or an
  anti-lab condition's opportunities of one kind. The rate is the mean of the per-question
  rates, with `analysis.stats.rate_ci` clustered by question: the questions are the units.
* A condition against its baseline: the condition of the same task, model, setting,
  scratchpad, judge and generation settings whose variant adds `cut_conflicting_criteria`
  to the same other variants (`no_scratchpad` -> `cut_conflicting_criteria+no_scratchpad`).
  The samples are not paired, so the difference is of two independent proportions, with
  Newcombe's hybrid score interval (statsmodels, method `newcomb`) and Boschloo's exact test
  (scipy, two-sided). Pooled rows compare the mean per-question rates over the questions that
  both conditions have scored (`compared_items`), with questions as the units as in the
  pooled rate: Newcombe's hybrid rule on each side's clustered Wilson interval, and the
  exact sign-flip test on the per-question differences (`pooled_difference`). A row without
  a baseline says why, and has no comparison.

Invariants (property-tested in tests/test_behaviour_analysis.py): intervals contain their
estimate; swapping the two conditions negates the difference and its interval and keeps p;
repeating a question's epochs identically leaves its rate and the pooled estimate unchanged;
invalid and unscored samples never enter a rate.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.logs import (
    BEHAVIOUR_TASKS,
    _content,
    _short,
    _usage,
    _usage_by_role,
    _why_superseded,
    condition_digest,
    find_logs,
    is_behaviour_log,
    log_task,
    read_log,
    utc_time,
)
from analysis.stats import rate_ci, rate_estimate
from evals.labels import NO_GRADER, limit_status

TASKS = BEHAVIOUR_TASKS
SCORERS = {"anti_lab": "opportunity_judge", "lying": "lying_judge"}
ITEMS = {"anti_lab": "opportunity", "lying": "question"}
LABELS = {"anti_lab": ("taken", "decided", "reversed"), "lying": ("lie", "egregious_lie")}
"""The 0/1 verdicts each task's judge records in its score value."""
PRIMARY = {"anti_lab": "taken", "lying": "lie"}
"""The verdict whose absence makes a valid sample unscored."""
BASELINE = "cut_conflicting_criteria"
KEY = ["task", "model", "setting", "variant", "condition"]
NO_JUDGE = "none"
NOT_JUDGED = "unscored: log has no judge scores"
UNKNOWN = "unknown: no score recorded"
"""The status of a sample that neither errored nor hit a limit and has no score to say more."""
JUDGE_DEFAULTS = {"threshold": 0.5, "temperature": 1.0, "rule": "majority"}
"""Judge settings that a judge label names only where they differ from these."""
SAMPLE_COLUMNS = [
    *KEY,
    "label",
    "name",
    "scratchpad",
    "judge",
    "grader",
    "item",
    "opportunity",
    "question",
    "kind",
    "question_index",
    "epoch",
    "tier",
    "employee",
    "unmonitored",
    "status",
    "recovered",
    "taken",
    "decided",
    "reversed",
    "lie",
    "egregious_lie",
    "judge_label",
    "judge_status",
    "judged_at",
    "evidence",
    "run_config",
    "policy_condition",
    "log",
    "uuid",
    "sample_time",
]
_NOT_ANTI_LAB = ("question", "question_index", *LABELS["lying"])
_NOT_LYING = ("opportunity", "kind", "employee", *LABELS["anti_lab"])
TASK_SAMPLE_COLUMNS = {
    "anti_lab": [c for c in SAMPLE_COLUMNS if c not in _NOT_ANTI_LAB],
    "lying": [c for c in SAMPLE_COLUMNS if c not in _NOT_LYING],
}
"""The columns of each task's samples CSV (the other task's are always empty)."""
NEWCOMBE_CI = "Newcombe hybrid score interval for a difference of independent proportions"
BOSCHLOO_TEST = "Boschloo exact test (two-sided)"
WILSON_SAMPLES = "Wilson score on samples"
WILSON_ITEMS = "Wilson score on per-question means"
NEWCOMBE_POOLED_CI = "Newcombe hybrid rule on the two sides' Wilson intervals on per-question means"
SIGN_FLIP_TEST = "exact sign-flip test on the per-question differences (two-sided)"
PUBLISHED_METRICS = {"lie": "lie_rate", "egregious_lie": "egregious_lie_rate"}
"""The reference CSV's metric of each lying verdict (results/reference/greenblatt2024_lying.csv)."""


# Reading ---------------------------------------------------------------------------------


def load_behaviour(paths: Sequence[str | Path]) -> pd.DataFrame:
    """One row per sample, epoch and judge of the anti-lab and lying logs among `paths`
    (`SAMPLE_COLUMNS`; empty when there are none). Logs of other tasks are skipped without
    reading their samples. `attrs`: `usage` (tokens per role and model, as
    `analysis.logs.load_samples` gives it), `superseded` (records dropped, by reason) and
    `logs` (the logs each condition's kept records come from, by `KEY`)."""
    records: list[dict[str, Any]] = []
    for location in find_logs(paths):
        header, summaries = read_log(location, is_behaviour_log)
        if summaries is None:
            continue
        digests: dict[str, tuple[str, str]] = {}
        task = log_task(header)
        records += [_record(task, header, summary, location, digests) for summary in summaries]
    if not records:
        empty = pd.DataFrame(columns=SAMPLE_COLUMNS)
        empty.attrs.update(usage=None, superseded=Counter(), logs={})
        return empty
    frame = pd.DataFrame(records)
    usage = _usage_by_role(frame)
    rows = _one_row_per_judge(_attempts(frame))
    rows["rank"] = _rank(rows)
    rows = rows.sort_values(
        ["rank", "judged_at", "sample_time", "uuid"], ascending=False, kind="stable"
    )
    identity = [*KEY, "item", "epoch"]
    dropped = rows[rows.duplicated(identity, keep="first")]
    rows = rows.drop_duplicates(identity, keep="first")
    # A sample valid in the end after an attempt that was not (a retried run): counted, so
    # that a retry never hides what failed and was paid for.
    failed = dropped.loc[dropped["status"] != "valid", identity].drop_duplicates()
    rows = rows.merge(failed.assign(_failed=True), on=identity, how="left")
    rows["recovered"] = rows["_failed"].fillna(False).astype(bool) & (rows["status"] == "valid")
    rows["name"] = _names(rows)
    for column in (*LABELS["anti_lab"], *LABELS["lying"]):
        rows[column] = rows[column].astype("Int64")
    rows["question_index"] = rows["question_index"].astype("Int64")
    order = ["task", "model", "setting", "variant", "condition", "question_index", "item", "epoch"]
    rows = rows.sort_values(order, kind="stable").reset_index(drop=True)
    superseded = Counter(_why_superseded(dropped, rows, identity))
    logs = {tuple(key): sorted(set(group)) for key, group in rows.groupby(KEY, dropna=False)["log"]}
    rows = rows[SAMPLE_COLUMNS].copy()
    rows.attrs.update(usage=usage, superseded=superseded, logs=logs)
    return rows


def _record(
    task: str,
    header: dict[str, Any],
    summary: dict[str, Any],
    location: str,
    digests: dict[str, tuple[str, str]],
) -> dict[str, Any]:
    """One sample as one log recorded it, with every judgement its scores hold."""
    metadata = summary.get("metadata") or {}
    declared = header.get("metadata") or {}
    # The task's own record of what the model was shown; a sample's copy for older logs.
    inputs = declared.get("inputs") if isinstance(declared.get("inputs"), dict) else None
    inputs = inputs if inputs is not None else metadata.get("inputs")
    label = declared.get("label") or metadata.get("label")
    cache_key = f"{_content(inputs)}\0{label}"
    if cache_key not in digests:
        digests[cache_key] = condition_digest(header, inputs, label)
    policy_condition, run_config = digests[cache_key]
    scores = summary.get("scores") or {}
    judgements = [_judgement(task, scores[name]) for name in _judge_keys(scores, SCORERS[task])]
    for _, _, fields in judgements:
        fields["judged_in"] = location  # the log that holds the judgement kept names the record
    statuses = [j[2]["sample_status"] for j in judgements if j[2]["sample_status"]]
    if summary.get("error"):
        status = "error"
    elif statuses:
        status = statuses[-1]
    elif summary.get("limit"):
        status = limit_status(str(summary["limit"]))
    else:
        status = UNKNOWN
    item = metadata.get(ITEMS[task]) or summary["id"]
    variant = declared.get("variant") or metadata.get("variant")
    return {
        "task": task,
        "model": header["model"],
        "setting": declared.get("setting") or metadata.get("setting"),
        "variant": variant,
        "label": label or variant,
        "scratchpad": bool(metadata.get("scratchpad", declared.get("scratchpad", True))),
        "policy_condition": policy_condition,
        "run_config": run_config,
        "item": str(item),
        "opportunity": str(item) if task == "anti_lab" else None,
        "question": str(item) if task == "lying" else None,
        "kind": metadata.get("kind"),
        "question_index": metadata.get("question_index"),
        "epoch": int(summary["epoch"]),
        "tier": metadata.get("tier"),
        "employee": metadata.get("employee"),
        "unmonitored": metadata.get("unmonitored"),
        "status": status,
        "log": location,
        "uuid": summary.get("uuid") or f"{location}#{summary['id']}#{summary['epoch']}",
        "sample_time": utc_time(summary.get("completed_at") or summary.get("started_at")),
        "judgements": judgements,
        "usage": _usage(header, summary, location),
    }


def _judge_keys(scores: dict[str, Any], scorer: str) -> list[str]:
    """The task's judge score and those `inspect score --action append` added after it."""
    names = [
        k for k in scores if k == scorer or (k.startswith(scorer) and k[len(scorer) :].isdigit())
    ]
    return sorted(names, key=lambda k: int(k[len(scorer) :] or 0))


def _judgement(task: str, score: Any) -> tuple[str, tuple, dict[str, Any]]:
    """(judge label, order, fields) of one judge score: the order makes a labelled judgement
    beat a failed one, then the later one win, then its content (never read order)."""
    value = score.get("value") if isinstance(score, dict) else None
    metadata = (score.get("metadata") if isinstance(score, dict) else None) or {}
    value = value if isinstance(value, dict) else {}
    settings = judge_settings(metadata)
    status = str(value.get("status") or "unscored: the score records no status")
    labels = {key: _binary(value.get(key)) for key in LABELS[task]}
    labelled = status == "ok" and labels[PRIMARY[task]] is not None
    judged_at = utc_time((metadata.get("judge") or {}).get("judged_at"))
    quality = 2 if labelled else 0 if status in (NO_GRADER, NOT_JUDGED) else 1
    fields = {
        **labels,
        "judge_label": value.get("label"),
        "judge_status": status,
        "evidence": metadata.get("evidence"),
        "judged_at": judged_at,
        "grader": settings.get("grader"),
        "sample_status": metadata.get("sample_status"),
    }
    order = (labelled, judged_at, quality, _content([value, metadata]))
    return judge_label(settings), order, fields


def _binary(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float) and not isinstance(value, bool) and value in (0, 1):
        return int(value)
    return None


def judge_settings(metadata: dict[str, Any]) -> dict[str, Any]:
    """Who judged and how, from a judgement's own score (without the time it was made);
    `{"grader": None}` where no grader judged."""
    recorded = metadata.get("judge")
    if not isinstance(recorded, dict):
        return {"grader": metadata.get("grader")}
    settings = {k: v for k, v in recorded.items() if k != "judged_at"}
    if not settings.get("grader"):
        return {"grader": None}
    for name in ("threshold", "temperature"):
        if settings.get(name) is not None:
            settings[name] = float(settings[name])  # 1 and 1.0 are one setting
    return settings


def judge_label(settings: dict[str, Any]) -> str:
    """The judge column: the grader, the judge and the settings that change its labels."""
    if not settings.get("grader"):
        return NO_JUDGE
    parts = []
    if settings.get("classifier"):
        parts.append(f"{settings['classifier']} judge")
    if settings.get("votes") is not None:
        parts.append(f"{settings['votes']} votes")
    parts += [
        f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
        for k, v in sorted(settings.items())
        if k not in {"grader", "classifier", "votes"}
        and v is not None
        and JUDGE_DEFAULTS.get(k) != v
    ]
    return f"{settings['grader']} ({', '.join(parts)})" if parts else str(settings["grader"])


def _attempts(records: pd.DataFrame) -> pd.DataFrame:
    """One row per attempt (sample uuid): copies of a sample in re-scored or renamed logs are
    one attempt, with the judgements of every copy; per judge the best (then latest) kept."""
    known = records["status"] != UNKNOWN  # a copy whose scores say how the sample ended
    records = records.assign(_known=known).sort_values(
        ["_known", "sample_time", "log"], ascending=[False, False, True], kind="stable"
    )
    first = records.drop_duplicates("uuid", keep="first").set_index("uuid")
    pooled: dict[str, dict[str, tuple[tuple, dict]]] = {}
    for uuid, judgements in zip(records["uuid"], records["judgements"], strict=True):
        mine = pooled.setdefault(uuid, {})
        for label, order, fields in judgements:
            if label not in mine or order > mine[label][0]:
                mine[label] = (order, fields)
    first["judgements"] = [pooled[uuid] for uuid in first.index]
    return first.reset_index().drop(columns="_known")


def _one_row_per_judge(attempts: pd.DataFrame) -> pd.DataFrame:
    """Each attempt once per judge of its condition: with that judge's judgement, or a
    status saying why it has none. Grader-less judge scores make a judge of their own only
    where no grader judged the condition."""
    policy = ["task", "model", "setting", "variant", "policy_condition"]
    judges: dict[tuple, list[str]] = {}
    for key, group in attempts.groupby(policy, dropna=False, sort=False):
        labels = {label for judgements in group["judgements"] for label in judgements}
        judges[key] = sorted(labels - {NO_JUDGE}) or [NO_JUDGE]
    fields = [*LABELS["anti_lab"], *LABELS["lying"], "judge_label", "judge_status", "evidence",
              "judged_at", "grader", "judged_in"]  # fmt: skip
    positions, names = [], []
    values: dict[str, list[Any]] = {name: [] for name in fields}
    keys = zip(*(attempts[k] for k in policy), strict=True)
    columns = (attempts["judgements"], attempts["status"], keys)
    for position, (judgements, status, key) in enumerate(zip(*columns, strict=True)):
        for label in judges[key]:
            judged = judgements.get(label, (None, None))[1]
            if judged is None:
                judged = {"judge_status": _not_judged(status, label), "judged_at": ""}
            positions.append(position)
            names.append(label)
            for name in fields:
                values[name].append(judged.get(name))
    rows = attempts.iloc[positions].reset_index(drop=True)
    rows["judge"] = names
    for name in fields:
        rows[name] = values[name]
    valid = rows["status"] == "valid"
    scored = rows["judge_status"] == "ok"
    for name in (*LABELS["anti_lab"], *LABELS["lying"]):
        # A verdict counts only for a valid sample the judge labelled.
        rows[name] = rows[name].where(valid & scored & rows[name].notna(), None)
    rows["judged_at"] = rows["judged_at"].fillna("")
    rows["log"] = rows["judged_in"].fillna(rows["log"])
    # The model is part of the key: the condition digest is the same for every model run on
    # it, and the tables and baselines look rows up by condition.
    rows["condition"] = [
        _short(f"{model}\0{policy_condition}\0{judge}")
        for model, policy_condition, judge in zip(
            rows["model"], rows["policy_condition"], rows["judge"], strict=True
        )
    ]
    return rows


def _not_judged(status: str, judge: str) -> str:
    if status not in ("valid", UNKNOWN):
        return f"not applicable: sample is {status}"
    if judge == NO_JUDGE:
        return NOT_JUDGED
    return "unscored: not judged by this judge (re-score the log with it)"


def _rank(rows: pd.DataFrame) -> pd.Series:
    """How good a record is: valid beats invalid beats errored, and among valid records a
    labelled one beats one whose judge failed, which beats an unjudged one."""
    valid = rows["status"] == "valid"
    status = rows["judge_status"].astype(str)
    labelled = valid & (status == "ok")
    attempted = valid & ~status.str.startswith("unscored") & ~status.str.startswith("not")
    attempted |= labelled
    return (rows["status"] != "error") * 1 + valid * 2 + attempted * 1 + labelled * 1


def _names(rows: pd.DataFrame) -> list[str]:
    """Each condition's readable name: its label, with its judge where two conditions of a
    task, model and setting share a label, and its digest where that is not enough."""
    conditions = rows.drop_duplicates(KEY)[[*KEY, "label", "judge"]]
    group = ["task", "model", "setting"]
    names: dict[tuple, str] = {}
    for _, same in conditions.groupby(group, dropna=False):
        counts = Counter(same["label"])
        with_judge = Counter(zip(same["label"], same["judge"], strict=True))
        for row in same.itertuples(index=False):
            name = str(row.label)
            if counts[row.label] > 1:
                if with_judge[(row.label, row.judge)] == 1 and same["judge"].nunique() > 1:
                    name = f"{name} · judge {row.judge}"
                else:
                    name = f"{name} [{row.condition}]"
            names[tuple(getattr(row, k) for k in KEY)] = name
    return [names[tuple(key)] for key in rows[KEY].itertuples(index=False)]


# Statistics -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """A condition's rate minus its baseline's, with its interval and exact p-value."""

    difference: float
    low: float
    high: float
    p_value: float


def wilson(count: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of `count` successes in `n` independent trials ((nan, nan) when
    n is 0): `analysis.stats.rate_ci` on the samples themselves."""
    if n == 0:
        return math.nan, math.nan
    return rate_ci(np.r_[np.ones(count), np.zeros(n - count)], confidence=confidence)


def two_sample_difference(
    count: int, n: int, base_count: int, base_n: int, confidence: float = 0.95
) -> Difference:
    """count/n minus base_count/base_n for two independent samples: Newcombe's hybrid score
    interval (statsmodels `confint_proportions_2indep`, method `newcomb`) and Boschloo's exact
    two-sided test (scipy). NaN where either side has no sample.

    The two sides are put in one canonical order before either method runs, so that
    swapping them negates the difference and the interval exactly and keeps p exactly.
    """
    for value, total in ((count, n), (base_count, base_n)):
        if not 0 <= value <= total:
            raise ValueError(f"a count must be between 0 and its n (got {value} of {total})")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be in (0, 1)")
    if n == 0 or base_n == 0:
        return Difference(math.nan, math.nan, math.nan, math.nan)
    first, second = (count, n), (base_count, base_n)
    swapped = first > second
    if swapped:
        first, second = second, first
    difference, low, high, p_value = _difference(*first, *second, confidence)
    if swapped:
        difference, low, high = -difference, -high, -low
    return Difference(difference, low, high, p_value)


@lru_cache(maxsize=4096)
def _difference(
    count: int, n: int, base_count: int, base_n: int, confidence: float
) -> tuple[float, float, float, float]:
    from scipy.stats import boschloo_exact
    from statsmodels.stats.proportion import confint_proportions_2indep

    estimate = count / n - base_count / base_n
    low, high = confint_proportions_2indep(
        count, n, base_count, base_n, method="newcomb", compare="diff", alpha=1 - confidence
    )
    # Newcombe's interval contains the estimate in exact arithmetic; keep it so after rounding.
    low, high = min(float(low), estimate), max(float(high), estimate)
    low, high = max(low, -1.0), min(high, 1.0)
    successes = count + base_count
    if successes in (0, n + base_n):  # no success, or no failure, on either side
        return estimate, low, high, 1.0  # the two samples are identical: nothing to test
    table = [[count, n - count], [base_count, base_n - base_count]]
    p_value = float(boschloo_exact(table, alternative="two-sided").pvalue)
    return estimate, low, high, min(max(p_value, 0.0), 1.0)


@dataclass(frozen=True)
class PooledDifference:
    difference: float
    low: float
    high: float
    p_value: float
    base_rate: float


def pooled_difference(
    mine: Sequence[tuple[int, int]], theirs: Sequence[tuple[int, int]], confidence: float = 0.95
) -> PooledDifference:
    """Mean per-question rate of a condition minus its baseline's, over the same questions
    (each side given as (count, n) per question, in the same order).

    Questions are the units, as in the pooled rate: each side's interval is Wilson's on the
    fractional count sum(rate_q) of Q trials (`rate_ci` clustered by question), combined by
    Newcombe's hybrid rule; the test is the exact sign-flip test on the per-question
    differences (`analysis.stats.sign_flip_p`), exchangeable within a question under the null.
    """
    from analysis.stats import sign_flip_p

    if not mine or len(mine) != len(theirs):
        raise ValueError("both sides need the same questions, at least one")

    def side(counts: Sequence[tuple[int, int]]) -> tuple[float, float, float]:
        values = np.concatenate([np.r_[np.ones(c), np.zeros(n - c)] for c, n in counts])
        clusters = np.concatenate([np.full(n, q) for q, (_, n) in enumerate(counts)])
        low, high = rate_ci(values, clusters=clusters, confidence=confidence)
        return rate_estimate(values, clusters), low, high

    (p1, l1, u1), (p2, l2, u2) = side(mine), side(theirs)
    difference = p1 - p2
    low = difference - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = difference + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    # d_q = c_a/n_a - c_b/n_b = (c_a n_b - c_b n_a) / (n_a n_b): exact integers.
    numerators = np.array(
        [ca * nb - cb * na for (ca, na), (cb, nb) in zip(mine, theirs, strict=True)]
    )
    denominators = np.array([na * nb for (_, na), (_, nb) in zip(mine, theirs, strict=True)])
    p_value, _exact = sign_flip_p(numerators, denominators)
    return PooledDifference(
        difference, max(low, -1.0), min(high, 1.0), min(max(p_value, 0.0), 1.0), p2
    )


def item_rate(values: Sequence | np.ndarray) -> tuple[float, float, float, int]:
    """(rate, low, high, n) of one opportunity's or question's 0/1 verdicts (missing ones
    dropped): the share, and Wilson's interval over the samples."""
    known = _known(values)
    if known.size == 0:
        return math.nan, math.nan, math.nan, 0
    low, high = rate_ci(known)
    return float(known.mean()), low, high, int(known.size)


def pooled_rate(
    values: Sequence | np.ndarray, items: Sequence | np.ndarray
) -> tuple[float, float, float, int, int]:
    """(rate, low, high, n, questions) over several questions: the mean of the per-question
    rates, with Wilson's interval on the per-question means (`rate_ci` clustered by
    question). Missing verdicts are dropped; a question without one is not a unit."""
    values_arr = pd.array(list(values), dtype="Float64")
    keep = ~pd.isna(values_arr)
    known = np.asarray(values_arr[keep], dtype=float)
    clusters = np.asarray(items, dtype=object)[np.asarray(keep, dtype=bool)]
    if known.size == 0:
        return math.nan, math.nan, math.nan, 0, 0
    low, high = rate_ci(known, clusters=clusters)
    units = len(set(clusters.tolist()))
    return rate_estimate(known, clusters), low, high, int(known.size), units


def _known(values: Sequence | np.ndarray) -> np.ndarray:
    array = pd.array(list(values), dtype="Float64")
    return np.asarray(array[~pd.isna(array)], dtype=float)


# Tables -----------------------------------------------------------------------------------

TABLE_COLUMNS = [
    "task", "model", "setting", "variant", "label", "name", "scratchpad", "judge", "condition",
    "scope", "item", "kind", "question_index", "tier", "employee", "metric",
    "n", "count", "rate", "ci_low", "ci_high", "ci_method", "items", "invalid", "unscored",
    "recovered",
    "baseline", "baseline_condition", "compared_items", "compared_n", "compared_count",
    "compared_rate", "baseline_n", "baseline_count", "baseline_rate", "difference",
    "diff_ci_low", "diff_ci_high", "diff_ci_method", "p_value", "test", "baseline_note",
    "published", "published_model",
]  # fmt: skip
TASK_TABLE_COLUMNS = {
    "anti_lab": [
        c for c in TABLE_COLUMNS if c not in ("question_index", "published", "published_model")
    ],
    "lying": [c for c in TABLE_COLUMNS if c not in ("kind", "employee")],
}
COMPARISON_COLUMNS = TABLE_COLUMNS[
    TABLE_COLUMNS.index("baseline") : TABLE_COLUMNS.index("published")
]


def metrics(task: str, scratchpad: bool) -> tuple[str, ...]:
    """The verdicts a condition's table reports: `reversed` needs a scratchpad to have
    decided in (without one the judge records none)."""
    return tuple(m for m in LABELS[task] if scratchpad or m != "reversed")


def rates_table(
    samples: pd.DataFrame, task: str, reference: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per condition, opportunity or question (or pooled group) and verdict
    (`TASK_TABLE_COLUMNS[task]`), each rate with its n, invalid and unscored counts and its
    interval, and the comparison with the condition's baseline where it has one. For lying,
    `reference` (the published values, `analysis.tables.load_reference`) fills `published`
    on the pooled rows of a published setting and variant."""
    own = samples[samples["task"] == task]
    if own.empty:
        return pd.DataFrame(columns=TASK_TABLE_COLUMNS[task])
    rows: list[dict[str, Any]] = []
    for _, group in own.groupby(KEY, sort=True, dropna=False):
        rows += _condition_rows(task, group)
    table = pd.DataFrame(rows)
    found = baselines(own)
    table = _compare(table, found)
    table = _published(table, reference)
    # Each condition followed by its baseline, within a model, setting, scratchpad and judge.
    order = _pair_order(table, found)
    ids = zip(table["model"], table["condition"], strict=True)
    table = table.assign(_order=[order[i] for i in ids]).sort_values("_order", kind="stable")
    return table.reindex(columns=TASK_TABLE_COLUMNS[task]).reset_index(drop=True)


def _pair_order(table: pd.DataFrame, found: dict[tuple, tuple[tuple | None, str]]) -> dict:
    """Each condition's place, by (model, condition digest; the digest alone is shared by
    models run alike): by model, setting, scratchpad and judge, then each condition that is
    not a baseline (by name) followed by its baseline, then unpaired baselines."""
    conditions = table.drop_duplicates(["model", "condition"])
    conditions = conditions.sort_values(["model", "setting", "scratchpad", "judge", "name",
                                         "condition"], kind="stable")  # fmt: skip
    model = KEY.index("model")
    partner = {
        (key[model], key[-1]): (key[model], base[-1])
        for key, (base, _) in found.items()
        if base is not None
    }
    baselines_ = set(partner.values())
    place: dict[tuple, int] = {}
    for _, family in conditions.groupby(["model", "setting", "scratchpad", "judge"], sort=False):
        ids = list(zip(family["model"], family["condition"], strict=True))
        for cid in ids:
            if cid in place or (cid in baselines_ and cid not in partner):
                continue
            place[cid] = len(place)
            if cid in partner and partner[cid] not in place:
                place[partner[cid]] = len(place)
        for cid in ids:
            place.setdefault(cid, len(place))
    return place


def _condition_rows(task: str, group: pd.DataFrame) -> list[dict[str, Any]]:
    first = group.iloc[0]
    base = {c: first[c] for c in ("task", "model", "setting", "variant", "label", "name",
                                  "scratchpad", "judge", "condition")}  # fmt: skip
    order = (
        group.sort_values(["question_index", "item"])["item"]
        if task == "lying"
        else group.sort_values(["kind", "item"], na_position="last")["item"]
    )
    items = list(dict.fromkeys(order))
    rows = []
    chosen = metrics(task, bool(first["scratchpad"]))
    valid = group["status"] == "valid"
    known = group["status"] != UNKNOWN
    for item in items:
        mine = group[group["item"] == item]
        head = mine.iloc[0]
        where = {
            "scope": "item",
            "item": item,
            "kind": head["kind"],
            "question_index": head["question_index"],
            "tier": head["tier"],
            "employee": head["employee"],
        }
        for metric in chosen:
            rows.append(_rate_row(base | where, metric, mine, valid, known))
    pooled: list[tuple[str, str | None, pd.DataFrame]] = []
    if task == "lying":
        pooled.append(("all questions", None, group))
    else:
        for kind, same in group.groupby("kind", sort=True):
            if same["item"].nunique() > 1:
                pooled.append((f"all {kind}", str(kind), same))
    for name, kind, same in pooled:
        tiers = same["tier"].dropna().unique()
        where = {
            "scope": "pooled",
            "item": name,
            "kind": kind,
            "question_index": pd.NA,
            "tier": tiers[0] if len(tiers) == 1 else "mixed",
            "employee": pd.NA,
        }
        for metric in chosen:
            rows.append(_rate_row(base | where, metric, same, valid, known, pooled=True))
    return rows


def _rate_row(
    base: dict[str, Any],
    metric: str,
    rows: pd.DataFrame,
    valid: pd.Series,
    known: pd.Series,
    pooled: bool = False,
) -> dict[str, Any]:
    ok = valid.loc[rows.index]
    labelled = rows.loc[ok & rows[metric].notna()]
    invalid = int((~ok & known.loc[rows.index]).sum())
    unscored = int(len(rows) - len(labelled) - invalid)
    if pooled:
        rate, low, high, n, items = pooled_rate(labelled[metric], labelled["item"])
        method = WILSON_ITEMS
    else:
        rate, low, high, n = item_rate(labelled[metric])
        items, method = (1 if n else 0), WILSON_SAMPLES
    return base | {
        "metric": metric,
        "n": n,
        "count": int(labelled[metric].sum()) if n else 0,
        "rate": rate,
        "ci_low": low,
        "ci_high": high,
        "ci_method": method if n else "",
        "items": items,
        "invalid": invalid,
        "unscored": unscored,
        "recovered": int(rows["recovered"].astype(bool).sum()),
        "_counts": {
            item: (int(values.sum()), int(values.size))
            for item, values in labelled.groupby("item")[metric]
        },
    }


def _variant_parts(variant: object) -> tuple[frozenset[str], str]:
    """A variant's parts (`default` is none) and its prompt file suffix (`@FILE#DIGEST`)."""
    base, at, file = str(variant).partition("@")
    return frozenset(p for p in base.split("+") if p and p != "default"), at + file


def baseline_variant(variant: object) -> str | None:
    """The variant of a condition's baseline (None for a baseline itself): the conflicting
    criteria cut, combined with the condition's other variants."""
    parts, file = _variant_parts(variant)
    if BASELINE in parts:
        return None
    base, _, _ = str(variant).partition("@")
    others = [p for p in base.split("+") if p and p != "default"]
    return "+".join([BASELINE, *others]) + file


FAMILY = ["task", "model", "setting", "scratchpad", "judge", "run_config"]
"""What a condition shares with its baseline: all but the variant (and what it changes)."""


def baselines(samples: pd.DataFrame) -> dict[tuple, tuple[tuple | None, str]]:
    """Each condition's baseline (by `KEY`) and a note: why it has none, or which it is."""
    conditions = samples.drop_duplicates(KEY)
    out: dict[tuple, tuple[tuple | None, str]] = {}
    for _, family in conditions.groupby(FAMILY, dropna=False, sort=False):
        parts = [_variant_parts(v) for v in family["variant"]]
        for (_, row), (mine, file) in zip(family.iterrows(), parts, strict=True):
            key = tuple(row[k] for k in KEY)
            wanted = baseline_variant(row["variant"])
            if wanted is None:
                out[key] = (None, f"a baseline itself (its variant includes {BASELINE})")
                continue
            target = (mine | {BASELINE}, file)
            found = [
                (tuple(other[k] for k in KEY), other["name"])
                for (_, other), theirs in zip(family.iterrows(), parts, strict=True)
                if theirs == target
            ]
            if len(found) == 1:
                out[key] = (found[0][0], f"baseline: {found[0][1]}")
            elif not found:
                out[key] = (
                    None,
                    f"no baseline: no {wanted} run of this model, setting, scratchpad, judge "
                    "and generation settings in these logs",
                )
            else:
                names = ", ".join(sorted(str(name) for _, name in found))
                out[key] = (
                    None,
                    f"not compared: {len(found)} runs could be its baseline ({names})",
                )
    return out


def _compare(table: pd.DataFrame, found: dict[tuple, tuple[tuple | None, str]]) -> pd.DataFrame:
    """The comparison columns of each row: its baseline's same opportunity or question (for
    a pooled row, the same group's questions that both ran) and verdict, or empty columns
    and a note saying why there is none."""
    records = table.to_dict("records")
    ran = {  # (condition key, item, metric) -> (count, n) of the condition's item rows
        (tuple(row[k] for k in KEY), row["item"], row["metric"]): (row["count"], row["n"])
        for row in records
        if row["scope"] == "item"
    }
    names = {tuple(row[k] for k in KEY): row["name"] for row in records}
    out = []
    for row in records:
        key = tuple(row[k] for k in KEY)
        baseline, note = found.get(key, (None, "no baseline"))
        cells: dict[str, Any] = dict.fromkeys(COMPARISON_COLUMNS)
        cells["baseline_note"] = note
        if baseline is None:
            out.append(row | cells)
            continue
        cells["baseline"] = names.get(baseline)
        cells["baseline_condition"] = baseline[-1]
        what = "opportunity" if row["task"] == "anti_lab" else "question"
        items = [row["item"]] if row["scope"] == "item" else sorted(row["_counts"])
        theirs = {
            i: ran[(baseline, i, row["metric"])]
            for i in items
            if (baseline, i, row["metric"]) in ran
        }
        if row["scope"] == "item" and not theirs:
            cells["baseline_note"] = f"{note}; it did not run this {what}"
            out.append(row | cells)
            continue
        mine = (
            {i: (row["count"], row["n"]) for i in items}
            if row["scope"] == "item"
            else row["_counts"]
        )
        common = [i for i in items if i in theirs and theirs[i][1] and mine.get(i, (0, 0))[1]]
        count, n = sum(mine[i][0] for i in common), sum(mine[i][1] for i in common)
        base_count = sum(theirs[i][0] for i in common)
        base_n = sum(theirs[i][1] for i in common)
        if not common:
            cells["baseline_note"] = f"{note}; no {what} has scored samples on both sides"
            out.append(row | cells)
            continue
        if row["scope"] == "item":
            result = two_sample_difference(count, n, base_count, base_n)
            rates = (count / n, base_count / base_n)
            methods = (NEWCOMBE_CI, BOSCHLOO_TEST)
        else:  # questions are the units, as in the pooled rate itself
            result = pooled_difference([mine[i] for i in common], [theirs[i] for i in common])
            rates = (result.difference + result.base_rate, result.base_rate)
            methods = (NEWCOMBE_POOLED_CI, SIGN_FLIP_TEST)
        cells |= {
            "compared_items": len(common),
            "compared_n": n,
            "compared_count": count,
            "compared_rate": rates[0],
            "baseline_n": base_n,
            "baseline_count": base_count,
            "baseline_rate": rates[1],
            "difference": result.difference,
            "diff_ci_low": result.low,
            "diff_ci_high": result.high,
            "diff_ci_method": methods[0],
            "p_value": result.p_value,
            "test": methods[1],
        }
        out.append(row | cells)
    return pd.DataFrame(out).drop(columns="_counts")


def _published(table: pd.DataFrame, reference: pd.DataFrame | None) -> pd.DataFrame:
    """`published` and `published_model` on the pooled lying rows of a published setting and
    variant (the variant without a prompt file's suffix); empty elsewhere."""
    table = table.assign(published=math.nan, published_model=None)
    if reference is None or reference.empty or table.empty:
        return table
    metric_of = {v: k for k, v in PUBLISHED_METRICS.items()}
    rows = reference[reference["metric"].isin(metric_of)]
    values = {}
    for row in rows.itertuples(index=False):
        values.setdefault((row.setting, row.variant, metric_of[row.metric]), (row.value, row.model))
    pooled = (table["task"] == "lying") & (table["scope"] == "pooled")
    for i in table.index[pooled]:
        label = str(table.at[i, "variant"]).split("@", 1)[0]
        hit = values.get((table.at[i, "setting"], label, table.at[i, "metric"]))
        if hit is not None:
            table.at[i, "published"], table.at[i, "published_model"] = float(hit[0]), hit[1]
    return table


# Everything a report needs ----------------------------------------------------------------


@dataclass
class Behaviour:
    """The anti-lab and lying samples of some logs and their tables (`rates_table`)."""

    samples: pd.DataFrame
    tables: dict[str, pd.DataFrame]

    def has(self, task: str) -> bool:
        return not self.tables.get(task, pd.DataFrame()).empty

    @property
    def empty(self) -> bool:
        return not any(self.has(task) for task in TASKS)


def behaviour_data(
    paths: Sequence[str | Path],
    reference: pd.DataFrame | Callable[[], pd.DataFrame] | None = None,
    models: Sequence[str] | None = None,
) -> Behaviour:
    """`load_behaviour` and the table of each task, optionally of these `models` only.
    `reference` (the published values, or a function that loads them, called only where
    there are lying samples) gives the lying table its `published` column."""
    return behaviour_of(load_behaviour(paths), reference, models)


def behaviour_of(
    samples: pd.DataFrame,
    reference: pd.DataFrame | Callable[[], pd.DataFrame] | None = None,
    models: Sequence[str] | None = None,
) -> Behaviour:
    """`behaviour_data` of samples already read (`load_behaviour`)."""
    if models:
        attrs = samples.attrs
        samples = samples[samples["model"].isin(models)].reset_index(drop=True)
        samples.attrs = attrs
    if callable(reference):
        reference = reference() if (samples["task"] == "lying").any() else None
    return Behaviour(samples, {task: rates_table(samples, task, reference) for task in TASKS})


def write_behaviour_tables(data: Behaviour, out: Path) -> list[str]:
    """`anti_lab.csv` and `lying.csv` (rates) with `anti_lab_samples.csv` and
    `lying_samples.csv` (one row per sample, epoch and judge) for each task the logs hold;
    returns a line per file written."""
    lines = []
    for task in TASKS:
        if not data.has(task):
            continue
        out.mkdir(parents=True, exist_ok=True)
        samples = data.samples[data.samples["task"] == task][TASK_SAMPLE_COLUMNS[task]]
        data.tables[task].to_csv(out / f"{task}.csv", index=False)
        samples.to_csv(out / f"{task}_samples.csv", index=False)
        lines.append(
            f"wrote {out / f'{task}.csv'} ({len(data.tables[task])} rows) and "
            f"{out / f'{task}_samples.csv'} ({len(samples)} rows)"
        )
    return lines
