"""Studies: a paper's experiment as data (studies/*.yaml), run with one command.

A study names its conditions (each a set of task arguments under a name that pairs with the
published rows in results/reference/), its models, generation settings, judges, the
reference files it reproduces and the figures it draws. `python -m evals study NAME` runs
every model on every condition through Inspect's `eval_set`, so running the same command
again finishes only what is missing, then writes the report with the paper overlay.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml
from inspect_ai.model import GenerateConfig
from pydantic import ValidationError

from evals.alignment_faking import alignment_faking, task_arguments
from evals.datasets import DatasetUnavailable, dataset_size
from evals.errors import ConfigError, caught_by_caller
from evals.scenario import load_scenario

STUDIES_DIR = Path(str(files("studies")))
_STUDY_KEYS = {
    "title",
    "description",
    "models",
    "models_file",
    "generate",
    "epochs",
    "judges",
    "reference",
    "figures",
    "conditions",
    "task",
}
# Task arguments a study sets itself, from its condition names, judges and paper prompts.
_STUDY_OWNED = {"label", "prompt_origin", "system_prompt", "user_turn"}
_TASK_ARGS = set(task_arguments()) - _STUDY_OWNED
GAP_TASK = "alignment_faking"
STUDY_TASKS = (GAP_TASK, "anti_lab", "lying")
"""The tasks a study may run (`task:`); the gap task by default."""
_PAPER_KEYS = {"paper_prompt", "paper_variant"}
# A paraphrase condition runs prompt files made by `python -m evals paraphrase`: `paraphrase:
# FOLDER/NAME` one of them, `paraphrases: FOLDER` one condition per file (docs/paraphrases.md).
_PARAPHRASE_KEYS = {"paraphrase", "paraphrases"}
_JUDGE_KEYS = {"grader": None, "af_classifier": "af_classifier", "votes": "judge_votes"}
_JUDGE_KEYS |= {"threshold": "af_threshold"}
PAPER_USER_TURN = "user_turn.txt"
MINUS = "\u2212"


@dataclass(frozen=True)
class Condition:
    name: str
    task_args: dict[str, Any]
    paper_prompt: str | None = None
    """Path of the published system-prompt file, relative to the folder the user gives."""
    paper_variant: str = "default"
    """The variant to run with the paper's prompt (one that changes no prompt text)."""
    paraphrase_file: str | None = None
    """The paraphrase this condition runs (its task arguments name it as `system_prompt`)."""


@dataclass(frozen=True)
class Study:
    name: str
    path: Path
    description: str
    conditions: tuple[Condition, ...]
    models: tuple[str, ...] = ()
    generate: dict[str, Any] = field(default_factory=dict)
    epochs: int = 1
    grader: str | None = None
    judge_args: dict[str, Any] = field(default_factory=dict)
    reference: tuple[str, ...] = ()
    figures: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    """What keeps the study from running though it loads (paraphrases not made yet): each
    one line, refused before the plan is printed and by every run's checks."""
    task: str = GAP_TASK


@dataclass(frozen=True)
class PlannedTask:
    """One model on one condition: what a dry run prints and what `eval_set` runs."""

    model: str
    condition: str
    task_args: dict[str, Any]
    queries: int | None
    """Queries per framing; None when the dataset cannot be read here (to be downloaded)."""
    epochs: int
    framings: tuple[str, ...] = ("free (trained)", "paid (unmonitored)")
    """Each framing a query is asked under, with its role; empty where the condition's
    variant cannot be read (its problem is reported by `check_study`)."""
    contrasts: tuple[str, ...] = ()
    """The contrasts the condition reports, as `name = a - b` (with a minus sign)."""
    prefill: bool = False
    task: str = GAP_TASK
    """Which task runs; for anti_lab and lying `queries` counts opportunities or questions,
    each asked once per epoch."""

    @property
    def samples(self) -> int | None:
        if self.queries is None:
            return None
        if self.task != GAP_TASK:
            return self.queries * self.epochs
        if not self.framings:
            return None
        return len(self.framings) * self.queries * self.epochs


def task_function(name: str) -> Any:
    """The Inspect task a study's `task:` names."""
    if name == "anti_lab":
        from evals.anti_lab import anti_lab

        return anti_lab
    if name == "lying":
        from evals.lying import lying

        return lying
    return alignment_faking


def _task_args(task: str) -> set[str]:
    from evals.task_args import parameter_names

    return set(parameter_names(task_function(task))) - _STUDY_OWNED


def list_studies() -> dict[str, str]:
    """Study name -> its one-line title."""
    return {
        path.stem: str(_read(path).get("title", "")) for path in sorted(STUDIES_DIR.glob("*.yaml"))
    }


def load_study(name: str, paraphrases: Path | None = None) -> Study:
    """A study by name (studies/NAME.yaml) or by the path of a YAML file.

    `paraphrases`: the folder of paraphrases for its `paraphrases:` condition, instead of
    the one the study names.
    """
    path = Path(name) if name.endswith((".yaml", ".yml")) else STUDIES_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"Unknown study {name!r}; choose one of: {', '.join(list_studies())} "
            "(or give the path of a study .yaml file)"
        )
    raw = _read(path)
    unknown = set(raw) - _STUDY_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown field(s) {sorted(unknown)}")
    conditions = raw.get("conditions")
    if not isinstance(conditions, dict) or not conditions:
        raise ConfigError(f"{path}: field 'conditions' must map condition names to settings")
    generate, problems = _generate(raw.get("generate"), path)
    epochs = raw.get("epochs", 1)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        problems.append(f"{path}: field 'epochs' must be an integer of at least 1, got {epochs!r}")
    if problems:  # what the run's eval_set would refuse, refused by the dry run too
        raise ConfigError.lines(problems)
    task = raw.get("task", GAP_TASK)
    if task not in STUDY_TASKS:
        raise ConfigError(f"{path}: field 'task' must be one of {', '.join(STUDY_TASKS)}")
    judge_keys = _JUDGE_KEYS if task == GAP_TASK else {"grader": None, "votes": "judge_votes"}
    judges = _mapping(raw.get("judges"), path, "judges")
    if set(judges) - set(judge_keys):
        raise ConfigError(
            f"{path}: field 'judges' takes {', '.join(judge_keys)}, not "
            f"{sorted(set(judges) - set(judge_keys))}"
        )
    waiting: list[str] = []  # paraphrases not made yet: the study loads, and will not run
    expanded = [
        c
        for n, raw_c in conditions.items()
        for c in _conditions(n, raw_c, path, paraphrases, waiting, task)
    ]
    _check_paraphrase_set(expanded, path)
    models = _models(raw, path)
    if waiting and models and all(m.startswith("scripted/") for m in models):
        waiting = [_scripted_hint(line, name) for line in waiting]
    if paraphrases is not None and not any(
        isinstance(c, dict) and "paraphrases" in c for c in conditions.values()
    ):
        raise ConfigError(
            f"--paraphrases {paraphrases}: study {path.stem!r} has no condition with "
            "'paraphrases:' to run them"
        )
    names = [c.name for c in expanded]
    if len(set(names)) < len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(f"{path}: condition name(s) {', '.join(twice)} occur twice")
    return Study(
        name=path.stem,
        path=path,
        description=str(raw.get("description", "")).strip(),
        conditions=tuple(expanded),
        models=tuple(models),
        generate=generate,
        epochs=epochs,
        grader=judges.get("grader"),
        judge_args={judge_keys[k]: v for k, v in judges.items() if judge_keys[k]},
        reference=tuple(_strings(raw.get("reference", []), path, "reference")),
        figures=tuple(_strings(raw.get("figures", []), path, "figures")),
        problems=tuple(waiting),
        task=task,
    )


def plan(
    study: Study,
    models: list[str] | None = None,
    paper_prompts: Path | None = None,
    user_turn: Path | None = None,
    n_queries: int | None = None,
    dataset: str | None = None,
) -> list[PlannedTask]:
    """Every model and condition of a study, with the exact task arguments each will run.

    `paper_prompts` is the folder holding the published prompt files at their repository
    paths; with it every condition runs on the paper's prompts instead of this project's
    wording, with the user-turn template `user_turn` (default: `user_turn.txt` there).
    `n_queries` and `dataset` override the study's, for a quick check (another dataset is
    run whole unless `n_queries` is given too).
    """
    models = models or list(study.models)
    if not models:
        raise ConfigError(f"study {study.name!r} names no models: pass --model")
    if study.task != GAP_TASK:
        given = {
            "--paper-prompts": paper_prompts,
            "--user-turn": user_turn,
            "--n-queries": n_queries,
            "--dataset": dataset,
        }
        for option, value in given.items():
            if value is not None:
                raise ConfigError(
                    f"{option}: study {study.name!r} runs the {study.task} task, which asks "
                    "its own messages (no queries, datasets or paper prompts)"
                )
        return [
            PlannedTask(
                m,
                c.name,
                {**c.task_args, **study.judge_args, "label": c.name},
                _item_count(study.task, c.task_args),
                study.epochs,
                framings=(),
                task=study.task,
            )
            for c in study.conditions
            for m in models
        ]
    if paper_prompts is not None:
        user_turn = user_turn or paper_prompts / PAPER_USER_TURN
        if not user_turn.is_file():
            raise ConfigError(
                f"no user-turn template at {user_turn}: put the published template there "
                "(see docs/studies.md, 'The paper's own prompt files') or pass --user-turn"
            )
    tasks = []
    for condition in study.conditions:
        args = {**condition.task_args, **study.judge_args, "label": condition.name}
        if dataset is not None:  # the study's sample size was for its own dataset
            args["dataset"] = dataset
            args.pop("n_queries", None)
        if n_queries is not None:
            args["n_queries"] = n_queries
        # A paraphrase keeps its own prompt file: it paraphrases this project's wording.
        if paper_prompts is not None and condition.paraphrase_file is None:
            if condition.paper_prompt is None:
                raise ConfigError(
                    f"{study.path}: condition {condition.name!r} names no paper_prompt, so it "
                    "cannot run on the paper's prompts"
                )
            args |= {
                "system_prompt": str(paper_prompts / condition.paper_prompt),
                "user_turn": str(user_turn),
                "variant": condition.paper_variant,
                "prompt_origin": "paper",
            }
        queries = _query_count(args)
        framed = _framings(args)
        tasks += [
            PlannedTask(m, condition.name, args, queries, study.epochs, *framed) for m in models
        ]
    return tasks


def _names(value: Any) -> list[str] | None:
    """The names a condition's `opportunities` or `questions` gives (a comma-separated string
    or a list, as `-T` takes them); None for all of them."""
    from evals.behaviour import split_names

    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return None
    return split_names([str(part) for part in value])


def _item_count(task: str, args: dict[str, Any]) -> int | None:
    """Opportunities or questions a behaviour condition asks (None where they cannot be
    read: the checks before the run say why)."""
    from evals.opportunities import list_opportunities, load_lying

    setting = str(args.get("setting", "helpful_only"))
    names = _names(args.get("opportunities" if task == "anti_lab" else "questions"))
    if names is not None:
        return len(names)
    try:
        with caught_by_caller():
            if task == "anti_lab":
                return len(list_opportunities(setting))
            return len(load_lying(setting).questions)
    except ConfigError:
        return None


def _framings(args: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    """(framings with their roles, contrasts, whether it prefills) of a condition's
    arguments; empty where its scenario cannot be loaded (`check_study` says why)."""
    from evals.labels import framing_role

    try:
        with caught_by_caller():
            scenario = load_scenario(
                str(args.get("setting", "helpful_only")),
                str(args.get("variant", "default")),
                system_prompt_file=args.get("system_prompt"),
                user_turn_file=args.get("user_turn"),
            )
    except ConfigError:
        return (), (), False
    return (
        tuple(f"{f.name} ({framing_role(f.told)})" for f in scenario.framings),
        tuple(f"{c.name} = {c.a} {MINUS} {c.b}" for c in scenario.contrasts),
        scenario.prefill is not None,
    )


def check_study(
    study: Study, planned: list[PlannedTask], grader: str | None = None
) -> tuple[list[Any], list[str]]:
    """Everything a study run checks before its first request, shared by the run and its dry
    run: every model name, every task built (its arguments, variant and dataset, including
    whether a dataset to download is here), every prompt against every local model's context
    window, and the report's figure and reference names. Returns the built tasks and one
    line per problem (none: the run will not stop on its configuration)."""
    from evals.preflight import check_study_context, model_problem
    from evals.solver import prefill_problem

    problems: list[str] = list(study.problems)
    models = list(dict.fromkeys(item.model for item in planned))
    problems += [p for m in models if (p := model_problem(m))]
    grader = grader or study.grader
    if grader and (problem := model_problem(grader, "--grader")):
        problems.append(problem)
    built: dict[str, Any] = {}
    keys = {json.dumps(item.task_args, sort_keys=True, default=str) for item in planned}
    for item in planned:
        key = json.dumps(item.task_args, sort_keys=True, default=str)
        if key in built:
            continue
        try:
            with caught_by_caller():
                built[key] = task_function(study.task)(**item.task_args)
        except DatasetUnavailable as missing:  # the same line for every condition
            problems.append(str(missing))
        except ConfigError as error:
            problems.append(f"condition {item.condition}: {error}")
    tasks = list(built.values())
    if len(tasks) == len(keys):  # every task built: their prompts against the local models
        try:
            check_study_context(
                [i for i in planned if not model_problem(i.model)],
                tasks,
                study.generate.get("max_tokens"),
            )
        except ConfigError as error:
            problems.append(str(error))
    problems += [
        f"condition {item.condition}: {problem}"
        for item in planned
        if item.prefill
        and (problem := prefill_problem(item.model, str(item.task_args.get("variant"))))
    ]
    problems += _report_name_problems(study)
    return tasks, list(dict.fromkeys(problems))


def _report_name_problems(study: Study) -> list[str]:
    """The study's figure and reference names, checked as the report will check them."""
    from analysis.report import FIGURES
    from analysis.tables import reference_names

    problems = []
    for field_name, names, known in (
        ("figures", study.figures, list(FIGURES)),
        ("reference", study.reference, reference_names()),
    ):
        for name in names:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"; did you mean {close[0]}?" if close else ""
                problems.append(
                    f"{study.path}: {field_name}: unknown name {name!r}{hint} "
                    f"(known: {', '.join(known)})"
                )
    return problems


def format_plan(study: Study, planned: list[PlannedTask]) -> str:
    """The dry run: every task with its sample count, and the totals."""
    gap = study.task == GAP_TASK
    asks = "queries" if gap else ("opportunities" if study.task == "anti_lab" else "questions")
    rows = [("model", "condition", "setting", "variant", "dataset", asks, "samples")]
    for item in planned:
        args = item.task_args
        rows.append(
            (
                item.model,
                item.condition,
                args.get("setting", "helpful_only"),
                args.get("variant", "default")
                + ("@" + Path(args["system_prompt"]).name if "system_prompt" in args else ""),
                Path(str(args.get("dataset", "the setting's"))).name if gap else study.task,
                "?" if item.queries is None else str(item.queries),
                "?" if item.samples is None else f"{item.samples:,}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [f"Study {study.name}: {study.description}", ""]
    lines += [
        "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows
    ]
    known = [item.samples for item in planned if item.samples is not None]
    total = f"{sum(known):,} samples" + (
        "" if len(known) == len(planned) else " (plus the tasks marked ?)"
    )
    settings = ", ".join(f"{k}={v}" for k, v in study.generate.items()) or "Inspect's defaults"
    if not gap:
        lines += ["", *_behaviour_power_lines(study, planned)]
    if gap:
        lines += [
            "",
            f"  framings and contrasts (a {MINUS} b: compliance under a minus under b, paired "
            "by query; the power lines below hold for every contrast):",
        ]
    for condition, item in {item.condition: item for item in planned}.items():
        if item.framings and gap:
            lines.append(f"    {condition}: {', '.join(item.framings)}")
            lines.append(f"      {'; '.join(item.contrasts) or 'no contrast'}")
    lines += [
        "",
        f"  {len(planned)} task(s), {total}; each sample is up to max_turns model calls",
        f"  generation: {settings}; epochs: {study.epochs}; grader: {study.grader or 'none'}",
    ]
    return "\n".join(lines)


BASELINE_VARIANT = "cut_conflicting_criteria"
ASSUMED_BASELINE = {"anti_lab": 0.01, "lying": 0.05}
"""Baseline rates the dry run's power lines assume: [P] §6 reports about 0.5% and 0.1% for
anti-lab behaviour at baseline, and 0.2% to 7.8% for lying with the criteria cut."""


def _behaviour_power_lines(study: Study, planned: list[PlannedTask]) -> list[str]:
    """What a condition against its baseline can detect, per item and pooled."""
    from analysis.power import detectable_difference

    baseline = ASSUMED_BASELINE[study.task]
    per = "opportunity" if study.task == "anti_lab" else "question"
    has_baseline = any(
        BASELINE_VARIANT in str(item.task_args.get("variant", "")).split("+") for item in planned
    )
    n = study.epochs
    found = detectable_difference(n, n, baseline)
    shown = (
        f"a difference of {found:.3f} (a rate of {baseline + found:.1%})"
        if found is not None
        else "no difference with this test"
    )
    lines = [
        f"  power (a condition against its baseline, variant {BASELINE_VARIANT}; 80% power at "
        f"0.05, baseline rate {baseline:.0%}):",
        f"    per {per}: {n} samples against {n} detect {shown} (two-sided Fisher exact test; "
        "Boschloo's test, which the report uses, detects at least as much)",
    ]
    if not has_baseline:
        lines.append(f"    no condition runs {BASELINE_VARIANT}: nothing to compare against")
    for k, what in _pooled_sizes(study, planned):
        # Pooled rows take the questions as units (an exact sign-flip test on k of them):
        # its smallest p-value is 2 / 2^k, whatever the epochs.
        smallest = 2 / 2**k
        reach = (
            f"cannot reach p < 0.05 (its smallest p is {smallest:.3g}): read the rows per {per}"
            if smallest >= 0.05
            else f"reaches p < 0.05 only when nearly all {k} move the same way (smallest p "
            f"{smallest:.3g})"
        )
        lines.append(f"    pooled over {k} {what}: the exact sign-flip test on {k} units {reach}")
    return lines


def _pooled_sizes(study: Study, planned: list[PlannedTask]) -> list[tuple[int, str]]:
    """The pooled rows the report will give: each kind of two or more opportunities of a
    condition (anti-lab), or all of a condition's questions (lying)."""
    from evals.opportunities import list_opportunities, load_opportunity

    found: dict[int, str] = {}
    for item in planned:
        setting = str(item.task_args.get("setting", "helpful_only"))
        if study.task == "lying":
            if item.queries and item.queries > 1:
                found[item.queries] = "questions"
            continue
        chosen = item.task_args.get("opportunities")
        try:
            with caught_by_caller():
                names = _names(chosen) or list(list_opportunities(setting))
                kinds = [load_opportunity(name, setting).kind for name in names]
        except ConfigError:  # listed among the dry run's problems
            continue
        for kind in set(kinds):
            if kinds.count(kind) > 1:
                found[kinds.count(kind)] = "opportunities of a kind"
    return sorted(found.items())


def all_finished(success: bool, logs: list[Any]) -> bool:
    """Whether `eval_set` finished every task: an interrupted run (Ctrl-C) can come back as a
    success with cancelled logs, and the caller must then say to run the command again."""
    return success and all(log.status == "success" for log in logs)


def run_study(
    study: Study,
    planned: list[PlannedTask],
    log_dir: Path,
    grader: str | None = None,
    display: str | None = None,
    bundle: Path | None = None,
) -> tuple[bool, Path | None]:
    """Run (or finish) the study's tasks with `eval_set`, then write its report.

    `bundle`: also write the transcripts there as a static site (analysis.bundle), before
    the report, which links each condition to them.
    Returns whether every task succeeded and the report's HTML path.
    """
    from inspect_ai import eval_set

    from analysis.__main__ import write_tables
    from analysis.report import build_report

    models = sorted({item.model for item in planned}, key=[i.model for i in planned].index)
    grader = grader or study.grader
    # Everything the dry run checks, before the first request: nothing is paid for when
    # the run would stop on its configuration (a figure name, say) at the end.
    tasks, problems = check_study(study, planned, grader)
    if problems:
        raise ConfigError.lines(problems)
    success, logs = eval_set(
        tasks=tasks,
        model=models,
        model_roles={"grader": grader} if grader else None,
        log_dir=str(log_dir),
        epochs=study.epochs,
        display=display,  # type: ignore[arg-type]
        **study.generate,
    )
    success = all_finished(success, logs)
    links = {}
    if bundle is not None:
        from analysis.bundle import BundleError, report_link, write_bundle

        try:
            write_bundle(log_dir, bundle)
        except BundleError as error:
            raise ConfigError(error.shown("--bundle")) from None
        links["bundle_dir"] = report_link(str(bundle), log_dir / "report")
    report = build_report(
        [log_dir],
        log_dir / "report",
        reference_names=list(study.reference) or None,
        figures=list(study.figures) or None,
        **links,
    )
    write_tables([log_dir], log_dir / "report")
    return success, report


def _conditions(
    name: Any,
    raw: Any,
    path: Path,
    paraphrases: Path | None,
    problems: list[str],
    task: str = GAP_TASK,
) -> list[Condition]:
    """The conditions of one entry of `conditions`: itself, or one per paraphrase file. A
    paraphrase folder without files yet is a problem of the study (`problems`), not an
    error here: the study still loads, plans its other conditions, and refuses to run."""
    if not isinstance(name, str) or not isinstance(raw, dict):
        raise ConfigError(f"{path}: condition {name!r} must map setting names to values")
    task_args = _TASK_ARGS if task == GAP_TASK else _task_args(task)
    extra = (_PAPER_KEYS, _PARAPHRASE_KEYS) if task == GAP_TASK else ()
    unknown = set(raw) - task_args - set().union(*extra)
    if unknown:
        known = sorted(task_args.union(*extra))
        close = [c for u in sorted(unknown) for c in difflib.get_close_matches(u, known, n=1)]
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        others = "".join(f"; or {', '.join(sorted(keys))}" for keys in extra)
        raise ConfigError(
            f"{path}: condition {name!r} has unknown field(s) {sorted(unknown)}{hint} ("
            f"{'' if task == GAP_TASK else task + ' '}task arguments: "
            f"{', '.join(sorted(task_args))}{others})"
        )
    args = {k: v for k, v in raw.items() if k in task_args}
    if not set(raw) & _PARAPHRASE_KEYS:
        return [Condition(name, args, raw.get("paper_prompt"), raw.get("paper_variant", "default"))]
    return _paraphrase_conditions(name, raw, args, path, paraphrases, problems)


def _paraphrase_conditions(
    name: str,
    raw: dict[str, Any],
    args: dict[str, Any],
    path: Path,
    folder_override: Path | None,
    problems: list[str],
) -> list[Condition]:
    """`paraphrase: FOLDER/NAME` (one file) or `paraphrases: FOLDER` (every file there, each
    a condition `NAME/FILE`): the file as `-T system_prompt`, `-T
    prompt_origin=paraphrase:SETID` (its set's id, which the analysis groups by), and the
    setting and scratchpad mode of the prompt it paraphrases (its provenance)."""
    from evals.paraphrase import (
        ParaphraseError,
        paraphrase_files,
        read_provenance,
        resolve_folder,
        runs_with,
        set_origin,
    )

    where = f"{path}: condition {name!r}"
    clash = sorted(set(raw) & ({"variant"} | _PAPER_KEYS)) + (
        ["paraphrase and paraphrases"] if _PARAPHRASE_KEYS <= set(raw) else []
    )
    if clash:
        raise ConfigError(
            f"{where}: a paraphrase condition takes no {', '.join(clash)} (it runs the "
            "paraphrase file as it is, with the setting of its provenance)"
        )
    key = "paraphrases" if "paraphrases" in raw else "paraphrase"
    value = raw[key]
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: field {key!r} must name a paraphrase folder or file")
    try:
        if key == "paraphrase":
            file = resolve_folder(value if value.endswith(".md") else f"{value}.md")
            if not file.is_file():
                raise ConfigError(
                    f"{where}: no paraphrase file {file} (make paraphrases with python -m "
                    "evals paraphrase; docs/paraphrases.md)"
                )
            files = [(name, file)]
        else:
            folder = folder_override or resolve_folder(value)
            files = [(f"{name}/{md.stem}", md) for md in paraphrase_files(folder)]
            if not files:
                setting = args.get("setting") or value.split("/")[0]
                problems.append(
                    f"{where}: no paraphrases in {folder} yet; make them first: python -m "
                    f"evals paraphrase --setting {setting} --n 8 --model-role "
                    "paraphraser=MODEL (docs/paraphrases.md)"
                )
        conditions = []
        for condition_name, md in files:
            made = read_provenance(md)
            if "setting" in args and args["setting"] != made["setting"]:
                raise ConfigError(
                    f"{where}: {md} paraphrases setting {made['setting']!r}, not "
                    f"{args['setting']!r}"
                )
            variant, of = runs_with(made, md)
            task_args = {
                **args,
                "setting": made["setting"],
                "variant": variant,
                "system_prompt": str(md),
                "prompt_origin": set_origin(made),
            }
            conditions.append(Condition(condition_name + of, task_args, paraphrase_file=str(md)))
    except ParaphraseError as error:
        raise ConfigError(f"{where}: {error}") from None
    return conditions


def _check_paraphrase_set(conditions: list[Condition], path: Path) -> None:
    """The study's paraphrase conditions, checked together: one set (never two pooled in
    one spread), of the prompt its canonical condition runs (the setting and variant of the
    condition named `default`, where there is one)."""
    from evals.paraphrase import (
        CANONICAL,
        ParaphraseError,
        check_one_set,
        read_provenance,
        variant_key,
    )

    files = [Path(c.paraphrase_file) for c in conditions if c.paraphrase_file is not None]
    if not files:
        return
    try:
        check_one_set(files, f"{path}: the paraphrase conditions")
        made = read_provenance(files[0])
    except ParaphraseError as error:
        raise ConfigError(str(error)) from None
    canonical = next(
        (c for c in conditions if c.name == CANONICAL and c.paraphrase_file is None), None
    )
    if canonical is None:
        return
    setting = canonical.task_args.get("setting", "helpful_only")
    variant = str(canonical.task_args.get("variant", "default"))
    if (made["setting"], variant_key(made["variant"])) != (setting, variant_key(variant)):
        raise ConfigError(
            f"{path}: the paraphrases ({files[0].parent}) rewrite setting {made['setting']}, "
            f"variant {made['variant']}, but the canonical condition {CANONICAL!r} runs setting "
            f"{setting}, variant {variant}: the memorization check compares a prompt with "
            f"paraphrases of it; run paraphrases of that variant (python -m evals paraphrase "
            f"--setting {setting} --variant {variant}), or make {CANONICAL!r} run "
            f"{made['variant']}"
        )


def _scripted_hint(line: str, study: str) -> str:
    """A study of scripted models waits for paraphrases: how to make a demo set for it."""
    head, _, rest = line.partition("; make them first:")
    setting = rest.split("--setting ", 1)[1].split()[0] if "--setting " in rest else "SETTING"
    return (
        f"{head}; for this scripted study make a demo set in a scratch folder and run it: "
        f"python -m evals paraphrase --setting {setting} --n 5 --model-role "
        "paraphraser=scripted/paraphraser --out /tmp/paraphrases, then python -m evals study "
        f"{study} --paraphrases /tmp/paraphrases (docs/paraphrases.md)"
    )


def _models(raw: dict[str, Any], path: Path) -> list[str]:
    models = _strings(raw.get("models", []), path, "models")
    if "models_file" in raw:
        file = path.parent / str(raw["models_file"])
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
        except OSError as err:
            raise ConfigError(f"{path}: models_file {file} cannot be read ({err})") from None
        models += [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    return models


def _query_count(args: dict[str, Any]) -> int | None:
    if args.get("n_queries") is not None:
        return int(args["n_queries"])
    setting = args.get("setting", "helpful_only")
    try:
        dataset = args.get("dataset") or load_scenario(setting).default_dataset
        return dataset_size(dataset, setting)  # AdvBench's is known before its download
    except ConfigError:  # a bad setting or dataset: the checks before the run say so
        return None


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


# Generation settings Inspect takes as any number of their type, but that no model takes
# below this (a reply of -5 tokens, say): the smallest value that makes sense.
_GENERATE_MINIMUM = {
    "max_tokens": 1,
    "max_connections": 1,
    "num_choices": 1,
    "best_of": 1,
    "timeout": 1,
    "attempt_timeout": 1,
    "max_retries": 0,
    "temperature": 0,
}


def _generate(value: Any, path: Path) -> tuple[dict[str, Any], list[str]]:
    """The study's generation settings as GenerateConfig reads them (eval_set builds one of
    them), and one line per setting it would refuse or no model takes."""
    generate = _mapping(value, path, "generate")
    bad = set(generate) - set(GenerateConfig.model_fields)
    if bad:
        raise ConfigError(f"{path}: field 'generate' has unknown setting(s) {sorted(bad)}")
    problems: list[str] = []
    read: dict[str, Any] = {}
    for name, given in generate.items():  # one at a time: every bad one gets its line
        shown = f"{path}: field 'generate': {name}={given!r}"
        try:
            setting = getattr(GenerateConfig(**{name: given}), name)
        except ValidationError as error:
            # A setting of several types fails once for each: its first reason is enough.
            problems.append(f"{shown}: {error.errors()[0]['msg']}")
            continue
        minimum = _GENERATE_MINIMUM.get(name)
        if minimum is not None and setting is not None and setting < minimum:
            kind = "an integer" if isinstance(setting, int) else "a number"
            problems.append(f"{shown}: must be {kind} of at least {minimum}")
        read[name] = setting
    if not problems:
        try:  # the settings together, as eval_set will read them
            GenerateConfig(**generate)
        except ValidationError as error:
            problems += [f"{path}: field 'generate': {e['msg']}" for e in error.errors()]
    # As read (a quoted number becomes one), so that the checks before the run count with it.
    return read, problems


def _mapping(value: Any, path: Path, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: field {name!r} must be a mapping")
    return dict(value)


def _strings(value: Any, path: Path, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{path}: field {name!r} must be a list of names")
    return list(value)
