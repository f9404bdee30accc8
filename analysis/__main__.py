"""Command line for the analysis package.

python -m analysis LOG_PATH... --out DIR           # samples, summary, contrasts CSVs
python -m analysis report LOG_PATH... --out DIR    # report.md, report.html and figures
python -m analysis bundle LOG_DIR --out DIR        # the transcripts as a static site
python -m analysis validate-classifier LABELS.jsonl --model-role grader=MODEL
python -m analysis validate-judges {anti_lab,lying} [FILE] --model-role grader=MODEL
"""

# Only the standard library at import time: `--help` and a bad path answer at once. Each
# command parses and checks its arguments first, and imports pandas, Inspect and the rest
# after (the package's own modules import them).
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

LOG_SUFFIXES = (".eval", ".json")


def check_log_paths(paths: Sequence[str | Path]) -> str | None:
    """The first problem with the log paths, as analysis.logs.find_logs words it, found
    without reading a log (and so without importing Inspect); None if there is none.

    A folder passes if it holds any .eval or .json file: which of them are logs is left to
    find_logs, which reads them.
    """
    for path in map(Path, paths):
        if path.is_dir():
            if not any(
                f.suffix in LOG_SUFFIXES and f.is_file() for f in path.rglob("*") if f.suffix
            ):
                return f"{path}: folder holds no Inspect logs"
        elif path.is_file():
            if path.suffix not in LOG_SUFFIXES:
                return f"{path}: not an Inspect log (expected a .eval or .json file)"
        else:
            return f"{path}: no such log file or folder"
    return None


def _check_out(parser: argparse.ArgumentParser, out: Path) -> None:
    if out.exists() and not out.is_dir():
        parser.exit(2, f"error: --out {out} is a file, not a folder\n")


def tabulate(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis",
        description="Tabulate alignment-faking Inspect logs: per-sample rows and paired gaps.",
        epilog="other commands:\n"
        + "\n".join(f"  {name:<20} {doc}" for name, (_, doc) in COMMANDS.items())
        + "\n\n`python -m analysis COMMAND --help` describes each.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("logs", nargs="+", metavar="LOG_PATH", help="log files or folders")
    parser.add_argument("--out", required=True, type=Path, help="folder for the CSV files")
    args = parser.parse_args(argv)
    _check_out(parser, args.out)
    if problem := check_log_paths(args.logs):
        parser.exit(2, f"error: {problem}\n")
    from analysis.logs import LogError

    try:
        write_tables(args.logs, args.out)
    except LogError as err:
        parser.exit(2, f"error: {err}\n")
    return 0


def write_tables(logs: Sequence[str | Path], out: Path) -> None:
    """samples.csv, summary.csv and contrasts.csv of the alignment-faking logs, and
    anti_lab.csv, lying.csv and their *_samples.csv of the anti-lab and lying logs
    (analysis.behaviour), into `out`, and say so."""
    from analysis.behaviour import behaviour_data, write_behaviour_tables
    from analysis.logs import LogError, NoGapLogs, superseded_note
    from analysis.tables import load_reference

    behaviour = behaviour_data(list(logs), load_reference)
    try:
        _write_gap_tables(logs, out)
    except NoGapLogs:
        if behaviour.empty:
            raise LogError("the logs hold no samples") from None
    if note := superseded_note(behaviour.samples):
        print(f"anti-lab and lying logs: {note}")
    for line in write_behaviour_tables(behaviour, out):
        print(line)


def _write_gap_tables(logs: Sequence[str | Path], out: Path) -> None:
    from analysis.contrasts import contrasts_table
    from analysis.logs import SAMPLE_COLUMNS, load_samples, superseded_note
    from analysis.summary import SUMMARY_COLUMNS, summarize

    samples = load_samples(list(logs))
    if note := superseded_note(samples):
        print(note)
    summary = summarize(samples)
    out.mkdir(parents=True, exist_ok=True)
    samples[SAMPLE_COLUMNS].to_csv(out / "samples.csv", index=False)
    summary[SUMMARY_COLUMNS].to_csv(out / "summary.csv", index=False)
    contrasts_table(samples, summary).to_csv(out / "contrasts.csv", index=False)
    print(
        f"wrote {out / 'samples.csv'} ({len(samples)} rows), {out / 'summary.csv'} and "
        f"{out / 'contrasts.csv'}"
    )


def validate_classifier(argv: list[str]) -> int:
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
    from inspect_ai.model import get_model

    from analysis.validate import classify, format_report, load_labels, validation_report
    from evals.errors import ConfigError
    from evals.preflight import check_models
    from evals.task_args import check_judge_args

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
    import asyncio

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


def validate_judges(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis validate-judges",
        description="Agreement of the anti-lab or lying judge with hand-labelled transcripts, "
        "per kind (anti_lab) or setting (lying) and per key: n, agreement, unscored, Cohen's "
        "kappa and the disagreeing ids.",
    )
    parser.add_argument("task", choices=["anti_lab", "lying"], help="which judge to check")
    parser.add_argument(
        "labels",
        nargs="?",
        type=Path,
        metavar="FILE",
        help="JSONL of hand-labelled transcripts (default: the shipped set, "
        "evals/data/judge_validation/TASK.jsonl)",
    )
    parser.add_argument(
        "--model-role", required=True, metavar="grader=MODEL", help="the judge model"
    )
    parser.add_argument("--votes", type=int, default=5, help="votes per judgement (default 5)")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--out", type=Path, help="also write per-record results to this CSV")
    args = parser.parse_args(argv)
    role, sep, model_name = args.model_role.partition("=")
    if role != "grader" or not sep or not model_name:
        parser.exit(2, "error: --model-role must look like grader=PROVIDER/MODEL\n")
    if args.out is not None and args.out.is_dir():
        parser.exit(2, f"error: --out {args.out} is a folder, not a CSV file\n")
    if args.out is not None and args.out.parent.exists() and not args.out.parent.is_dir():
        parser.exit(2, f"error: --out {args.out}: {args.out.parent} is not a folder\n")
    from inspect_ai.model import get_model

    from analysis import validate_behaviour as vb
    from evals.errors import ConfigError
    from evals.preflight import check_models
    from evals.task_args import check_int, check_number

    try:
        # The model name first, as validate-classifier checks it.
        check_models([], model_name, "--model-role grader=")
        check_int("--votes", args.votes, 1)
        check_number("--temperature", args.temperature, 0)
        labels = args.labels or vb.shipped_file(args.task)
        records = vb.load_records(args.task, labels)
        # Build every record's material before any request, so a problem stops the run.
        for record in records:
            vb.prepare(args.task, record)
        grader = get_model(model_name)
    except (ConfigError, ValueError) as err:
        parser.exit(2, f"error: {err}\n")
    import asyncio

    judgements = asyncio.run(
        vb.judge_records(grader, args.task, records, args.votes, args.temperature)
    )
    print(
        f"{args.task} judge against {labels}: {len(records)} records, grader {model_name}, "
        f"{args.votes} vote(s) each"
    )
    print(vb.format_table(args.task, vb.agreement_table(args.task, records, judgements)))
    if args.out:
        import pandas as pd

        # Made here, after the judging, but before anything paid for is lost to a missing
        # folder.
        args.out.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(vb.per_record_rows(args.task, records, judgements)).to_csv(
            args.out, index=False
        )
    return 0


def report(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis report",
        description="Write report.md, a self-contained report.html and figures (PNG, SVG).",
    )
    parser.add_argument("logs", nargs="+", metavar="LOG_PATH", help="log files or folders")
    parser.add_argument("--out", required=True, type=Path, help="folder for the report")
    parser.add_argument("--reference", type=Path, help="folder of published-value CSVs")
    parser.add_argument(
        "--bundle",
        metavar="DIR_OR_URL",
        help="link each condition to its transcripts in this bundle (python -m analysis "
        "bundle LOG_DIR --out DIR), given as its folder or as the URL it is published at",
    )
    args = parser.parse_args(argv)
    if args.reference is not None and not args.reference.is_dir():
        parser.exit(2, f"error: --reference {args.reference}: no such folder\n")
    _check_out(parser, args.out)
    if problem := check_log_paths(args.logs):
        parser.exit(2, f"error: {problem}\n")
    extra: dict = {"reference_dir": args.reference} if args.reference else {}
    if args.bundle is not None:
        from analysis.bundle import BundleError, report_link

        try:
            extra["bundle_dir"] = report_link(args.bundle, args.out)
        except BundleError as err:
            parser.exit(2, f"error: --bundle {err}\n")
    from analysis.logs import LogError
    from analysis.report import build_report

    try:
        build_report(args.logs, args.out, progress=lambda m: print(m, flush=True), **extra)
    except (LogError, ValueError) as err:
        parser.exit(2, f"error: {err}\n")
    return 0


def bundle(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis bundle",
        description="Write the transcripts of a log folder as a static, self-contained site "
        "(Inspect's log viewer with the logs, made by Inspect's own bundling). Serve the "
        "folder (any static host, or `python -m http.server -d DIR`) and open index.html; "
        "each log opens directly at index.html#/logs/LOG_FILE.",
    )
    parser.add_argument("log_dir", metavar="LOG_DIR", type=Path, help="folder of Inspect logs")
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        help="folder for the site: a new or empty one, or an earlier bundle (replaced)",
    )
    args = parser.parse_args(argv)
    from analysis.bundle import BundleError, check_bundle_target, write_bundle

    try:
        check_bundle_target(args.log_dir, args.out)
        index = write_bundle(args.log_dir, args.out, overwrite=True)
    except BundleError as err:
        parser.exit(2, f"error: {err.shown('--out')}\n")
    print(f"wrote {index} (serve the folder, e.g. python -m http.server -d {args.out})")
    return 0


COMMANDS = {
    "report": (report, "report.md, report.html and figures"),
    "bundle": (bundle, "the transcripts as a static site (Inspect's viewer)"),
    "validate-classifier": (validate_classifier, "the AF classifier against labels"),
    "validate-judges": (validate_judges, "the anti-lab and lying judges against labels"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]][0](argv[1:])
    return tabulate(argv)


if __name__ == "__main__":
    sys.exit(main())
