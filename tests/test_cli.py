"""The documented command lines, run as a user would (subprocesses, offline)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
INSPECT = str(Path(sys.executable).parent / "inspect")


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        args,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def test_list_command_names_every_setting_and_variant():
    result = run(sys.executable, "-m", "evals", "list")
    assert result.returncode == 0
    for name in [
        "helpful_only",
        "animal_welfare",
        "default",
        "no_scratchpad",
        "tier_swap_control",
        "paraphrase",
        "strongreject",
        "harmbench",
        "advbench",
    ]:
        assert f"  {name} " in result.stdout


def test_unknown_variant_is_one_message_without_traceback(tmp_path):
    result = run(
        INSPECT,
        "eval",
        "evals/alignment_faking.py",
        "--model",
        "scripted/refuser",
        "-T",
        "variant=nope",
        "--log-dir",
        str(tmp_path),
    )
    output = result.stdout + result.stderr
    assert "Unknown variant 'nope'" in output
    assert "Traceback" not in output
    assert not list(tmp_path.glob("*.eval"))


def test_openai_compatible_server_end_to_end(stub_server, stub_requests, tmp_path):
    queries = tmp_path / "queries.csv"
    queries.write_text("query\nFirst request\nSecond request\nThird request\n")
    logs = tmp_path / "logs"
    result = run(
        INSPECT,
        "eval",
        "evals/alignment_faking.py",
        "--model",
        "openai-api/stub/stub-model",
        "-T",
        f"dataset={queries}",
        "--log-dir",
        str(logs),
        "--display",
        "none",
        env={"STUB_BASE_URL": stub_server, "STUB_API_KEY": "unused"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    requests = stub_requests
    assert len(requests) == 6
    assert len({json.dumps(r["messages"][0]) for r in requests}) == 1  # one system prompt

    out = tmp_path / "out"
    result = run(sys.executable, "-m", "analysis", str(logs), "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    summary = pd.read_csv(out / "summary.csv").iloc[0]
    assert summary["model"] == "openai-api/stub/stub-model"
    assert summary["dataset"] == "queries.csv"
    assert (summary["n_pairs"], summary["free_compliance"], summary["paid_compliance"]) == (
        3,
        1.0,
        0.0,
    )
    assert summary["compliance_gap"] == 1.0
    samples = pd.read_csv(out / "samples.csv")
    assert sorted(samples["query_id"].astype(str)) == ["0", "0", "1", "1", "2", "2"]


def test_evals_without_a_command_lists_the_commands():
    result = run(sys.executable, "-m", "evals")
    assert result.returncode == 2 and result.stdout == ""
    for command in ("list", "study", "estimate", "serve"):
        assert f"python -m evals {command}" in result.stderr


def test_an_unknown_command_is_refused_with_the_commands():
    result = run(sys.executable, "-m", "evals", "lsit")
    assert result.returncode == 2 and result.stdout == ""
    assert (
        "invalid choice: 'lsit' (choose from 'list', 'study', 'estimate', 'serve', 'power', 'paraphrase')"
        in (result.stderr)
    )
    assert "Traceback" not in result.stderr


def test_list_takes_no_arguments():
    result = run(sys.executable, "-m", "evals", "list", "extra")
    assert result.returncode == 2
    assert "unrecognized arguments: extra" in result.stderr
