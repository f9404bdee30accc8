"""Command line for the analysis package.

python -m analysis LOG_PATH... --out DIR
python -m analysis validate-classifier LABELS.jsonl --model-role grader=MODEL
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from analysis.logs import SAMPLE_COLUMNS, LogError, load_samples, superseded_note
from analysis.summary import summarize
from evals.errors import ConfigError
from evals.task_args import check_judge_args


def tabulate(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis",
        description="Tabulate alignment-faking Inspect logs: per-sample rows and paired gaps. "
        "Other commands: report, validate-classifier.",
    )
    parser.add_argument("logs", nargs="+", metavar="LOG_PATH", help="log files or folders")
    parser.add_argument("--out", required=True, type=Path, help="folder for the CSV files")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.out.is_dir():
        parser.exit(2, f"error: --out {args.out} is a file, not a folder\n")
    try:
        write_tables(args.logs, args.out)
    except LogError as err:
        parser.exit(2, f"error: {err}\n")
    return 0


def write_tables(logs: list[str | Path], out: Path) -> None:
    """samples.csv and summary.csv of the logs, into `out`, and say so."""
    samples = load_samples(logs)
    if note := superseded_note(samples):
        print(note)
    summary = summarize(samples)
    out.mkdir(parents=True, exist_ok=True)
    samples[SAMPLE_COLUMNS].to_csv(out / "samples.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    print(f"wrote {out / 'samples.csv'} ({len(samples)} rows) and {out / 'summary.csv'}")


def validate_classifier(argv: list[str]) -> int:
    from inspect_ai.model import get_model

    from analysis.validate import classify, format_report, load_labels, validation_report
    from evals.preflight import check_models

    parser = argparse.ArgumentParser(
        prog="python -m analysis validate-classifier",
        description="Accuracy, AUROC and confusion matrix of the AF classifier on labels.",
    )
    parser.add_argument("labels", type=Path, help="JSONL/JSON of {text, label} records")
    parser.add_argument(
        "--model-role", required=True, metavar="grader=MODEL", help="the judge model"
    )
    parser.add_argument("--classifier", choices=["improved", "paper"], default="improved")
    parser.add_argument("--votes", type=int, default=20)
    parser.add_argument("--threshold", type=float, default=0.4)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--out", type=Path, help="also write per-example results to this CSV")
    args = parser.parse_args(argv)
    role, sep, model_name = args.model_role.partition("=")
    if role != "grader" or not sep or not model_name:
        parser.exit(2, "error: --model-role must look like grader=PROVIDER/MODEL\n")
    try:
        # The model name first, as `study` and `estimate` check it: one line with the
        # providers and the closest match, before anything is read or made.
        check_models([], model_name, "--model-role grader=")
        # The same checks as the task's -T af_classifier, judge_votes and af_threshold.
        check_judge_args(
            args.classifier, args.votes, args.threshold, ("--classifier", "--votes", "--threshold")
        )
        examples = load_labels(args.labels)
        grader = get_model(model_name)
    except (ConfigError, ValueError) as err:
        parser.exit(2, f"error: {err}\n")
    results = asyncio.run(classify(grader, examples, args.classifier, args.votes, args.temperature))
    shares = [share for share, _ in results]
    print(format_report(validation_report(examples, shares, args.threshold)))
    if args.out:
        import pandas as pd

        pd.DataFrame(
            {
                "id": [e.id for e in examples],
                "label": [e.af for e in examples],
                "vote_share": shares,
                "status": [status for _, status in results],
            }
        ).to_csv(args.out, index=False)
    return 0


def report(argv: list[str]) -> int:
    from analysis.report import build_report

    parser = argparse.ArgumentParser(
        prog="python -m analysis report",
        description="Write report.md, a self-contained report.html and figures (PNG, SVG).",
    )
    parser.add_argument("logs", nargs="+", metavar="LOG_PATH", help="log files or folders")
    parser.add_argument("--out", required=True, type=Path, help="folder for the report")
    parser.add_argument("--reference", type=Path, help="folder of published-value CSVs")
    args = parser.parse_args(argv)
    if args.reference is not None and not args.reference.is_dir():
        parser.exit(2, f"error: --reference {args.reference}: no such folder\n")
    if args.out.exists() and not args.out.is_dir():
        parser.exit(2, f"error: --out {args.out} is a file, not a folder\n")
    extra = {"reference_dir": args.reference} if args.reference else {}
    try:
        build_report(args.logs, args.out, progress=lambda m: print(m, flush=True), **extra)
    except (LogError, ValueError) as err:
        parser.exit(2, f"error: {err}\n")
    return 0


COMMANDS = {"validate-classifier": validate_classifier, "report": report}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]](argv[1:])
    return tabulate(argv)


if __name__ == "__main__":
    sys.exit(main())
