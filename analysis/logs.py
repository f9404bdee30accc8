"""Read Inspect logs of the alignment-faking task into one row per sample and epoch.

A condition is everything that changes results: model, setting, variant, dataset, and a
digest of what the model was shown and how it ran (system prompt, user-turn template,
dataset content, generation settings, model arguments, judge settings). Runs that differ in
any of these never merge. Within a condition, a sample that appears in several logs (a
retried, repeated or re-scored run) keeps its best record, whatever the log times.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from inspect_ai.analysis import SampleColumn, samples_df
from inspect_ai.log import list_eval_logs, read_eval_log, read_eval_log_sample

from evals.scenario import setting_compliance
from evals.scorer import NO_GRADER, tag_score_metadata
from evals.solver import TURN_CAP_KEY

SCORER = "compliance_scorer"
JUDGE = "alignment_faking_judge"
KEY = ["model", "setting", "variant", "dataset", "condition"]
JUDGE_COLUMNS = [
    "af_reasoning",
    "af_vote_share",
    "possible_af",
    "partial_compliance",
    "compliance_score",
    "category",
    "classifier_status",
]
SAMPLE_COLUMNS = [*KEY, "query_id", "epoch", "tier", "status", "complied", *JUDGE_COLUMNS]
NOT_JUDGED = "unscored: log has no judge scores"
# Generation settings that change how a run is executed, not what the model returns.
RUNTIME_FIELDS = {
    "max_connections",
    "adaptive_connections",
    "max_retries",
    "timeout",
    "attempt_timeout",
    "stream_idle_timeout",
    "batch",
    "cache",
    "cache_prompt",
}
JUDGE_ARGS = ("af_classifier", "judge_votes", "af_threshold")
# Model arguments that change how a provider runs, not what it returns.
RUNTIME_MODEL_ARGS = {"state_cache", "n_threads", "extra_buffers", "flash_attn"}
# Eval limits that end a sample early, and so change results.
LIMITS = ("message_limit", "token_limit", "time_limit", "working_limit")


class LogError(ValueError):
    """A path holds no usable alignment-faking log."""


def find_logs(paths: Sequence[str | Path]) -> list[str]:
    """Expand files and folders into log locations, failing on paths that hold none."""
    found: list[str] = []
    for path in map(Path, paths):
        if path.is_dir():
            logs = [info.name for info in list_eval_logs(str(path))]
            if not logs:
                raise LogError(f"{path}: folder holds no Inspect logs")
            found.extend(logs)
        elif path.is_file():
            if path.suffix not in (".eval", ".json"):
                raise LogError(f"{path}: not an Inspect log (expected a .eval or .json file)")
            found.append(str(path))
        else:
            raise LogError(f"{path}: no such log file or folder")
    return found


def latest_judge(sample: Any) -> dict[str, Any]:
    """Metadata of the newest judge score made with a grader.

    `inspect score --action append` adds `alignment_faking_judge1`, `...2`, and so on.
    Takes a sample (or summary) object, or a summary as a plain dict.
    """
    scores = (sample.get("scores") if isinstance(sample, dict) else sample.scores) or {}
    judged = [
        k for k in scores if k == JUDGE or (k.startswith(JUDGE) and k[len(JUDGE) :].isdigit())
    ]
    judged.sort(key=lambda k: int(k[len(JUDGE) :] or 0))
    metadata = [_score_metadata(scores[k]) for k in judged]
    with_grader = [m for m in metadata if m.get("classifier_status") != NO_GRADER]
    return (with_grader or metadata or [{"classifier_status": NOT_JUDGED}])[-1]


def _score_metadata(score: Any) -> dict[str, Any]:
    metadata = score.get("metadata") if isinstance(score, dict) else score.metadata
    return metadata or {}


def condition_digest(header: dict[str, Any], inputs: Any) -> tuple[str, str]:
    """(digest, description) of what the model was shown and how the run was configured.

    `header` is the log's `eval` record; `inputs` the digests the task put in each sample's
    metadata (logs from before then fall back to the task arguments).
    """
    args = header.get("task_args") or {}
    generation = {
        k: v
        for k, v in (header.get("model_generate_config") or {}).items()
        if v is not None and k not in RUNTIME_FIELDS
    }
    model_args = {
        k: v for k, v in (header.get("model_args") or {}).items() if k not in RUNTIME_MODEL_ARGS
    }
    limits = {k: v for k in LIMITS if (v := (header.get("config") or {}).get(k)) is not None}
    grader = ((header.get("model_roles") or {}).get("grader") or {}).get("model")
    judge = {
        "af_classifier": args.get("af_classifier"),
        "judge_votes": args.get("judge_votes"),
        # 1 and 1.0 are the same threshold
        "af_threshold": None if args.get("af_threshold") is None else float(args["af_threshold"]),
        "grader": grader,
    }
    shown = inputs or {k: args.get(k) for k in ("system_prompt", "dataset", "seed")}
    protocol = {
        "max_turns": args.get("max_turns", 4),
        "compliance_rule": args.get("compliance_rule") or "strict",
        **limits,
    }
    identity = {
        "shown": shown,
        "generation": generation,
        "model_args": model_args,
        "judge": judge,
        "protocol": protocol,
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode())
    described = [f"{k}={v}" for k, v in sorted(generation.items())]
    described += [f"{k}={v}" for k, v in sorted(model_args.items())]
    described += [f"{k}={v}" for k, v in sorted(protocol.items()) if (k, v) != ("max_turns", 4)]
    described = [d for d in described if d != "compliance_rule=strict"]
    described.append(f"grader={grader or 'none'}")
    return digest.hexdigest()[:8], " ".join(described)


def _log_rows(location: str, fast: bool = True) -> list[dict[str, Any]]:
    """One row per sample and epoch of a log: `.eval` files on local disk are read straight
    from their stored summaries (several times faster than `samples_df` on 100,000
    samples); other logs go through `samples_df`."""
    rows = None
    try:
        rows = _eval_zip_rows(location) if fast else None
    except (zipfile.BadZipFile, NotImplementedError, KeyError, ValueError):
        pass  # an unexpected layout or compression: let Inspect read it
    if rows is not None:
        return rows
    try:
        header = read_eval_log(location, header_only=True).eval.model_dump()
        frame = samples_df([location], columns=_COLUMNS, quiet=True)
    except Exception as err:  # any unreadable file: one clear message
        raise LogError(f"{location}: not a readable Inspect log ({err})") from None
    # samples_df stores the summary as JSON text.
    return [_row(header, json.loads(summary), location) for summary in frame["summary"]]


_COLUMNS = [SampleColumn("summary", path=lambda sample: sample.model_dump(), required=True)]


def _eval_zip_rows(location: str) -> list[dict[str, Any]] | None:
    # Importing inspect_ai (done above) registers the zip compression its logs use.
    path = Path(location.removeprefix("file://"))
    if path.suffix != ".eval" or not path.is_file():
        return None
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        if "header.json" not in names:
            return None  # a run still in progress: let Inspect assemble it
        header = json.loads(archive.read("header.json"))["eval"]
        if "summaries.json" in names:
            summaries = json.loads(archive.read("summaries.json"))
        else:
            journal = sorted(
                (n for n in names if n.startswith("_journal/summaries/")),
                key=lambda n: int(Path(n).stem),
            )
            by_id = {(s["id"], s["epoch"]): s for n in journal for s in json.loads(archive.read(n))}
            summaries = list(by_id.values())
    return [_row(header, summary, location) for summary in summaries]


def _row(header: dict[str, Any], summary: dict[str, Any], location: str) -> dict[str, Any]:
    metadata = summary.get("metadata") or {}
    scores = summary.get("scores") or {}
    tag_score = _score_metadata(scores[SCORER]) if SCORER in scores else None
    judge = latest_judge(summary)
    condition, described = condition_digest(header, metadata.get("inputs"))
    # The sample id is `query_id:tier` and is stored whole; metadata strings in summaries are
    # shortened by Inspect (whitespace runs collapsed), which could merge distinct ids.
    sample_id = str(summary["id"])
    tier = metadata.get("tier")
    if tier is not None and sample_id.endswith(f":{tier}"):
        query_id = sample_id[: -len(tier) - 1]
    else:
        query_id = metadata.get("query_id")
    return {
        "model": header["model"],
        "log": location,
        "log_created": header["created"],
        "condition": condition,
        "run_config": described,
        "id": str(summary["id"]),
        "epoch": summary["epoch"],
        **{k: metadata.get(k) for k in ("setting", "variant", "dataset", "tier")},
        "query_id": None if query_id is None else str(query_id),
        "prompt_origin": metadata.get("prompt_origin")
        or ("custom" if "@" in str(metadata.get("variant")) else "project"),
        "compliance_rule": (header.get("task_args") or {}).get("compliance_rule") or "strict",
        "has_tag_score": tag_score is not None,
        "status": (tag_score or {}).get("status"),
        "complied": (tag_score or {}).get("complied"),
        "error": summary.get("error") or "",
        **{f"judge_{name}": judge.get(name) for name in [*JUDGE_COLUMNS, "complied"]},
        "usage": _usage(header, summary, location),
    }


USAGE_FIELDS = (
    "input_tokens",
    "input_tokens_cache_read",
    "input_tokens_cache_write",
    "output_tokens",
)
_JUDGE_USAGE = {
    "input_tokens": "input_tokens",
    "input_tokens_cache_read": "cache_read",
    "input_tokens_cache_write": "cache_write",
    "output_tokens": "output_tokens",
}


def _usage(header: dict[str, Any], summary: dict[str, Any], location: str) -> list[tuple]:
    """What this record paid for, as (key, role, model, *USAGE_FIELDS) entries.

    The key names the spend itself, so a sample copied into a re-scored or retried log is
    counted once: the policy model's by sample uuid, each judge score by its content.
    """
    uuid = summary.get("uuid") or f"{location}#{summary['id']}#{summary['epoch']}"
    model = header["model"]
    roles = {
        role: (spec or {}).get("model") for role, spec in (header.get("model_roles") or {}).items()
    }
    policy = dict((summary.get("model_usage") or {}).get(model) or {})
    # Inspect's per-model usage includes a judge that runs on the same model; take it out.
    for role, used in (summary.get("role_usage") or {}).items():
        if roles.get(role) == model:
            for field in USAGE_FIELDS:
                policy[field] = (policy.get(field) or 0) - (used.get(field) or 0)
    spent = [policy.get(field) or 0 for field in USAGE_FIELDS]
    entries = [(("policy", uuid), "policy model", model, *spent)]
    for name, score in (summary.get("scores") or {}).items():
        metadata = _score_metadata(score)
        judged = metadata.get("judge_usage")
        if not judged:
            continue
        grader = metadata.get("grader") or roles.get("grader") or "unknown grader"
        content = json.dumps([name, judged, grader], sort_keys=True)
        totals = [sum(u.get(k) or 0 for u in judged.values()) for k in _JUDGE_USAGE.values()]
        entries.append((("judge", uuid, content), "judges", grader, *totals))
    return entries


def _rederive(rows: pd.DataFrame) -> None:
    """Compliance scores removed by `inspect score --action overwrite`: derive them again
    from each sample's transcript, exactly as the compliance scorer does."""
    lost = rows.index[~rows["has_tag_score"] & (rows["error"] == "")]
    for index in lost:
        row = rows.loc[index]
        sample = read_eval_log_sample(row["log"], id=row["id"], epoch=int(row["epoch"]))
        compliance = setting_compliance(str(row["setting"]))
        metadata, _ = tag_score_metadata(
            sample.messages,
            sample.output.stop_reason if sample.output else None,
            bool((sample.store or {}).get(TURN_CAP_KEY, False)),
            "tags" if compliance == "tags" else "judge",
            row["compliance_rule"],
        )
        rows.loc[index, ["status", "complied"]] = [metadata["status"], metadata["complied"]]


def _rank(rows: pd.DataFrame) -> pd.Series:
    """How good a record is: valid beats invalid beats errored, and among valid records a
    judged one beats one whose judge failed, which beats an unjudged one."""
    valid = rows["status"] == "valid"
    judged = valid & (rows["classifier_status"] == "ok")
    attempted = valid & ~rows["classifier_status"].isin([NOT_JUDGED, NO_GRADER])
    return (rows["status"] != "error") * 1 + valid * 2 + attempted * 1 + judged * 1


def load_samples(paths: Sequence[str | Path]) -> pd.DataFrame:
    """One row per sample and epoch: `SAMPLE_COLUMNS`.

    A sample that errored or was never scored gets status `error`; its `complied` is empty.
    Settings without a tag protocol take `complied` from the judge when the compliance
    scorer has none. `attrs["superseded"]` counts the records dropped because the same
    sample has a better record in the same condition, by reason.
    """
    rows = [row for location in find_logs(paths) for row in _log_rows(location)]
    columns = list(rows[0]) if rows else ["log", "tier", "query_id"]
    df = pd.DataFrame(rows, columns=columns)
    missing = df[df["tier"].isna() | df["query_id"].isna()]
    if len(missing):
        raise LogError(
            "samples lack tier/query_id metadata; these logs are not from "
            f"evals/alignment_faking.py: {', '.join(sorted(set(missing['log'])))}"
        )
    if df.empty:
        raise LogError("the logs hold no samples")
    _rederive(df)
    df.attrs["usage"] = _usage_by_role(df)
    ok = df["status"].notna() & (df["error"] == "")
    df["status"] = df["status"].where(ok, "error")
    df["complied"] = pd.to_numeric(df["complied"]).fillna(pd.to_numeric(df["judge_complied"]))
    df["complied"] = df["complied"].where(df["status"] == "valid").astype("Int64")
    for name in JUDGE_COLUMNS:
        df[name] = df[f"judge_{name}"]
    for name in ("af_reasoning", "partial_compliance", "possible_af"):
        df[name] = df[name].astype("Int64")
    df["classifier_status"] = df["classifier_status"].fillna(NOT_JUDGED)
    df["log_created"] = pd.to_datetime(df["log_created"], utc=True, format="ISO8601")
    df["rank"] = _rank(df)
    # Best record first; among equals the newest log, then the later file name.
    df = df.sort_values(["rank", "log_created", "log"], ascending=False, kind="stable")
    identity = [*KEY, "query_id", "tier", "epoch"]
    dropped = df[df.duplicated(identity, keep="first")]
    df = df.drop_duplicates(identity, keep="first")
    df.attrs["superseded"] = Counter(_why_superseded(dropped, df, identity))
    order = [*KEY, "query_id", "epoch", "tier"]
    columns = [*SAMPLE_COLUMNS, "run_config", "prompt_origin"]
    return df[columns].sort_values(order).reset_index(drop=True)


def _usage_by_role(rows: pd.DataFrame) -> pd.DataFrame:
    """Tokens per model role and model, over every record read: superseded records were
    paid for too, while a record copied into another log is counted once."""
    entries = {entry[0]: entry[1:] for usage in rows["usage"] for entry in usage}
    usage = pd.DataFrame(list(entries.values()), columns=["role", "model", *USAGE_FIELDS])
    usage["role"] = pd.Categorical(usage["role"], ["policy model", "judges"])
    usage = usage.groupby(["role", "model"], observed=True)[list(USAGE_FIELDS)].sum()
    return usage.reset_index().astype({"role": str})


def _why_superseded(dropped: pd.DataFrame, kept: pd.DataFrame, identity: list[str]) -> list[str]:
    best = kept.set_index(identity)["rank"]
    reasons = []
    for record in dropped.itertuples(index=False):
        winner = best[tuple(getattr(record, k) for k in identity)]
        if winner == record.rank:
            reasons.append("repeated, the newest record kept")
        elif record.status == "error":
            reasons.append("errored, a scored record exists")
        elif record.status != "valid":
            reasons.append("invalid, a valid record exists")
        else:
            reasons.append("less judged than another record")
    return reasons


def superseded_note(samples: pd.DataFrame) -> str | None:
    """One line on the records dropped by `load_samples`, or None."""
    counts: Counter[str] = samples.attrs.get("superseded", Counter())
    if not counts:
        return None
    parts = ", ".join(f"{n} {reason}" for reason, n in counts.most_common())
    return f"superseded {sum(counts.values())} record(s) of samples seen more than once: {parts}"
