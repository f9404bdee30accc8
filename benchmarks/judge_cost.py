"""Judge input tokens billed at full price per sample, against a naive judge.

The naive judge sends one request per vote and shares no prefix, so every vote pays the
whole prompt. This project's judge sends all votes in one request where the provider
supports several choices, and otherwise sends identical requests (instructions, then the
transcript) so that the provider's prefix cache bills the shared part once.

    python benchmarks/judge_cost.py LOG_PATH...   # any run made with --model-role grader=...
    python benchmarks/judge_cost.py --demo        # two offline runs: multi-choice and prefix cache
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from inspect_ai.log import read_eval_log

from analysis.logs import find_logs, latest_judge


def judge_costs(paths: list[str]) -> dict[str, dict[str, float]]:
    """Per classifier: samples, billed input tokens, naive input tokens (totals)."""
    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for location in find_logs(paths):
        for sample in read_eval_log(location).samples or []:
            judge = latest_judge(sample)
            for name, usage in (judge.get("judge_usage") or {}).items():
                votes = judge.get("af_votes_requested", 1) if name == "af_reasoning" else 1
                row = totals[name]
                row["samples"] += 1
                row["requests"] += usage["requests"]
                row["billed"] += usage["input_tokens"] + usage.get("cache_write", 0)
                row["cache_read"] += usage["cache_read"]
                row["naive"] += votes * usage["prompt_tokens"]
    return totals


def print_costs(title: str, totals: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}")
    header = f"{'classifier':<20}{'samples':>8}{'requests':>10}{'billed/sample':>15}"
    print(header + f"{'naive/sample':>14}{'naive/billed':>14}")
    all_billed = all_naive = 0.0
    for name, row in sorted(totals.items()):
        n = row["samples"]
        ratio = row["naive"] / row["billed"] if row["billed"] else float("inf")
        print(
            f"{name:<20}{int(n):>8}{int(row['requests']):>10}{row['billed'] / n:>15.0f}"
            f"{row['naive'] / n:>14.0f}{ratio:>14.1f}"
        )
        all_billed += row["billed"]
        all_naive += row["naive"]
    if all_billed:
        print(f"{'all judges':<20}{'':>8}{'':>10}{'':>15}{'':>14}{all_naive / all_billed:>14.1f}")


def demo(votes: int) -> None:
    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import GenerateConfig, get_model

    from evals.alignment_faking import alignment_faking

    runs = {
        "multi-choice grader (scripted/keyword_judge: all votes in one request)": get_model(
            "scripted/keyword_judge"
        ),
        "prefix-cached grader (gguf/gemma-3-270m: parallel votes, llama.cpp KV reuse)": get_model(
            "gguf/gemma-3-270m", config=GenerateConfig(max_tokens=24)
        ),
    }
    for title, grader in runs.items():
        with tempfile.TemporaryDirectory() as log_dir:
            inspect_eval(
                alignment_faking(n_queries=1, judge_votes=votes),
                model="scripted/alignment_faker",
                model_roles={"grader": grader},
                log_dir=log_dir,
                display="none",
            )
            print_costs(title, judge_costs([log_dir]))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("logs", nargs="*", help="log files or folders")
    parser.add_argument("--demo", action="store_true", help="run the two offline demos")
    parser.add_argument("--votes", type=int, default=20, help="AF votes in --demo runs")
    args = parser.parse_args(argv)
    if args.demo:
        demo(args.votes)
    elif args.logs:
        print_costs("judge input tokens", judge_costs(args.logs))
    else:
        parser.error("give LOG_PATH... or --demo")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main(sys.argv[1:]))
