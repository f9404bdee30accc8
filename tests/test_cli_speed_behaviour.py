"""A command line that answers at once: what makes it fast, tested without timing it.

`--help` of every command prints to stdout and exits 0, and a bad path is one line, without
Inspect, pandas or matplotlib ever being imported. (benchmarks/cli_speed.py times them.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("inspect_ai", "pandas", "matplotlib", "numpy", "scipy")

HELP = [
    ("evals", "--help"),
    ("evals", "list", "--help"),
    ("evals", "study", "--help"),
    ("evals", "estimate", "--help"),
    ("evals", "serve", "--help"),
    ("evals", "power", "--help"),
    ("analysis", "--help"),
    ("analysis", "report", "--help"),
    ("analysis", "bundle", "--help"),
    ("analysis", "validate-classifier", "--help"),
]
BAD_PATHS = [
    ("analysis", "/no/such", "--out", "x"),
    ("analysis", "report", "/no/such", "--out", "x"),
    ("analysis", "bundle", "/no/such", "--out", "x"),
]

# Runs a package's __main__ as `python -m` does, then prints its exit code and the top-level
# modules imported by then.
PROBE = """
import json, runpy, sys
sys.argv = [sys.argv[1], *sys.argv[2:]]
code = 0
try:
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
except SystemExit as exit:
    code = exit.code
modules = sorted({name.split(".")[0] for name in sys.modules})
print(json.dumps({"code": code, "modules": modules}), file=sys.stderr)
"""


def probe(args: tuple[str, ...]) -> tuple[int, list[str]]:
    """(exit code, heavy modules imported) of `python -m ARGS`."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    seen = json.loads(result.stderr.splitlines()[-1])
    return seen["code"], sorted(set(seen["modules"]) & set(HEAVY))


def run(args: tuple[str, ...]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("args", HELP, ids=" ".join)
def test_help_prints_to_stdout_and_exits_0(args):
    result = run(args)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    command = " ".join(a for a in args if a != "--help")
    assert result.stdout.startswith(f"usage: python -m {command} ")


@pytest.mark.parametrize("args", HELP + BAD_PATHS, ids=" ".join)
def test_no_heavy_module_is_imported(args):
    code, heavy = probe(args)
    assert heavy == []
    assert code == (2 if args in BAD_PATHS else 0)


@pytest.mark.parametrize("args", BAD_PATHS, ids=" ".join)
def test_a_bad_path_is_one_line(args):
    result = run(args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "/no/such" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_path_is_found_before_the_logs_are_read(tmp_path):
    from analysis.__main__ import check_log_paths

    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "logs" / "deep").mkdir(parents=True)
    (tmp_path / "logs" / "deep" / "a.eval").write_text("")
    assert (
        check_log_paths([tmp_path / "nope"]) == f"{tmp_path / 'nope'}: no such log file or folder"
    )
    assert (
        check_log_paths([tmp_path / "empty"])
        == f"{tmp_path / 'empty'}: folder holds no Inspect logs"
    )
    assert check_log_paths([tmp_path / "notes.txt"]) == (
        f"{tmp_path / 'notes.txt'}: not an Inspect log (expected a .eval or .json file)"
    )
    assert check_log_paths([tmp_path / "logs"]) is None  # which files are logs: read later


def test_importing_the_command_lines_imports_nothing_heavy():
    code = (
        "import sys, analysis, evals, analysis.__main__, evals.__main__, analysis.bundle; "
        f"print(sorted(set(m.split('.')[0] for m in sys.modules) & set({HEAVY!r})))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


def test_serve_help_names_the_context_it_assumes():
    from evals.__main__ import DEFAULT_CONTEXT
    from evals.serving import DEFAULT_CONTEXT as SERVING_DEFAULT

    assert DEFAULT_CONTEXT == SERVING_DEFAULT
    assert f"(default: {SERVING_DEFAULT})" in run(("evals", "serve", "--help")).stdout
