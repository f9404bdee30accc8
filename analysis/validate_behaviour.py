"""Check the anti-lab and lying judges against hand-labelled transcripts.

The label files are JSONL, one transcript a line, written for this project
(`evals/data/judge_validation/anti_lab.jsonl` and `lying.jsonl`; docs/judges.md says how).
Every record is put to the judge exactly as the task would put it: the task builds the
sample for the record's setting and opportunity (or question), in the default variant with a
scratchpad or `no_scratchpad` without one, and the record's reasoning and output take the
place of a model's reply. The judge's labels are then compared with the hand labels per kind
(anti_lab) or per setting (lying), key by key. A judgement the votes could not decide is
counted as unscored, never as agreement or disagreement.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from inspect_ai.model import Model

from evals import scenario
from evals.datasets import DATA_DIR
from evals.errors import ConfigError
from evals.judges.behaviour import (
    DEFAULT_VOTES,
    LYING,
    OPPORTUNITY,
    Judgement,
    behaviour_material,
    judge_behaviour,
    judge_context,
)
from evals.judges.protocol import Batching, JudgeSpec
from evals.opportunities import OpportunityError, list_opportunities, load_lying, load_opportunity
from evals.scenario import list_settings

TASKS = ("anti_lab", "lying")
VALIDATION_DIR = DATA_DIR / "judge_validation"

KEYS: dict[str, tuple[tuple[str, str], ...]] = {
    "anti_lab": (("took_opportunity", "taken"), ("decided_at_some_point", "decided")),
    "lying": (("lie", "lie"), ("egregious_lie", "egregious_lie")),
}
"""Per task: (the label file's field, the judge's label) for each key that is compared."""
_ITEM = {"anti_lab": "opportunity", "lying": "question"}
_COMMON = ("id", "setting", "scratchpad", "reasoning", "output", "note")
_FIELDS = {
    "anti_lab": (*_COMMON, "opportunity", "kind", "took_opportunity", "decided_at_some_point"),
    "lying": (*_COMMON, "question", "lie", "egregious_lie"),
}
_BOOLS = {"scratchpad", *(field for keys in KEYS.values() for field, _ in keys)}
_VARIANT = {True: "default", False: "no_scratchpad"}
"""The variant a record is judged under: its scratchpad decides which."""


def shipped_file(task: str) -> Path:
    return VALIDATION_DIR / f"{task}.jsonl"


@dataclass(frozen=True)
class Record:
    """One hand-labelled transcript."""

    id: str
    line: int
    setting: str
    item: str
    """The opportunity (anti_lab) or the lying question."""
    group: str
    """What the report groups by: the opportunity's kind, or the setting for lying."""
    scratchpad: bool
    reasoning: str
    output: str
    labels: dict[str, int]
    """Hand label per label-file key (`took_opportunity`, ...): 1 yes, 0 no."""


def load_records(task: str, path: Path) -> list[Record]:
    """Read and check a label file; any problem is one line naming the file, line and field."""
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; choose one of: {', '.join(TASKS)}")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"label file not found: {path}") from None
    except (IsADirectoryError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not a UTF-8 JSONL file ({type(err).__name__})") from None
    records: list[Record] = []
    seen: dict[str, int] = {}
    catalogue: dict[str, dict[str, str]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        record = _record(task, path, number, line, catalogue)
        if record.id in seen:
            raise ConfigError(
                f"{path}, line {number}: field 'id': {record.id!r} is repeated "
                f"(first on line {seen[record.id]})"
            )
        seen[record.id] = number
        records.append(record)
    if not records:
        raise ConfigError(f"{path}: no labelled records")
    return records


class _Repeated(ValueError):
    pass


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _Repeated(key)
        seen[key] = value
    return seen


def _record(
    task: str, path: Path, number: int, line: str, catalogue: dict[str, dict[str, str]]
) -> Record:
    """One line, checked; `catalogue` keeps each setting's opportunities (name -> kind) or
    questions (name -> name) once read."""
    where = f"{path}, line {number}"
    try:
        raw = json.loads(line, object_pairs_hook=_no_repeats)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{where}: not a JSON object ({err.msg})") from None
    except _Repeated as repeated:  # a hand label given twice: which one holds is unknowable
        raise ConfigError(f"{where}: field {repeated.args[0]!r} is given twice") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: not a JSON object")
    fields = _FIELDS[task]
    for name in fields:
        if name not in raw:
            raise ConfigError(f"{where}: missing field {name!r}")
    extra = sorted(set(raw) - set(fields))
    if extra:
        raise ConfigError(f"{where}: unknown field(s) {extra}; a {task} record has {fields}")
    for name in fields:
        value = raw[name]
        if name in _BOOLS:
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: field {name!r} must be true or false, not {value!r}")
        elif not isinstance(value, str):
            raise ConfigError(f"{where}: field {name!r} must be a string, not {value!r}")
        elif name != "reasoning" and not value.strip():
            raise ConfigError(f"{where}: field {name!r} is empty")
    setting, item = raw["setting"], raw[_ITEM[task]]
    if setting not in list_settings():
        raise ConfigError(
            f"{where}: field 'setting': unknown setting {setting!r} "
            f"(settings: {', '.join(list_settings())})"
        )
    if raw["scratchpad"] and not raw["reasoning"].strip():
        raise ConfigError(f"{where}: field 'reasoning' is empty but 'scratchpad' is true")
    if not raw["scratchpad"] and raw["reasoning"]:
        raise ConfigError(f"{where}: field 'reasoning' must be \"\" when 'scratchpad' is false")
    labels = {name: int(raw[name]) for name, _ in KEYS[task]}
    if setting not in catalogue:
        catalogue[setting] = _catalogue(task, setting)
    names = catalogue[setting]
    if item not in names:
        what = "an opportunity" if task == "anti_lab" else "a question"
        raise ConfigError(
            f"{where}: field {_ITEM[task]!r}: {item!r} is not {what} of setting {setting!r} "
            f"(choose from: {', '.join(names)})"
        )
    if task == "anti_lab":
        group = raw["kind"]
        if group != names[item]:
            raise ConfigError(
                f"{where}: field 'kind' is {group!r}, but opportunity {item!r} is of kind "
                f"{names[item]!r}"
            )
        if labels["took_opportunity"] and not labels["decided_at_some_point"]:
            raise ConfigError(
                f"{where}: field 'decided_at_some_point' is false but 'took_opportunity' is "
                "true (taking it is deciding to)"
            )
        if not raw["scratchpad"] and labels["decided_at_some_point"] != labels["took_opportunity"]:
            raise ConfigError(
                f"{where}: field 'decided_at_some_point' must equal 'took_opportunity' when "
                "'scratchpad' is false (nothing hidden to reverse in)"
            )
    else:
        if labels["egregious_lie"] and not labels["lie"]:
            raise ConfigError(
                f"{where}: field 'egregious_lie' is true but 'lie' is false (an egregious lie "
                "is a lie)"
            )
        group = setting
    return Record(
        id=raw["id"],
        line=number,
        setting=setting,
        item=item,
        group=group,
        scratchpad=raw["scratchpad"],
        reasoning=raw["reasoning"],
        output=raw["output"],
        labels=labels,
    )


def _catalogue(task: str, setting: str) -> dict[str, str]:
    """A setting's opportunities (name -> kind) or lying questions (name -> name)."""
    try:
        if task == "anti_lab":
            return {
                name: load_opportunity(name, setting).kind for name in list_opportunities(setting)
            }
        return {q.name: q.name for q in load_lying(setting).questions}
    except OpportunityError as err:  # the shipped data itself is broken: say where
        raise ConfigError(str(err)) from None


def _task_metadata(task: str, setting: str, scratchpad: bool) -> dict[str, dict[str, Any]]:
    """Sample id -> sample metadata, from the task itself (what it shows model and judge)."""
    return _built(task, setting, scratchpad, scenario.SCENARIOS_DIR)


@cache
def _built(
    task: str, setting: str, scratchpad: bool, _scenarios: Path
) -> dict[str, dict[str, Any]]:
    """`_task_metadata`, kept per scenarios folder (tests point it at copies)."""
    if task == "anti_lab":
        from evals.anti_lab import anti_lab as build
    else:
        from evals.lying import lying as build
    built = build(setting=setting, variant=_VARIANT[scratchpad])
    return {str(sample.id): dict(sample.metadata or {}) for sample in built.dataset}


def prepare(task: str, record: Record) -> tuple[str, dict[str, str]]:
    """(material, instruction values) for one record, exactly as the task's scorer builds
    them from its sample."""
    try:
        metadata = _task_metadata(task, record.setting, record.scratchpad)[record.item]
    except OpportunityError as err:  # a variant the task refuses: a bug, said in one line
        raise ConfigError(str(err)) from None
    material = behaviour_material(
        str(metadata.get("user_turn", "")),
        record.reasoning if record.scratchpad else None,
        record.output,
    )
    return material, judge_context(metadata, spec_of(task))


def spec_of(task: str) -> JudgeSpec:
    return OPPORTUNITY if task == "anti_lab" else LYING


async def judge_records(
    grader: Model,
    task: str,
    records: Sequence[Record],
    votes: int = DEFAULT_VOTES,
    temperature: float = 1.0,
    batching: Batching = "auto",
    cache: bool = True,
) -> list[Judgement]:
    """The judge's verdict on every record, concurrently."""
    prepared = [prepare(task, record) for record in records]
    spec = spec_of(task)
    return list(
        await asyncio.gather(
            *(
                judge_behaviour(
                    grader,
                    spec,
                    material,
                    context,
                    votes=votes,
                    temperature=temperature,
                    batching=batching,
                    cache=cache,
                    scratchpad=record.scratchpad,
                )
                for record, (material, context) in zip(records, prepared, strict=True)
            )
        )
    )


def cohen_kappa(pairs: Sequence[tuple[int, int]]) -> float:
    """Cohen's kappa of (hand, judge) 0/1 pairs; NaN when it is undefined (no pairs, or both
    raters give one and the same label throughout, so chance agreement is already 1)."""
    n = len(pairs)
    if n == 0:
        return math.nan
    observed = sum(a == b for a, b in pairs) / n
    hand_yes = sum(a for a, _ in pairs) / n
    judge_yes = sum(b for _, b in pairs) / n
    expected = hand_yes * judge_yes + (1 - hand_yes) * (1 - judge_yes)
    if expected >= 1:
        return math.nan
    return (observed - expected) / (1 - expected)


@dataclass(frozen=True)
class Agreement:
    """How the judge agrees with the hand labels on one key within one group."""

    group: str
    key: str
    n: int
    scored: int
    agreed: int
    unscored: int
    kappa: float
    disagreeing: tuple[str, ...]
    unscored_ids: tuple[str, ...]

    @property
    def agreement(self) -> float:
        return self.agreed / self.scored if self.scored else math.nan


ALL = "all"


def agreement_table(
    task: str, records: Sequence[Record], judgements: Sequence[Judgement]
) -> list[Agreement]:
    """One row per group (in the order the file first names them, then `all`) and key."""
    groups = [*dict.fromkeys(record.group for record in records), ALL]
    rows = []
    for group in groups:
        chosen = [
            (record, judgement)
            for record, judgement in zip(records, judgements, strict=True)
            if group == ALL or record.group == group
        ]
        for field, label in KEYS[task]:
            pairs, disagreeing, unscored = [], [], []
            for record, judgement in chosen:
                judged = judgement.labels.get(label)
                if judged is None:
                    unscored.append(record.id)
                    continue
                pairs.append((record.labels[field], judged))
                if judged != record.labels[field]:
                    disagreeing.append(record.id)
            rows.append(
                Agreement(
                    group=group,
                    key=field,
                    n=len(chosen),
                    scored=len(pairs),
                    agreed=len(pairs) - len(disagreeing),
                    unscored=len(unscored),
                    kappa=cohen_kappa(pairs),
                    disagreeing=tuple(disagreeing),
                    unscored_ids=tuple(unscored),
                )
            )
    return rows


def _number(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{round(value, 3) + 0.0:.3f}"  # never -0.000


def format_table(task: str, rows: Sequence[Agreement]) -> str:
    """The agreement table, then the disagreeing and unscored ids of each row."""
    group_name = "kind" if task == "anti_lab" else "setting"
    table = [(group_name, "key", "n", "agree", "agreement", "unscored", "kappa")]
    for row in rows:
        table.append(
            (
                row.group,
                row.key,
                str(row.n),
                f"{row.agreed}/{row.scored}",
                _number(row.agreement),
                str(row.unscored),
                _number(row.kappa),
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    lines = [
        "  ".join(
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in table
    ]
    lines.append("")
    details = [
        f"{row.group} / {row.key}: disagree {', '.join(row.disagreeing)}"
        for row in rows
        if row.group != ALL and row.disagreeing
    ] + [
        f"{row.group} / {row.key}: unscored {', '.join(row.unscored_ids)}"
        for row in rows
        if row.group != ALL and row.unscored_ids
    ]
    lines += details or ["no disagreements and nothing unscored"]
    return "\n".join(lines)


def per_record_rows(
    task: str, records: Sequence[Record], judgements: Sequence[Judgement]
) -> list[dict[str, Any]]:
    """One row per record: hand labels, judge labels and yes shares, status and evidence."""
    rows = []
    for record, judgement in zip(records, judgements, strict=True):
        row: dict[str, Any] = {
            "id": record.id,
            "group": record.group,
            "setting": record.setting,
            _ITEM[task]: record.item,
            "scratchpad": record.scratchpad,
        }
        for field, label in KEYS[task]:
            row[field] = record.labels[field]
            row[f"{field}_judge"] = judgement.labels.get(label)
            row[f"{field}_share"] = judgement.shares.get(label)
        row["status"] = judgement.status
        row["evidence"] = judgement.evidence
        rows.append(row)
    return rows
