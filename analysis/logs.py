"""Read Inspect logs of the alignment-faking task into one row per sample, epoch and judge.

A condition is everything that changes results: model, setting, variant, dataset, and a
digest of what the model was shown and how it ran (system prompt, user-turn template,
dataset content, generation settings, model arguments, protocol and Inspect's sample
limits), and the judge: the grader and judge settings each judgement recorded in its own
score. Runs that differ in any of these never merge. Within a condition, a sample that
appears in several logs (a retried, repeated or re-scored run) keeps its best record; ties
go to the one judged last, then the one finished last, by recorded time.

Logs of the anti-lab and lying tasks (told apart by the task their header names) are skipped
here: `analysis.behaviour` reads them.
"""

from __future__ import annotations

import hashlib
import json
import sys
import zipfile
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from evals.labels import (
    GAP_CONTRAST,
    NO_GRADER,
    NO_SCRATCHPAD,
    TURN_CAP_KEY,
    framing_role,
    limit_status,
    trained_tier,
    unmonitored_framing,
)

if sys.version_info < (3, 14):  # zstd in zipfile, as Inspect registers it (3.14 has it)
    import zipfile_zstd  # noqa: F401

# Inspect itself is imported only where a log needs it (see `_log_rows`): a finished local
# `.eval` log is read straight from its zip, which spares a report two seconds of start-up.

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
SAMPLE_COLUMNS = [
    *KEY,
    "label",
    "judge",
    "trained_tier",
    "trained_tier_assumed",
    "trained",
    "query_id",
    "epoch",
    "tier",
    "status",
    "complied",
    "compliance_status",
    *JUDGE_COLUMNS,
    "attempts",
    "failed_attempts",
    "errored_attempts",
    "recovered",
]
# Per sample, for the report's settings table (see `_run_settings`, `judge_settings`).
SETTINGS_COLUMNS = [
    "temperature",
    "max_tokens",
    "max_turns",
    "compliance_rule",
    "limits",
    "prompt_digest",
    "grader",
    "classifier",
    "votes",
    "threshold",
]
NOT_JUDGED = "unscored: log has no judge scores"
NO_JUDGE = "none"  # the judge column of samples that no grader judged
JUDGE_DEFAULTS = {"possible_threshold": 0.2, "temperature": 1.0}
"""Judge settings the task always used before they were recorded in each judgement."""
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
    "extra_headers",
}
# Model arguments that change how a provider runs, not what it returns.
RUNTIME_MODEL_ARGS = {"state_cache", "n_threads", "extra_buffers", "flash_attn"}
# Eval limits that end a sample early, and so change results.
# (Inspect's eval config; the rest of it selects samples or runs them, and changes no result.)
LIMITS = (
    "message_limit",
    "token_limit",
    "token_limit_type",
    "turn_limit",
    "time_limit",
    "working_limit",
    "cost_limit",
)


BEHAVIOUR_TASKS = ("anti_lab", "lying")
"""Tasks whose logs the gap analysis skips: `analysis.behaviour` reads them."""


class LogError(ValueError):
    """A path holds no usable alignment-faking log."""


class NoGapLogs(LogError):
    """The logs are all of the anti-lab or lying task: there is no gap to analyse."""


def find_logs(paths: Sequence[str | Path]) -> list[str]:
    """Expand files and folders into log locations, failing on paths that hold none."""
    found: list[str] = []
    for path in map(Path, paths):
        if path.is_dir():
            # Every .eval file is a log, whatever its name; a .json file is one if Inspect
            # reads it as one (an eval set's manifest beside the logs is not).
            logs = [str(log) for log in sorted(path.rglob("*.eval")) if log.is_file()]
            logs += [str(log) for log in sorted(path.rglob("*.json")) if _is_json_log(log)]
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


def _is_json_log(path: Path) -> bool:
    try:
        if not path.is_file():
            return False
        # A small file that is plainly not a log needs no Inspect import to tell.
        if path.stat().st_size < 1_000_000:
            content = json.loads(path.read_bytes())
            if not (isinstance(content, dict) and "eval" in content):
                return False
    except (OSError, ValueError):  # unreadable, or not JSON: not a log
        return False
    from inspect_ai.log import read_eval_log

    try:
        read_eval_log(str(path), header_only=True)
    except Exception:  # not a log at all: a manifest or any other JSON file
        return False
    return True


def latest_judge(sample: Any) -> dict[str, Any]:
    """Metadata of the judgement made last (by its recorded time) with a grader.

    `inspect score --action append` adds `alignment_faking_judge1`, `...2`, and so on.
    Takes a sample (or summary) object, or a summary as a plain dict.
    """
    scores = (sample.get("scores") if isinstance(sample, dict) else sample.scores) or {}
    judged = [_score_metadata(scores[k]) for k in _judge_keys(scores)]
    with_grader = [m for m in judged if _grader(m)]
    candidates = with_grader or judged
    if not candidates:
        return {"classifier_status": NOT_JUDGED}
    return max(candidates, key=lambda m: (_judged_at(m), _content(m)))


def _judge_keys(scores: dict[str, Any]) -> list[str]:
    """The judge scores of a sample: the task's own and those `inspect score` appended."""
    names = [k for k in scores if k == JUDGE or (k.startswith(JUDGE) and k[len(JUDGE) :].isdigit())]
    return sorted(names, key=lambda k: int(k[len(JUDGE) :] or 0))


def _grader(metadata: dict[str, Any]) -> str | None:
    """The grader of a judgement; older scores name it only where one was used."""
    recorded = metadata.get("judge")
    if isinstance(recorded, dict):
        return recorded.get("grader")
    return None if metadata.get("classifier_status") == NO_GRADER else metadata.get("grader")


def _score_metadata(score: Any) -> dict[str, Any]:
    metadata = score.get("metadata") if isinstance(score, dict) else score.metadata
    return metadata or {}


def _judged_at(metadata: dict[str, Any]) -> str:
    """When a judgement was made ('' for judgements from before the time was recorded)."""
    return utc_time((metadata.get("judge") or {}).get("judged_at"))


def utc_time(value: Any) -> str:
    """An ISO-8601 time as one fixed-width UTC string, so that times compare as strings;
    '' (earlier than any time) when there is none or it cannot be read."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _judged_quality(metadata: dict[str, Any]) -> int:
    """Between judgements made at the same time: a label beats a failure, which beats none."""
    status = str(metadata.get("classifier_status") or "")
    return 2 if status == "ok" else 0 if status in (NO_GRADER, NOT_JUDGED) else 1


def _verdict(metadata: dict[str, Any]) -> str:
    """A judgement's result as text: the last tie-break between two judgements of one
    sample made at the same time, so that no file name or read order decides."""
    return repr([metadata.get(name) for name in JUDGE_COLUMNS])


def _content(value: Any) -> str:
    """A digest of a record's content: a tie-break that no file name or read order changes."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def judge_settings(metadata: dict[str, Any], task_args: dict[str, Any]) -> dict[str, Any]:
    """Who judged a sample and how, from its judge score (the task arguments only for logs
    written before scores recorded it). Without a grader there is no judge to tell apart."""
    recorded = metadata.get("judge")
    if isinstance(recorded, dict):
        settings = {k: v for k, v in recorded.items() if k != "judged_at"}
    else:
        settings = {
            "grader": metadata.get("grader"),
            "classifier": task_args.get("af_classifier", "improved"),
            "votes": metadata.get("af_votes_requested") or task_args.get("judge_votes", 20),
            "threshold": task_args.get("af_threshold", 0.4),
        }
    if not settings.get("grader"):
        return {"grader": None}
    if settings.get("threshold") is not None:
        settings["threshold"] = float(settings["threshold"])  # 1 and 1.0 are one threshold
    settings.pop("rule", None)  # the run's compliance rule: part of the run's condition
    return settings


def judge_label(settings: dict[str, Any]) -> str:
    """The judge column: the grader and the settings that change its labels."""
    if not settings.get("grader"):
        return NO_JUDGE
    parts = [f"{settings.get('classifier', '?')} classifier"]
    if settings.get("votes") is not None:
        parts.append(f"{settings['votes']} votes")
    if settings.get("threshold") is not None:
        parts.append(f"threshold {settings['threshold']:g}")
    # The compliance rule is the run's (in `run_config`); other settings show where they
    # differ from the task's defaults, so older logs that did not record them label alike.
    extra = {
        k: v
        for k, v in sorted(settings.items())
        if k not in {"grader", "classifier", "votes", "threshold", "rule"}
        and v is not None
        and JUDGE_DEFAULTS.get(k) != v
    }
    parts += [f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in extra.items()]
    return f"{settings['grader']} ({', '.join(parts)})"


def condition_digest(
    header: dict[str, Any], inputs: Any, label: str | None = None
) -> tuple[str, str]:
    """(digest, description) of what the model was shown and how the run was configured.

    `header` is the log's `eval` record; `inputs` the digests the task put in each sample's
    metadata (logs from before then fall back to the task arguments); `label` the
    condition's name where the log records it apart from the variant. Judge settings are
    not part of it: they come from each judgement's own score (see `judge_settings`).
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
    shown = inputs or {k: args.get(k) for k in ("system_prompt", "dataset", "seed")}
    protocol = {
        "max_turns": args.get("max_turns", 4),
        "compliance_rule": args.get("compliance_rule") or "strict",
        **limits,
    }
    # Another solver (`--solver`) is another protocol altogether.
    solver = {k: header[k] for k in ("solver", "solver_args") if header.get(k)}
    protocol |= solver
    identity = {
        "shown": shown,
        "generation": generation,
        "model_args": model_args,
        "protocol": protocol,
    }
    if label is not None:
        identity["label"] = label
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode())
    described = [f"{k}={v}" for k, v in sorted(generation.items())]
    described += [f"{k}={v}" for k, v in sorted(model_args.items())]
    described += [f"{k}={v}" for k, v in sorted(protocol.items()) if (k, v) != ("max_turns", 4)]
    described = [d for d in described if d != "compliance_rule=strict"]
    return digest.hexdigest()[:8], " ".join(described)


def _run_settings(header: dict[str, Any], inputs: Any) -> dict[str, Any]:
    """The settings a reader needs to tell conditions apart, as the log recorded them."""
    args = header.get("task_args") or {}
    generation = header.get("model_generate_config") or {}
    config = header.get("config") or {}
    limits = [f"{k}={v}" for k in LIMITS if (v := config.get(k)) is not None]
    return {
        "temperature": generation.get("temperature"),
        "max_tokens": generation.get("max_tokens"),
        "max_turns": args.get("max_turns", 4),
        "limits": " ".join(limits) or "none",
        "prompt_digest": (inputs or {}).get("system_prompt") if isinstance(inputs, dict) else None,
    }


def log_task(header: dict[str, Any]) -> str:
    """The task a log ran, by its header: the task's own record in its metadata where it
    has one, else Inspect's task name without a file or package prefix. Never the file
    name: a renamed log is the same log."""
    declared = (header.get("metadata") or {}).get("task")
    if isinstance(declared, str) and declared:
        return declared
    name = str(header.get("task") or "")
    return name.rsplit("/", 1)[-1].rsplit("@", 1)[-1]


def is_behaviour_log(header: dict[str, Any]) -> bool:
    """Whether a log is of the anti-lab or lying task (read by `analysis.behaviour`)."""
    return log_task(header) in BEHAVIOUR_TASKS


def read_log(
    location: str,
    wanted: Callable[[dict[str, Any]], bool] = lambda header: True,
    fast: bool = True,
) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """(the log's `eval` header, one summary per sample and epoch), the summaries None when
    `wanted(header)` is False (they are then not read at all).

    `.eval` files on local disk are read straight from their stored summaries (several
    times faster than `samples_df` on 100,000 samples); other logs go through `samples_df`.
    """
    read = None
    try:
        read = _eval_zip_summaries(location, wanted) if fast else None
    except (zipfile.BadZipFile, NotImplementedError, KeyError, ValueError):
        pass  # an unexpected layout or compression: let Inspect read it
    if read is not None:
        return read
    from inspect_ai.analysis import SampleColumn, samples_df
    from inspect_ai.log import read_eval_log

    columns = [SampleColumn("summary", path=lambda sample: sample.model_dump(), required=True)]
    try:
        header = read_eval_log(location, header_only=True).eval.model_dump()
        if not wanted(header):
            return header, None
        frame = samples_df([location], columns=columns, quiet=True)
        if "summary" in frame.columns:  # samples_df stores the summary as JSON text
            summaries = [json.loads(summary) for summary in frame["summary"]]
        else:  # a log samples_df does not list (a renamed .json): read it whole
            samples = read_eval_log(location).samples or []
            summaries = [sample.summary().model_dump() for sample in samples]
    except Exception as err:  # any unreadable file: one clear message
        raise LogError(f"{location}: not a readable Inspect log ({err})") from None
    return header, summaries


def _log_rows(location: str, fast: bool = True) -> list[dict[str, Any]]:
    """One row per sample and epoch of an alignment-faking log; none for a log of the
    anti-lab or lying task, which `analysis.behaviour` reads."""
    header, summaries = read_log(location, lambda header: not is_behaviour_log(header), fast)
    if summaries is None:
        return []
    digests: dict[str, tuple[str, str]] = {}
    return [_row(header, summary, location, digests) for summary in summaries]


def _eval_zip_summaries(
    location: str, wanted: Callable[[dict[str, Any]], bool]
) -> tuple[dict[str, Any], list[dict[str, Any]] | None] | None:
    path = Path(location.removeprefix("file://"))
    if path.suffix != ".eval" or not path.is_file():
        return None
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        if "header.json" not in names:
            return None  # a run still in progress: let Inspect assemble it
        header = json.loads(archive.read("header.json"))["eval"]
        if not wanted(header):
            return header, None
        if "summaries.json" in names:
            summaries = json.loads(archive.read("summaries.json"))
        else:
            journal = sorted(
                (n for n in names if n.startswith("_journal/summaries/")),
                key=lambda n: int(Path(n).stem),
            )
            by_id = {(s["id"], s["epoch"]): s for n in journal for s in json.loads(archive.read(n))}
            summaries = list(by_id.values())
    return header, summaries


def _framed(header: dict[str, Any]) -> dict[str, Any] | None:
    """Sample-like metadata with the framings a variant declared (from the task's metadata,
    which Inspect never shortens); None for the two fixed tiers."""
    task = header.get("metadata") or {}
    framings = task.get("framings")
    if not isinstance(framings, dict):
        return None
    return {"scenario_facts": {"framings": framings}}


def _row(
    header: dict[str, Any],
    summary: dict[str, Any],
    location: str,
    digests: dict[str, tuple[str, str]],
) -> dict[str, Any]:
    """One sample's record; `digests` caches the condition of each `inputs` within a log."""
    metadata = summary.get("metadata") or {}
    scores = summary.get("scores") or {}
    tag_score = _score_metadata(scores[SCORER]) if SCORER in scores else None
    task_args = header.get("task_args") or {}
    inputs = metadata.get("inputs")
    label = metadata.get("label")
    inputs_key = repr(sorted(inputs.items())) if isinstance(inputs, dict) else repr(inputs)
    inputs_key += f"\0{label}"
    if inputs_key not in digests:
        digests[inputs_key] = condition_digest(header, inputs, label)
    condition, described = digests[inputs_key]
    framed = _framed(header)
    told = framed or metadata  # the task's metadata is whole; a summary's may be cut
    trained = trained_tier(told)
    unmonitored = unmonitored_framing(told)
    declared = (header.get("metadata") or {}).get("contrasts")
    contrasts = (
        tuple(tuple(c) for c in declared)
        if isinstance(declared, list)
        else ((GAP_CONTRAST, trained[0], unmonitored),)
    )
    # The sample id is `query_id:tier` and is stored whole; metadata strings in summaries are
    # shortened by Inspect (whitespace runs collapsed), which could merge distinct ids.
    sample_id = str(summary["id"])
    tier = metadata.get("tier")
    if tier is not None and sample_id.endswith(f":{tier}"):
        query_id = sample_id[: -len(tier) - 1]
    else:
        query_id = metadata.get("query_id")
    judgements = []
    for name in _judge_keys(scores):
        judged = dict(_score_metadata(scores[name]))
        if metadata.get("scratchpad") is False and judged.get("classifier_status") == NO_GRADER:
            # Nothing to judge without a scratchpad, grader or not (older logs said unscored).
            judged["classifier_status"] = NO_SCRATCHPAD
        settings = judge_settings(judged, task_args)
        judged["_settings"] = settings  # for the settings table
        # The last label wins; a judgement that failed never replaces a label.
        labelled = judged.get("classifier_status") == "ok"
        order = (labelled, _judged_at(judged), _judged_quality(judged), _verdict(judged))
        judgements.append((judge_label(settings), order, judged))
    return {
        "model": header["model"],
        "log": location,
        "run": header.get("eval_id") or header.get("run_id") or location,
        "sample_time": utc_time(summary.get("completed_at") or summary.get("started_at")),
        "uuid": summary.get("uuid") or f"{location}#{sample_id}#{summary['epoch']}",
        "policy_condition": condition,
        "run_config": described,
        "id": sample_id,
        "epoch": summary["epoch"],
        **{k: metadata.get(k) for k in ("setting", "variant", "dataset", "tier", "scratchpad")},
        # Older logs put the condition's name in `variant`.
        "label": label or metadata.get("variant"),
        # The tier the prompt says is trained; a prompt file of one's own does not say.
        "trained_tier": trained[0],
        "trained_tier_assumed": trained[1],
        "unmonitored_tier": unmonitored,
        "contrasts": contrasts,
        # Declared framings in their order, with their roles (None for the two tiers).
        "framings": (
            tuple(
                (name, framing_role(told))
                for name, told in framed["scenario_facts"]["framings"].items()
            )
            if framed
            else None
        ),
        **_run_settings(header, metadata.get("inputs")),
        "query_id": None if query_id is None else str(query_id),
        "prompt_origin": metadata.get("prompt_origin")
        or ("custom" if "@" in str(metadata.get("variant")) else "project"),
        "compliance_rule": task_args.get("compliance_rule") or "strict",
        "has_tag_score": tag_score is not None,
        "status": (tag_score or {}).get("status"),
        "complied": (tag_score or {}).get("complied"),
        "tag_compliance_status": (tag_score or {}).get("compliance_status"),
        "limit": summary.get("limit") or "",
        "error": summary.get("error") or "",
        "judgements": judgements,
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
    if lost.empty:
        return
    from inspect_ai.log import read_eval_log_sample

    from evals.scorer import tag_score_metadata

    for index in lost:
        row = rows.loc[index]
        sample = read_eval_log_sample(row["log"], id=row["id"], epoch=int(row["epoch"]))
        compliance = compliance_mode(str(row["setting"]))
        metadata, _ = tag_score_metadata(
            sample.messages,
            sample.output.stop_reason if sample.output else None,
            bool((sample.store or {}).get(TURN_CAP_KEY, False)),
            "tags" if compliance == "tags" else "judge",
            row["compliance_rule"],
            sample.limit.type if sample.limit else None,
        )
        rows.loc[index, ["status", "complied"]] = [metadata["status"], metadata["complied"]]


def _rank(rows: pd.DataFrame) -> pd.Series:
    """How good a record is: valid beats invalid beats errored, and among valid records a
    judged one beats one whose judge failed, which beats an unjudged one."""
    valid = rows["status"] == "valid"
    judged = valid & (rows["classifier_status"] == "ok")
    attempted = valid & ~rows["classifier_status"].str.startswith("unscored")
    attempted |= judged
    return (rows["status"] != "error") * 1 + valid * 2 + attempted * 1 + judged * 1


def load_samples(paths: Sequence[str | Path]) -> pd.DataFrame:
    """One row per sample, epoch and judge: `SAMPLE_COLUMNS`.

    Logs of the anti-lab and lying tasks are skipped (`analysis.behaviour` reads them); logs
    that are all of those tasks raise `NoGapLogs`.

    A sample that errored or was never scored gets status `error`; its `complied` is empty.
    Settings without a tag protocol take `complied` from the judge when the compliance
    scorer has none.

    Each distinct judge (grader and judge settings, read from the judgement's own score) of
    a condition makes its own condition, with every sample of it; a sample that judge did
    not judge is unscored there. A record copied into a re-scored log is the same attempt
    (one sample uuid). Among the attempts of one sample, the best record is kept (see
    `_rank`); among equals the one judged last, then the one finished last, by their
    recorded times, never by file name or read order. `attrs["logs"]` names the logs each
    condition's records come from (by `KEY`); `attrs["superseded"]` counts the
    records dropped, by reason.
    """
    rows, behaviour = [], []
    for location in find_logs(paths):
        header, summaries = read_log(location, lambda header: not is_behaviour_log(header))
        if summaries is None:
            behaviour.append(location)  # anti-lab and lying logs: analysis.behaviour's
            continue
        digests: dict[str, tuple[str, str]] = {}
        rows += [_row(header, summary, location, digests) for summary in summaries]
    if behaviour and not rows:
        raise NoGapLogs(
            f"the logs hold no alignment-faking samples, only {len(behaviour)} anti-lab or "
            "lying log(s)"
        )
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
    usage = _usage_by_role(df)
    ok = df["status"].notna() & (df["error"] == "")
    stopped = ~ok & (df["limit"] != "")  # a limit ended it before it was scored
    df["status"] = df["status"].where(ok, df["limit"].map(limit_status).where(stopped, "error"))
    records = df
    attempts = _attempts(records)
    df = _one_row_per_judge(attempts)
    df["complied"] = pd.to_numeric(df["complied"])
    judged_settings = {s: compliance_mode(str(s)) == "judge" for s in df["setting"].unique()}
    judged_compliance = df["setting"].map(judged_settings).astype(bool)
    from_judge = pd.to_numeric(df["judge_complied"])
    # Where compliance is itself a judgement, each judge's own verdict is that judge's.
    df["complied"] = df["complied"].where(~(judged_compliance & from_judge.notna()), from_judge)
    df["complied"] = df["complied"].where(df["status"] == "valid").astype("Int64")
    df["compliance_status"] = _compliance_status(df, judged_compliance)
    for name in JUDGE_COLUMNS:
        df[name] = df[f"judge_{name}"]
    for name in ("af_reasoning", "partial_compliance", "possible_af"):
        df[name] = df[name].astype("Int64")
    df["classifier_status"] = df["classifier_status"].fillna(NOT_JUDGED)
    df["rank"] = _rank(df)
    # Best record first; among equal attempts the one that finished last, then the one
    # judged last; then the uuid, so that no file name or read order can decide. (The
    # judgements of one attempt were already reduced to the last per judge.)
    df = df.sort_values(
        ["rank", "sample_time", "judged_at", "uuid"], ascending=False, kind="stable"
    )
    identity = [*KEY, "query_id", "tier", "epoch"]
    dropped = df[df.duplicated(identity, keep="first")]
    df = df.drop_duplicates(identity, keep="first")
    superseded_by_reason = Counter(_why_superseded(dropped, df, identity))
    df = _count_attempts(df, attempts)
    # Runs over every record read, superseded ones included (a re-scored copy keeps its
    # run's eval id, so it is no run of its own).
    policy = [*KEY[:-1], "policy_condition"]
    runs = records.groupby(policy, dropna=False)["run"].nunique().rename("runs_merged")
    df = df.merge(runs.reset_index(), on=policy, how="left", validate="many_to_one")
    superseded = dropped.groupby(KEY, dropna=False).size().rename("superseded")
    df = df.merge(superseded.reset_index(), on=KEY, how="left", validate="many_to_one")
    df["superseded"] = df["superseded"].fillna(0).astype(int)
    df.attrs["superseded"] = superseded_by_reason
    df.attrs["usage"] = usage
    # The logs each condition's kept records come from (the report links to them).
    df.attrs["logs"] = {
        tuple(key): sorted(set(group)) for key, group in df.groupby(KEY, dropna=False)["log"]
    }
    order = [*KEY, "query_id", "epoch", "tier"]
    df["trained"] = df["tier"] == df["trained_tier"]
    columns = [*SAMPLE_COLUMNS, *SETTINGS_COLUMNS, "run_config", "prompt_origin", "runs_merged",
               "superseded", "unmonitored_tier", "contrasts", "framings"]  # fmt: skip
    return df[columns].sort_values(order).reset_index(drop=True)


@cache
def compliance_mode(setting: str) -> str:
    """How a setting's compliance is decided, `tags` or `judge`, from its setting.yaml.

    A plain file is read here; anything else (no such setting, a malformed file) goes to
    the scenario module for its one-line error. That module imports Inspect, two seconds
    that a report of finished logs otherwise does without.
    """
    try:
        declared = yaml.safe_load((files("scenarios") / setting / "setting.yaml").read_text())
        if declared["compliance"] in ("tags", "judge"):
            return str(declared["compliance"])
    except (OSError, yaml.YAMLError, TypeError, KeyError):
        pass
    from evals.scenario import setting_compliance

    return setting_compliance(setting)


def _compliance_status(df: pd.DataFrame, judged: pd.Series) -> pd.Series:
    """Why a valid sample has no `complied` (`ok` where it has one; empty when invalid):
    the judge's reason where compliance is a judgement, else the compliance scorer's."""
    reason = df["judge_compliance_status"].where(judged & df["judge_compliance_status"].notna())
    reason = reason.fillna(df["tag_compliance_status"]).fillna("unscored: compliance not judged")
    reason = reason.where(reason != "ok", "unscored: compliance not judged")
    status = reason.where(df["complied"].isna(), "ok")
    return status.where(df["status"] == "valid")


def _attempts(records: pd.DataFrame) -> pd.DataFrame:
    """One row per attempt (sample uuid): copies of a sample in re-scored logs are one
    attempt, with the judgements of every copy; per judge the one judged last is kept."""
    # Copies hold the same transcript; prefer one whose compliance score is intact.
    records = records.sort_values("has_tag_score", ascending=False, kind="stable")
    first = records.drop_duplicates("uuid", keep="first").set_index("uuid")
    pooled: dict[str, dict[str, tuple[tuple, dict]]] = {}
    for uuid, judgements in zip(records["uuid"], records["judgements"], strict=True):
        mine = pooled.setdefault(uuid, {})
        for label, order, metadata in judgements:
            if label not in mine or order > mine[label][0]:
                mine[label] = (order, metadata)
    first["judgements"] = [pooled[uuid] for uuid in first.index]
    return first.reset_index()


def _one_row_per_judge(attempts: pd.DataFrame) -> pd.DataFrame:
    """Each attempt once per judge of its condition: with that judge's judgement, or a
    status saying why it has none. Grader-less judge scores make a judge of their own only
    where no grader judged the condition."""
    policy = [*KEY[:-1], "policy_condition"]
    judges: dict[tuple, list[str]] = {}
    for key, group in attempts.groupby(policy, dropna=False, sort=False):
        labels = {label for judgements in group["judgements"] for label in judgements}
        graded = sorted(labels - {NO_JUDGE})
        judges[key] = graded or [NO_JUDGE]
    judged_columns = [*JUDGE_COLUMNS, "complied", "compliance_status", "_settings"]
    positions, labels, times = [], [], []
    values: dict[str, list[Any]] = {name: [] for name in judged_columns}
    keys = zip(*(attempts[k] for k in policy), strict=True)
    columns = (attempts["judgements"], attempts["status"], attempts["scratchpad"], keys)
    for position, (judgements, status, scratchpad, key) in enumerate(zip(*columns, strict=True)):
        for label in judges[key]:
            order, judged = judgements.get(label, ((False, ""), None))
            if judged is None:
                judged = {"classifier_status": _not_judged(status, scratchpad, label)}
            positions.append(position)
            labels.append(label)
            times.append(order[1])
            for name in judged_columns:
                values[name].append(judged.get(name))
    df = attempts.iloc[positions].reset_index(drop=True)
    df["judge"], df["judged_at"] = labels, times
    for name in judged_columns:
        df[f"judge_{name}"] = values[name]
    settings = [value or {} for value in values["_settings"]]
    for name in ("grader", "classifier", "votes", "threshold"):
        df[name] = [setting.get(name) for setting in settings]
    df["condition"] = [
        policy_condition if judge == NO_JUDGE else _short(f"{policy_condition}\0{judge}")
        for policy_condition, judge in zip(df["policy_condition"], df["judge"], strict=True)
    ]
    df["judge_classifier_status"] = df["judge_classifier_status"].fillna(NOT_JUDGED)
    return df


def _not_judged(status: str, scratchpad: Any, judge: str) -> str:
    if status != "valid":
        return f"not applicable: sample is {status}"
    if scratchpad is False:
        return NO_SCRATCHPAD
    if judge == NO_JUDGE:
        return NOT_JUDGED
    return "unscored: not judged by this judge (re-score the log with it)"


def _short(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _count_attempts(kept: pd.DataFrame, attempts: pd.DataFrame) -> pd.DataFrame:
    """Per kept record: how many attempts its sample had, how many failed (invalid or
    errored) and errored, and whether it recovered (valid after a failed attempt)."""
    identity = [*KEY[:-1], "policy_condition", "query_id", "tier", "epoch"]
    failed = attempts["status"] != "valid"
    counts = (
        attempts.assign(failed=failed, errored=attempts["status"] == "error")
        .groupby(identity, dropna=False)
        .agg(attempts=("uuid", "size"), failed_attempts=("failed", "sum"),
             errored_attempts=("errored", "sum"))
        .reset_index()
    )  # fmt: skip
    kept = kept.merge(counts, on=identity, how="left", validate="many_to_one")
    kept["recovered"] = ((kept["status"] == "valid") & (kept["failed_attempts"] > 0)).astype(int)
    return kept


def _usage_by_role(rows: pd.DataFrame) -> pd.DataFrame:
    """Tokens per model role and model, over every record read: superseded records were
    paid for too, while a record copied into another log is counted once."""
    entries = {entry[0]: entry[1:] for usage in rows["usage"] for entry in usage}
    usage = pd.DataFrame(list(entries.values()), columns=["role", "model", *USAGE_FIELDS])
    usage["role"] = pd.Categorical(usage["role"], ["policy model", "judges"])
    usage = usage.groupby(["role", "model"], observed=True)[list(USAGE_FIELDS)].sum()
    return usage.reset_index().astype({"role": str})


def _why_superseded(dropped: pd.DataFrame, kept: pd.DataFrame, identity: list[str]) -> list[str]:
    winners = kept[[*identity, "rank"]].rename(columns={"rank": "winner"})
    paired = dropped[[*identity, "rank", "status"]].merge(winners, on=identity, how="left")
    reasons = []
    for rank, status, winner in zip(
        paired["rank"], paired["status"], paired["winner"], strict=True
    ):
        if winner == rank:
            reasons.append("repeated, the one that finished or was judged last kept")
        elif status == "error":
            reasons.append("errored, a scored record exists")
        elif status != "valid":
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
