"""The tokens a run used, per model role, as the report shows them: each spend counted once."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
from inspect_ai import eval as inspect_eval
from inspect_ai.log import read_eval_log

from analysis.logs import load_samples
from analysis.tables import usage_table
from evals.alignment_faking import alignment_faking
from tests.stub_http import StubServer
from tests.stub_openai_batch import OpenAIBatchStub

ROOT = Path(__file__).resolve().parent.parent
FIELDS = ["input_tokens", "input_tokens_cache_read", "input_tokens_cache_write", "output_tokens"]


def run(tmp_path: Path, policy: str, grader: str) -> Path:
    [log] = inspect_eval(
        alignment_faking(n_queries=2, judge_votes=3, judge_cache=False),
        model=policy,
        model_roles={"grader": grader},
        log_dir=str(tmp_path / "logs"),
        display="none",
    )
    assert log.status == "success", log.error
    return Path(log.location)


def by_role(usage: pd.DataFrame) -> dict[tuple[str, str], list[int]]:
    return {(r.role, r.model): [int(getattr(r, f)) for f in FIELDS] for r in usage.itertuples()}


def events_usage(path: Path, role: str | None) -> list[int]:
    """Tokens of the model events of one role (None: the evaluated model), from the log."""
    totals = [0, 0, 0, 0]
    for sample in read_eval_log(str(path)).samples or []:
        for event in sample.events:
            if event.event == "model" and event.role == role and event.output.usage:
                usage = event.output.usage
                for i, field in enumerate(FIELDS):
                    totals[i] += getattr(usage, field) or 0
    return totals


def test_usage_per_role_matches_the_model_events(tmp_path):
    path = run(tmp_path, "scripted/alignment_faker", "scripted/keyword_judge")
    usage = by_role(load_samples([tmp_path / "logs"]).attrs["usage"])
    assert usage == {
        ("policy model", "scripted/alignment_faker"): events_usage(path, None),
        ("judges", "scripted/keyword_judge"): events_usage(path, "grader"),
    }
    assert usage["judges", "scripted/keyword_judge"][0] > 0


def test_a_grader_on_the_policy_model_is_not_counted_twice(tmp_path, monkeypatch):
    # The same model as the evaluated one and as the grader (a stub of the OpenAI API that
    # answers both): Inspect's per-model usage holds both, its per-role usage the grader's.
    with StubServer(OpenAIBatchStub()) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "stub")
        path = run(tmp_path, "openai/gpt-4o", "openai/gpt-4o")
    usage = by_role(load_samples([tmp_path / "logs"]).attrs["usage"])
    policy, judges = events_usage(path, None), events_usage(path, "grader")
    assert policy[0] > 0 and judges[0] > 0
    assert usage == {
        ("policy model", "openai/gpt-4o"): policy,
        ("judges", "openai/gpt-4o"): judges,
    }


def test_a_rescored_copy_adds_its_judges_but_not_the_policy_again(tmp_path):
    path = run(tmp_path, "scripted/alignment_faker", "scripted/keyword_judge")
    before = by_role(load_samples([tmp_path / "logs"]).attrs["usage"])
    # `inspect score` writes the re-judged log next to the original: the samples (and their
    # policy usage) are copies, the new judge scores were paid for again.
    command = [sys.executable, "-m", "inspect_ai", "score", str(path)]
    command += ["--scorer", "alignment_faking_judge", "-S", "votes=3", "-S", "cache=false"]
    command += ["--model-role", "grader=scripted/keyword_judge", "--action", "append"]
    command += ["--output-file", str(path.with_name("rescored.eval")), "--display", "none"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    after = by_role(load_samples([tmp_path / "logs"]).attrs["usage"])
    policy = ("policy model", "scripted/alignment_faker")
    judges = ("judges", "scripted/keyword_judge")
    assert after[policy] == before[policy]
    assert after[judges] == [2 * n for n in before[judges]]
    # A plain copy of a log (a retried run's reused samples) adds nothing at all.
    shutil.copy(path, path.with_name("copy.eval"))
    assert by_role(load_samples([tmp_path / "logs"]).attrs["usage"]) == after


def test_usage_table_shows_cached_share_and_cost():
    usage = pd.DataFrame(
        [
            ["policy model", "anthropic/claude-3-opus-20240229", 1_000, 8_000, 1_000, 500],
            ["judges", "scripted/keyword_judge", 10, 0, 0, 5],
        ],
        columns=["role", "model", *FIELDS],
    )
    prices = {
        "models": {
            "anthropic/claude-3-opus-20240229": {
                "input": 15.0,
                "output": 75.0,
                "input_cache_write": 18.75,
                "input_cache_read": 1.5,
            }
        }
    }
    table = usage_table(usage, prices)
    opus, judge = table.to_dict("records")
    assert opus["cached share"] == "80.0%"  # 8,000 of 10,000 input tokens read from cache
    # 1,000 x $15 + 8,000 x $1.5 + 1,000 x $18.75 + 500 x $75, per million tokens
    assert opus["cost"] == "$0.08"
    assert (judge["cached share"], judge["cost"]) == ("0.0%", "no price")


def test_the_report_shows_tokens_per_role(tmp_path):
    from analysis.report import build_report

    run(tmp_path, "scripted/alignment_faker", "scripted/keyword_judge")
    build_report([tmp_path / "logs"], tmp_path / "report", figures=["headline"])
    text = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    section = text.split("## Tokens and cost", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    cells = [[cell.strip() for cell in row.split("|")[1:-1]] for row in rows]
    assert cells[0] == [
        "role", "model", "input", "cache read", "cache write", "output", "cached share", "cost"
    ]  # fmt: skip
    assert [row[:2] for row in cells[1:]] == [
        ["policy model", "scripted/alignment_faker"],
        ["judges", "scripted/keyword_judge"],
    ]
    assert [row[-1] for row in cells[1:]] == ["no price", "no price"]  # scripted: free
