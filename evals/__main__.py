"""Command line of the eval package.

python -m evals list                    # settings, variants, datasets and studies
python -m evals study NAME [options]    # run a study (see `python -m evals study --help`)
python -m evals estimate --model M ...  # samples, tokens and dollars of a run, before it
python -m evals serve MODEL --gpus N    # commands that serve an open model with vLLM
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from evals.datasets import BUILTIN_DATASETS
from evals.errors import ConfigError
from evals.scenario import list_settings, list_variants


def list_command() -> int:
    from evals.study import list_studies

    sections = {
        "Settings (-T setting=...)": list_settings(),
        "Variants (-T variant=..., combine with +)": list_variants(),
        "Datasets (-T dataset=..., or a .csv/.jsonl path)": {
            name: f"[{d.setting}] {d.description}" for name, d in BUILTIN_DATASETS.items()
        },
        "Studies (python -m evals study NAME)": list_studies(),
    }
    for title, entries in sections.items():
        print(title)
        width = max(map(len, entries))
        for name, description in entries.items():
            print(f"  {name:<{width}}  {description}")
        print()
    return 0


def estimate_study(study: Any, planned: list[Any], grader: str | None) -> str:
    from evals.estimate import estimate_run, format_estimate, load_prices

    estimates, skipped = [], []
    for item in planned:
        try:
            estimates.append(
                estimate_run(
                    item.model,
                    item.task_args,
                    study.generate.get("max_tokens"),
                    study.epochs,
                    grader,
                )
            )
        except ConfigError as error:  # a dataset not available here yet (AdvBench)
            skipped.append(f"{item.model} / {item.condition}: {error}")
    text = format_estimate(estimates, load_prices()) if estimates else "no estimate"
    return text + "".join(f"\nnot estimated: {line}" for line in skipped)


def study_command(argv: list[str]) -> int:
    from evals.study import format_plan, load_study, plan, run_study

    parser = argparse.ArgumentParser(
        prog="python -m evals study",
        description="Run a study (studies/NAME.yaml) for one or more models with Inspect's "
        "eval_set, then write its report. Running it again finishes only the missing tasks.",
    )
    parser.add_argument("study", help="a study name (python -m evals list) or a .yaml path")
    parser.add_argument(
        "--model",
        action="append",
        help="model(s) to run, comma-separated or repeated (default: the study's own list)",
    )
    parser.add_argument("--log-dir", type=Path, help="default: logs/study-NAME")
    parser.add_argument(
        "--paper-prompts",
        type=Path,
        metavar="DIR",
        help="folder with the published prompt files at their repository paths: run every "
        "condition on the paper's prompts instead of this project's wording",
    )
    parser.add_argument(
        "--user-turn",
        type=Path,
        metavar="FILE",
        help="user-turn template for --paper-prompts (default: DIR/user_turn.txt)",
    )
    parser.add_argument("--grader", metavar="MODEL", help="judge model (default: the study's)")
    parser.add_argument("--n-queries", type=int, help="fewer queries per condition, to try it")
    parser.add_argument("--dataset", help="another dataset for every condition, to try it")
    parser.add_argument("--display", choices=["full", "rich", "plain", "log", "none"])
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print every task (model x condition x samples) and call no model",
    )
    args = parser.parse_args(argv)
    models = [m.strip() for group in args.model or [] for m in group.split(",") if m.strip()]
    try:
        study = load_study(args.study)
        planned = plan(
            study,
            models or None,
            args.paper_prompts,
            args.user_turn,
            args.n_queries,
            args.dataset,
        )
        print(format_plan(study, planned))
        if args.dry_run:
            print("\n" + estimate_study(study, planned, args.grader or study.grader))
            print("\nNothing was run (--dry-run).")
            return 0
        log_dir = args.log_dir or Path("logs") / f"study-{study.name}"
        success, report = run_study(study, planned, log_dir, args.grader, args.display)
    except ConfigError as error:
        if not error.shown:
            print(error.text, file=sys.stderr)
        return 2
    except ValueError as error:  # the report's own checks (unknown figure or reference)
        print(f"Error: {error}", file=sys.stderr)
        return 2
    print(f"\nlogs: {log_dir}\nreport: {report}")
    if not success:
        print("Some tasks did not finish: run the same command again to finish them.")
        return 1
    return 0


def estimate_command(argv: list[str]) -> int:
    import yaml

    from evals.estimate import Assumptions, estimate_run, format_estimate, load_prices

    parser = argparse.ArgumentParser(
        prog="python -m evals estimate",
        description="Samples, requests, tokens and dollars of a run, before it is made. Takes "
        "the arguments of `inspect eval evals/alignment_faking.py`.",
    )
    parser.add_argument("--model", action="append", required=True, help="model(s), as for a run")
    parser.add_argument("-T", dest="task_args", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("-M", dest="model_args", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--model-role", action="append", default=[], metavar="grader=MODEL")
    parser.add_argument("--max-tokens", type=int)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--turns", type=float, help="assumed assistant turns per sample")
    parser.add_argument("--output-tokens", type=int, help="assumed tokens per assistant turn")
    parser.add_argument(
        "--prices", type=Path, help="a price file (default: evals/data/prices.yaml)"
    )
    args = parser.parse_args(argv)

    def pairs(flag: str, items: list[str]) -> dict[str, Any]:
        values = {}
        for item in items:
            name, sep, value = item.partition("=")
            if not sep:
                parser.error(f"{flag} {item}: expected NAME=VALUE")
            values[name] = yaml.safe_load(value)  # as Inspect reads -T and -M values
        return values

    task_args, model_args = pairs("-T", args.task_args), pairs("-M", args.model_args)
    grader = next((r.split("=", 1)[1] for r in args.model_role if r.startswith("grader=")), None)
    assumptions = Assumptions(turns=args.turns, output_tokens=args.output_tokens)
    models = [m.strip() for group in args.model for m in group.split(",") if m.strip()]
    estimates = [
        estimate_run(
            model, task_args, args.max_tokens, args.epochs, grader, assumptions, model_args
        )
        for model in models
    ]
    print(format_estimate(estimates, load_prices(args.prices)))
    return 0


def serve_command(argv: list[str]) -> int:
    from evals.serving import DEFAULT_CONTEXT, ServePlan, describe

    parser = argparse.ArgumentParser(
        prog="python -m evals serve",
        description="Print the commands that serve an open model with vLLM for this eval: "
        "one machine (Inspect starts the server) or a Ray cluster of several. Other arguments "
        "(e.g. -T n_queries=100) are passed on to the eval.",
    )
    parser.add_argument(
        "model", help="Hugging Face model id, e.g. meta-llama/Llama-3.1-8B-Instruct"
    )
    parser.add_argument("--gpus", type=int, default=1, help="GPUs per machine")
    parser.add_argument("--nodes", type=int, default=1, help="machines")
    parser.add_argument("--max-model-len", type=int, default=DEFAULT_CONTEXT)
    args, task_args = parser.parse_known_args(argv)  # the rest goes to the eval, as is
    try:
        plan = ServePlan(args.model, args.gpus, args.nodes, args.max_model_len)
    except ValueError as error:
        parser.error(str(error))
    print(describe(plan, [a for a in task_args if a != "--"]))
    return 0


def main(argv: list[str]) -> int:
    try:
        if argv == ["list"]:
            return list_command()
        if argv and argv[0] == "study":
            return study_command(argv[1:])
        if argv and argv[0] == "estimate":
            return estimate_command(argv[1:])
        if argv and argv[0] == "serve":
            return serve_command(argv[1:])
    except ConfigError as error:  # a malformed study or scenario file: one line
        if not error.shown:
            print(error.text, file=sys.stderr)
        return 2
    print(__doc__.strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
