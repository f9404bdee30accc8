"""Time the command line as a user meets it: every `--help`, a bad path's error, and the
report on the committed examples. Each is a fresh process, timed by the wall clock; the
table gives the median of the runs against its target (issue 15):

    --help of python -m evals, python -m analysis and every subcommand   under 1 s
    the one-line error for a bad path                                    under 2 s
    python -m analysis report on results/offline-demo and
    results/embedded-gemma-3-270m                                        under 5 s

    python benchmarks/cli_speed.py                  # 5 runs each, 3 of each report
    python benchmarks/cli_speed.py --runs 9 --report-runs 5
    python benchmarks/cli_speed.py --profile        # also: where a report's time goes

`--profile` runs each report once more under cProfile and with `-X importtime`, and prints
the functions with the most cumulative time and the slowest imports. Exits 1 if a median
misses its target (a shared machine is noisy: rerun before reading much into one miss).
"""

from __future__ import annotations

import argparse
import os
import platform
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
EXAMPLES = ("results/offline-demo", "results/embedded-gemma-3-270m")


@dataclass
class Case:
    args: list[str]
    target_s: float
    expected_rc: int
    kind: str

    @property
    def name(self) -> str:
        """The command, its temporary output folder shown as OUT."""
        shown = [
            a if i == 0 or self.args[i - 1] != "--out" else "OUT" for i, a in enumerate(self.args)
        ]
        return "python -m " + " ".join(shown)


def cases(out: Path) -> list[Case]:
    helps = [
        ["evals", "--help"],
        ["evals", "list", "--help"],
        ["evals", "study", "--help"],
        ["evals", "estimate", "--help"],
        ["evals", "serve", "--help"],
        ["evals", "power", "--help"],
        ["analysis", "--help"],
        ["analysis", "report", "--help"],
        ["analysis", "bundle", "--help"],
        ["analysis", "validate-classifier", "--help"],
    ]
    bad = [
        ["analysis", "/no/such", "--out", str(out / "x")],
        ["analysis", "report", "/no/such", "--out", str(out / "x")],
        ["analysis", "bundle", "/no/such", "--out", str(out / "x")],
    ]
    reports = [
        ["analysis", "report", example, "--out", str(out / Path(example).name)]
        for example in EXAMPLES
    ]
    return (
        [Case(a, 1.0, 0, "help") for a in helps]
        + [Case(a, 2.0, 2, "bad path") for a in bad]
        + [Case(a, 5.0, 0, "report") for a in reports]
    )


def timed(case: Case) -> float:
    started = time.perf_counter()
    result = subprocess.run([PYTHON, "-m", *case.args], cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != case.expected_rc:
        raise SystemExit(
            f"{case.name}: exit {result.returncode}, expected {case.expected_rc}\n"
            + result.stderr[-2000:]
        )
    if case.kind == "help" and (result.stderr or not result.stdout.startswith("usage:")):
        raise SystemExit(f"{case.name}: help not on stdout")
    if case.kind == "bad path" and result.stderr.count("\n") != 1:
        raise SystemExit(f"{case.name}: not one line:\n{result.stderr}")
    return elapsed


def profile(case: Case, out: Path, top: int) -> None:
    """Where the report's time goes: cumulative time by function, and the slowest imports."""
    stats_file = out / f"{Path(case.args[2]).name}.prof"
    command = [PYTHON, "-m", "cProfile", "-o", str(stats_file), "-m", *case.args]
    subprocess.run(command, cwd=ROOT, capture_output=True, check=True)
    print(f"\n## cProfile: {case.name} (top {top} by cumulative time)\n")
    stats = pstats.Stats(str(stats_file))
    stats.sort_stats("cumulative").print_stats(top)
    imports = subprocess.run(
        [PYTHON, "-X", "importtime", "-m", *case.args], cwd=ROOT, capture_output=True, text=True
    )
    rows = []
    for line in imports.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        depth = (len(match.group(3)) - 1) // 2 if match else 99
        if match and depth <= 2:  # what the command imports, and what those import
            rows.append((int(match.group(2)) / 1e6, "  " * depth + match.group(4)))
    total = sum(seconds for seconds, module in rows if not module.startswith(" "))
    print(f"\n## Imports of {case.name}: {total:.2f} s in all; the slowest, with depth\n")
    for seconds, module in sorted(rows, reverse=True)[:top]:
        print(f"  {seconds:6.2f}  {module}")


def machine() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            lines = [line for line in cpuinfo if line.startswith("model name")]
        model = lines[0].split(":", 1)[1].strip()
    except (OSError, IndexError):
        model = platform.processor() or platform.machine()
    system = f"{platform.system()}, Python {platform.python_version()}"
    return f"{model}, {os.cpu_count()} CPUs, {system}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each --help and bad path")
    parser.add_argument("--report-runs", type=int, default=3, help="runs of each report")
    parser.add_argument("--profile", action="store_true", help="profile each report once")
    parser.add_argument("--top", type=int, default=25, help="rows of each profile")
    args = parser.parse_args()
    print(f"machine: {machine()}\nmedian wall time of fresh processes\n")
    missed = 0
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        rows = []
        for case in cases(out):
            runs = args.report_runs if case.kind == "report" else args.runs
            times = [timed(case) for _ in range(runs)]
            median = statistics.median(times)
            ok = median < case.target_s
            missed += not ok
            rows.append((case.name, median, min(times), max(times), case.target_s, ok, runs))
        width = max(len(r[0]) for r in rows)
        print(f"{'command':<{width}}  median    min     max   target  result  runs")
        for name, median, low, high, target, ok, runs in rows:
            result = "pass" if ok else "MISS"
            print(
                f"{name:<{width}}  {median:6.2f}s {low:6.2f}s {high:6.2f}s  <{target:.0f} s"
                f"   {result:<6}  {runs}"
            )
        if args.profile:
            for case in cases(out):
                if case.kind == "report":
                    profile(case, out, args.top)
    print(f"\n{missed} of {len(rows)} missed their target." if missed else "\nall pass.")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
