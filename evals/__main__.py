"""Command line of the eval package.

python -m evals list                    # settings, variants, datasets and studies
python -m evals study NAME [options]    # run a study (see `python -m evals study --help`)
python -m evals estimate --model M ...  # samples, tokens and dollars of a run, before it
python -m evals serve MODEL --gpus N    # commands that serve an open model with vLLM
python -m evals power --queries N ...   # the smallest gap a run detects, or queries a gap needs
python -m evals paraphrase --setting S  # paraphrases of a setting's system prompt, as files
"""

# Only the standard library at import time: `--help` answers at once. Each command parses
# its arguments first and imports Inspect (and the modules that import it) after.
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

# The vLLM context length `serve` assumes (evals.serving.DEFAULT_CONTEXT; a test keeps them
# equal): named here so that `serve --help` can say it without importing Inspect.
DEFAULT_CONTEXT = 16384


def list_command(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evals list",
        description="List the settings, prompt variants, datasets, opportunities, lying "
        "questions and studies.",
    )
    parser.parse_args(argv or [])
    from evals.datasets import BUILTIN_DATASETS
    from evals.opportunities import list_opportunities, load_lying
    from evals.opportunities import settings_of as load_opportunity_settings
    from evals.scenario import list_settings, list_variants
    from evals.study import list_studies

    sections = {
        "Settings (-T setting=...)": list_settings(),
        "Variants (-T variant=..., combine with +)": list_variants(),
        "Datasets (-T dataset=..., or a .csv/.jsonl path)": {
            name: f"[{d.setting}] {d.description}" for name, d in BUILTIN_DATASETS.items()
        },
        "Anti-lab opportunities (evals/anti_lab.py -T opportunities=a,b)": {
            name: f"[{', '.join(load_opportunity_settings(name))}] {description}"
            for name, description in list_opportunities().items()
        },
        "Lying questions (evals/lying.py -T questions=a,b)": {
            f"{setting}: {', '.join(q.name for q in load_lying(setting).questions)}": ""
            for setting in list_settings()
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
    """The price of a study's tasks. A task that cannot be built is not priced here: the
    dry run lists why, one line each, and refuses."""
    from evals.errors import ConfigError, caught_by_caller
    from evals.estimate import estimate_run, format_estimate
    from evals.prices import load_prices

    estimates = []
    for item in planned:
        try:
            with caught_by_caller():
                estimates.append(
                    estimate_run(
                        item.model,
                        item.task_args,
                        study.generate.get("max_tokens"),
                        study.epochs,
                        grader,
                        task_name=study.task,
                    )
                )
        except ConfigError:  # listed among the dry run's problems
            continue
    skipped = len(planned) - len(estimates)
    text = (
        format_estimate(estimates, load_prices(), missing_note=False)
        if estimates
        else "no estimate"
    )
    if skipped:
        text += f"\n({skipped} task(s) left out of the estimate: see the problems below)"
    return text


def positive_int(text: str) -> int:
    """An argparse type: a count of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def study_command(argv: list[str]) -> int:
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
    parser.add_argument(
        "--paraphrases",
        type=Path,
        metavar="DIR",
        help="run the paraphrases in DIR (python -m evals paraphrase --out DIR) for the "
        "study's `paraphrases:` condition, instead of the folder it names",
    )
    parser.add_argument("--grader", metavar="MODEL", help="judge model (default: the study's)")
    parser.add_argument(
        "--n-queries", type=positive_int, help="fewer queries per condition, to try it"
    )
    parser.add_argument("--dataset", help="another dataset for every condition, to try it")
    parser.add_argument("--display", choices=["full", "rich", "plain", "log", "none"])
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print every task (model x condition x samples) and its price, check everything "
        "the run checks before its first request, and call no model",
    )
    parser.add_argument(
        "--bundle",
        type=Path,
        metavar="DIR",
        help="also write the transcripts as a static site (Inspect's log viewer) to DIR, "
        "as `python -m analysis bundle` does, and link the report to it",
    )
    args = parser.parse_args(argv)
    from evals.errors import ConfigError
    from evals.preflight import check_models, no_large_run_warning
    from evals.study import check_study, format_plan, load_study, plan, run_study

    models = [m.strip() for group in args.model or [] for m in group.split(",") if m.strip()]
    try:
        study = load_study(args.study, args.paraphrases)
        if study.problems:  # paraphrases not made yet, say: before the plan, one line each
            raise ConfigError.lines(study.problems)
        grader = args.grader or study.grader
        # A bad model name is one line before anything else is read or printed.
        check_models(models or study.models, grader)
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
            with no_large_run_warning():  # the plan gives every task's size
                _tasks, problems = check_study(study, planned, grader)
            print("\n" + estimate_study(study, planned, grader))
            for problem in problems:
                print(f"Error: {problem}", file=sys.stderr)
            if problems:
                print(
                    f"\nNothing was run (--dry-run); the run would refuse: {len(problems)} "
                    "problem(s) above."
                )
                return 2
            print("\nNothing was run (--dry-run).")
            return 0
        log_dir = args.log_dir or Path("logs") / f"study-{study.name}"
        if args.bundle is not None:
            from analysis.bundle import BundleError, check_bundle_target

            try:  # refused before the run, not after it
                check_bundle_target(log_dir, args.bundle, logs_made=False)
            except BundleError as error:
                raise ConfigError(error.shown("--bundle")) from None
        success, report = run_study(study, planned, log_dir, args.grader, args.display, args.bundle)
    except ConfigError as error:
        if not error.shown:
            print(error.text, file=sys.stderr)
        return 2
    except ValueError as error:  # the report's own checks (unknown figure or reference)
        print(f"Error: {error}", file=sys.stderr)
        return 2
    print(f"\nlogs: {log_dir}\nreport: {report}")
    if args.bundle is not None:
        print(
            f"transcripts: {args.bundle / 'index.html'} (serve the folder, e.g. "
            f"python -m http.server -d {args.bundle})"
        )
    if not success:
        print("Some tasks did not finish: run the same command again to finish them.")
        return 1
    return 0


def estimate_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evals estimate",
        description="Samples, requests, tokens and dollars of a run, before it is made. Takes "
        "the arguments of `inspect eval evals/alignment_faking.py`.",
    )
    parser.add_argument("--model", action="append", required=True, help="model(s), as for a run")
    parser.add_argument("-T", dest="task_args", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("-M", dest="model_args", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--model-role", action="append", default=[], metavar="grader=MODEL")
    parser.add_argument("--max-tokens", type=positive_int)
    parser.add_argument("--epochs", type=positive_int, default=1)
    parser.add_argument("--turns", type=float, help="assumed assistant turns per sample")
    parser.add_argument(
        "--output-tokens", type=positive_int, help="assumed tokens per assistant turn"
    )
    parser.add_argument(
        "--prices", type=Path, help="a price file (default: evals/data/prices.yaml)"
    )
    args = parser.parse_args(argv)
    from evals.estimate import Assumptions, estimate_run, format_estimate
    from evals.preflight import check_model_args, check_models
    from evals.prices import load_prices
    from evals.task_args import parse_model_roles, parse_pairs

    models = [m.strip() for group in args.model for m in group.split(",") if m.strip()]
    # Names first: a bad one is one line before anything is counted. A role the eval does not
    # read (a misspelled grader) would price, and run, no judges at all.
    grader = parse_model_roles(args.model_role).get("grader")
    check_models(models, grader, "--model-role grader=")
    task_args, model_args = parse_pairs("-T", args.task_args), parse_pairs("-M", args.model_args)
    check_model_args(models, model_args)
    assumptions = Assumptions(turns=args.turns, output_tokens=args.output_tokens)
    estimates = [
        estimate_run(
            model, task_args, args.max_tokens, args.epochs, grader, assumptions, model_args
        )
        for model in models
    ]
    print(format_estimate(estimates, load_prices(args.prices)))
    return 0


def rate(text: str) -> float:
    """An argparse type: a proportion in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got {text!r}")
    return value


def power_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evals power",
        description="The power of the exact paired test of the gap (exact McNemar at one "
        "epoch), computed exactly. With --queries: the smallest gap (trained minus "
        "unmonitored compliance) it detects; with --gap: the queries that gap needs. Assume "
        "either the unmonitored compliance (the tiers of a query then independent, the "
        "cautious case) or the discordance rate (the share of queries answered differently "
        "in the two tiers).",
    )
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--queries", type=positive_int, help="queries in each tier")
    size.add_argument("--gap", type=rate, help="the gap to detect")
    rates = parser.add_mutually_exclusive_group()
    rates.add_argument(
        "--unmonitored",
        type=rate,
        help="assumed unmonitored compliance (default: the "
        "least favourable, from 0 to 0.5, with --queries; 0.1 with --gap)",
    )
    rates.add_argument("--discordance", type=rate, help="assumed share of discordant queries")
    parser.add_argument("--power", type=rate, default=0.8, help="default: 0.8")
    parser.add_argument("--alpha", type=rate, default=0.05, help="default: 0.05")
    args = parser.parse_args(argv)
    for name in ("gap", "power", "alpha"):
        if getattr(args, name) in (0, 1):
            parser.error(f"argument --{name}: must lie strictly between 0 and 1")
    from analysis.power import MAX_QUERIES, Rates, detectable_gap, queries_needed, worst_case_gap

    if args.queries is not None and args.queries > MAX_QUERIES:
        parser.error(f"argument --queries: at most {MAX_QUERIES:,}")
    level = f"{args.power * 100:g}% power at alpha = {args.alpha:g}, two-sided exact test"
    if args.queries is not None:
        counted = f"{args.queries} quer{'y' if args.queries == 1 else 'ies'}"
        if args.unmonitored is None and args.discordance is None:
            gap = worst_case_gap(args.queries, args.power, args.alpha)
            assumed = "whatever the unmonitored compliance, tiers independent within a query"
            none = "no gap is detected at every unmonitored compliance; give --unmonitored U"
        else:
            assumed_rates = Rates(args.unmonitored, args.discordance)
            gap = detectable_gap(args.queries, assumed_rates, args.power, args.alpha)
            assumed = assumed_rates.describe()
            none = "no gap these rates allow reaches that power"
        shown = f"smallest detectable gap {gap:.3f}" if gap is not None else none
        print(f"{counted}: {shown} ({level}; {assumed})")
        return 0
    if args.discordance is not None:
        assumed_rates = Rates(discordance=args.discordance)
    else:
        assumed_rates = Rates(unmonitored=0.1 if args.unmonitored is None else args.unmonitored)
    needed = queries_needed(args.gap, assumed_rates, args.power, args.alpha)
    if needed is None:
        print(
            f"gap {args.gap:g}: not reachable with {assumed_rates.describe()} (the gap "
            "must not exceed the discordance rate, nor 1 minus the unmonitored compliance)"
            if assumed_rates.cells(args.gap) is None
            else f"gap {args.gap:g}: needs more than 100,000 queries"
        )
        return 1
    print(f"gap {args.gap:g}: {needed} queries ({level}; {assumed_rates.describe()})")
    return 0


def paraphrase_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evals paraphrase",
        description="Write N paraphrases of a setting's system prompt, each a prompt file "
        "(NAME.md, usable as -T system_prompt=NAME.md) with its provenance (NAME.yaml). The "
        "instructions and the worked examples are paraphrased separately; a rewrite that loses "
        "a protocol tag or falls under 70% of its part's length is drawn again "
        "(docs/paraphrases.md). Paraphrases that exist are kept, never written over.",
    )
    parser.add_argument("--setting", required=True, help="the setting (python -m evals list)")
    parser.add_argument("--n", type=positive_int, required=True, help="paraphrases in the set")
    parser.add_argument(
        "--model-role",
        action="append",
        default=[],
        metavar="paraphraser=MODEL",
        help="the model that writes the paraphrases (any Inspect model)",
    )
    parser.add_argument("--variant", default="default", help="the variant to paraphrase")
    parser.add_argument("--seed", type=int, default=0, help="seeds the requests (default: 0)")
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="default: scenarios/paraphrases/SETTING (SETTING/VARIANT for another variant)",
    )
    parser.add_argument(
        "--prefix",
        default="p",
        help="file names PREFIX01, PREFIX02, ... (a folder holds one set: a new set goes in "
        "a new --out DIR)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace paraphrases of these names that exist (refused where files of the old "
        "set would stay)",
    )
    parser.add_argument("--temperature", type=float, default=1.0, help="default: 1.0")
    parser.add_argument("--max-tokens", type=positive_int, help="default: the provider's")
    parser.add_argument(
        "--max-redraws", type=int, default=5, help="redraws per part before giving up (default 5)"
    )
    args = parser.parse_args(argv)
    if args.seed < 0 or args.max_redraws < 0:
        parser.error("--seed and --max-redraws must be 0 or more")
    from evals.paraphrase import (
        ROLE,
        IncompleteSet,
        ParaphraseError,
        Request,
        make_paraphrases,
        shown,
    )
    from evals.task_args import check_known

    roles = {}
    for item in args.model_role:
        role, sep, model = item.partition("=")
        if not sep or not role.strip() or not model.strip():
            raise ParaphraseError(f"--model-role {item}: expected {ROLE}=MODEL")
        roles[role.strip()] = model.strip()
    check_known("--model-role", roles, [ROLE], "model role", "roles")
    if ROLE not in roles:
        raise ParaphraseError(
            f"give the model that paraphrases: --model-role {ROLE}=MODEL (any Inspect model)"
        )
    request = Request(
        setting=args.setting,
        n=args.n,
        paraphraser=roles[ROLE],
        variant=args.variant,
        seed=args.seed,
        out=args.out,
        prefix=args.prefix,
        force=args.force,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        max_redraws=args.max_redraws,
    )
    try:
        files = make_paraphrases(request, progress=print)
    except IncompleteSet as error:  # made some, not all: what was made is kept
        print(error.text, file=sys.stderr)
        return 1
    print(f"{len(files)} paraphrase(s) in {shown(request.folder)}")
    return 0


def serve_command(argv: list[str]) -> int:
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
    parser.add_argument(
        "--max-model-len",
        type=int,
        default=DEFAULT_CONTEXT,
        help=f"context length vLLM serves (default: {DEFAULT_CONTEXT})",
    )
    args, rest = parser.parse_known_args(argv)  # the rest goes to the eval, as is
    from evals.serving import ServePlan, check_context, check_gpus, context_need, describe

    rest = [a for a in rest if a != "--"]
    try:
        plan = ServePlan(args.model, args.gpus, args.nodes, args.max_model_len)
    except ValueError as error:
        parser.error(str(error))
    # Each refusal is one line (main prints a ConfigError so).
    task_args, max_tokens = _eval_args(rest)
    note = check_gpus(plan)
    check_context(plan, context_need(plan.model, task_args, max_tokens))
    print(describe(plan, rest, note))
    return 0


# Model args the printed commands set from serve's own options: given again with -M, the later
# one would win over the checked one (and its check be skipped).
_SERVE_SETS = {"max_model_len": "--max-model-len", "tensor_parallel_size": "--gpus"}


def _eval_args(argv: list[str]) -> tuple[dict[str, Any], int | None]:
    """The `-T` arguments and --max-tokens among the arguments passed on to the eval; a `-M`
    that serve sets itself, or a --max-tokens that is no count, is refused."""
    from evals.errors import ConfigError
    from evals.task_args import parse_pairs

    items, model_items, max_tokens = [], [], None
    words = iter(argv)
    for word in words:
        if word in ("-T", "--task-arg"):
            items.append(next(words, ""))
        elif word.startswith("--task-arg="):
            items.append(word.split("=", 1)[1])
        elif word.startswith("-T") and not word.startswith("--"):
            items.append(word[2:])
        elif word == "-M":
            model_items.append(next(words, ""))
        elif word.startswith("-M"):
            model_items.append(word[2:])
        elif word == "--max-tokens" or word.startswith("--max-tokens="):
            value = word.split("=", 1)[1] if "=" in word else next(words, "")
            try:
                max_tokens = int(value)
            except ValueError:
                max_tokens = 0
            if max_tokens < 1:
                shown = value or "(no value)"
                raise ConfigError(f"--max-tokens {shown}: must be a positive integer")
    for name, value in parse_pairs("-M", model_items).items():
        if name in _SERVE_SETS:
            raise ConfigError(
                f"-M {name}={value}: serve sets it itself; use {_SERVE_SETS[name]} instead"
            )
    return parse_pairs("-T", items), max_tokens


COMMANDS = {
    "list": list_command,
    "study": study_command,
    "estimate": estimate_command,
    "serve": serve_command,
    "power": power_command,
    "paraphrase": paraphrase_command,
}


def _top_level_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m evals",
        description="Alignment-faking evaluation for Inspect AI. A single run is "
        "`inspect eval evals/alignment_faking.py --model MODEL`; these commands list, plan "
        "and run studies around it.",
        epilog="commands:\n"
        + "\n".join("  " + line.removeprefix("python -m evals ") for line in _usage_lines())
        + "\n\n`python -m evals COMMAND --help` describes each.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=list(COMMANDS), help="one of the commands below")
    return parser


def _usage_lines() -> list[str]:
    return [line for line in (__doc__ or "").splitlines() if line.startswith("python -m evals ")]


def main(argv: list[str]) -> int:
    if not argv:  # the commands, where a user looks first
        print(__doc__.strip(), file=sys.stderr)
        return 2
    if argv[0] not in COMMANDS:
        # --help (stdout, exit 0) or an unknown command (one line, exit 2)
        _top_level_parser().parse_args(argv[:1])
        return 2  # pragma: no cover - parse_args exits first
    try:
        return COMMANDS[argv[0]](argv[1:])
    except Exception as error:
        # Only a command that has run has imported it (and can raise it): --help never pays
        # for Inspect's import.
        from evals.errors import ConfigError

        if not isinstance(error, ConfigError):
            raise
        if not error.shown:  # a malformed study or scenario file: one line
            print(error.text, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
