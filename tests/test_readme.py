"""The README's commands as written: each one that needs no key or GPU is run here (the test
command itself is what CI runs), and what the README says they print is what they print."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def commands(prefix: str) -> list[str]:
    """Commands of the README's code blocks that start with `prefix`, continuation lines
    joined."""
    blocks = re.findall(r"```(?:bash|console)?\n(.*?)```", README, re.DOTALL)
    joined = [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]
    return [line.split("  #")[0].strip() for line in joined if line.startswith(prefix)]


def test_the_estimate_example_prints_what_the_readme_shows():
    [command] = commands("python -m evals estimate")
    args = shlex.split(command)
    assert args[:3] == ["python", "-m", "evals"]
    printed = subprocess.run(
        [sys.executable, *args[1:]], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert printed.returncode == 0, printed.stderr[-2000:]
    shown = re.search(r"```text\n(anthropic/claude-3-opus.*?)```", README, re.DOTALL)
    assert shown is not None
    assert printed.stdout.strip() == shown.group(1).strip()


def test_the_offline_evaluation_runs_as_written():
    """`python3 dev.py eval`: the bundled model, offline, then the analysis and its summary."""
    [command] = commands("python3 dev.py eval")
    assert command == "python3 dev.py eval"
    ran = subprocess.run(
        [sys.executable, "dev.py", "eval"], cwd=ROOT, capture_output=True, text=True,
        timeout=1200,
    )  # fmt: skip
    assert ran.returncode == 0, (ran.stdout + ran.stderr)[-3000:]
    summary = re.search(r"Summary \((.*)summary\.csv\)", ran.stdout)
    assert summary is not None and "compliance_gap" in ran.stdout
    log_dir = Path(summary.group(1))
    assert len(list(log_dir.glob("*.eval"))) == 1 and (log_dir / "samples.csv").is_file()
