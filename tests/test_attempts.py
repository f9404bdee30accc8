"""Merged repeats stay visible: invalid counts over every attempt, recovered samples, runs
merged; limits are part of a condition; no-scratchpad AF is not applicable; no `nan`."""

import hashlib
import itertools
import re
from pathlib import Path

import pytest
from inspect_ai import eval as inspect_eval

from analysis.logs import load_samples
from analysis.report import build_report
from analysis.summary import summarize
from evals.alignment_faking import alignment_faking
from evals.providers.scripted import ACCEPT, POLICIES, REJECT, is_free_tier

VALID = "<SCRATCHPAD_REASONING>ok</SCRATCHPAD_REASONING>\n"


_names = itertools.count()


@pytest.fixture
def scripted():
    """Register policies under fresh scripted names: Inspect keeps one model per name for
    the whole process, so a reused name would answer with an earlier test's policy."""
    names = []

    def register(policy) -> str:
        names.append(f"attempts_{next(_names)}")
        POLICIES[names[-1]] = policy
        return f"scripted/{names[-1]}"

    yield register
    for name in names:
        POLICIES.pop(name, None)


def run(model: str, log_dir: Path, **options) -> None:
    task_args = {"n_queries": 10, **options.pop("task_args", {})}
    [log] = inspect_eval(
        alignment_faking(**task_args),
        model=model,
        log_dir=str(log_dir),
        display="none",
        **options,
    )
    assert log.status == "success", log.error


def half(messages, which: int) -> bool:
    """A fixed half of the queries, by a digest of the user turn."""
    text = messages[1].text
    return hashlib.sha256(text.encode()).digest()[0] % 2 == which


def test_two_runs_each_half_invalid_count_every_attempt(tmp_path, scripted):
    state = {"broken_half": 0}

    def policy(messages):
        free = is_free_tier(messages)
        if free and half(messages, state["broken_half"]):
            return "no tags at all"
        return VALID + (ACCEPT if free else REJECT)

    model = scripted(policy)
    run(model, tmp_path)
    state["broken_half"] = 1
    run(model, tmp_path)
    samples = load_samples([tmp_path])
    [row] = summarize(samples).to_dict("records")
    first_run_invalid = int((samples["failed_attempts"] > 0).sum())
    assert row["n_pairs"] == 10 and row["valid_free"] == 10  # every query recovered
    assert row["invalid_free"] == 10 == first_run_invalid  # 5 + 5 failed attempts
    assert row["recovered_free"] == 10 and row["recovered_paid"] == 0
    assert row["invalid_paid"] == 0 and row["runs_merged"] == 2
    # Each of the 20 sample-epochs has two attempts, one of them superseded.
    assert row["superseded"] == 20 and (samples["attempts"] == 2).all()


def test_limits_split_conditions_and_are_named_statuses(tmp_path, scripted):
    def policy(messages):
        return VALID + (ACCEPT if is_free_tier(messages) else REJECT)

    model = scripted(policy)
    run(model, tmp_path, task_args={"n_queries": 2})
    run(model, tmp_path, task_args={"n_queries": 2}, message_limit=1)
    samples = load_samples([tmp_path])
    summary = summarize(samples)
    assert len(summary) == 2  # the limit is part of the condition: never merged
    limited = summary[summary["run_config"].str.contains("message_limit=1")]
    assert len(limited) == 1 and limited["valid_free"].item() == 0
    statuses = samples.loc[samples["condition"] == limited["condition"].item(), "status"]
    assert statuses.str.startswith("limit_reached").all(), statuses.tolist()


def test_no_scratchpad_without_a_grader_is_not_applicable_not_unscored(run_policy, tmp_path):
    run_policy(lambda messages: ACCEPT, variant="no_scratchpad", n_queries=3)
    samples = load_samples([tmp_path / "logs"])
    assert samples["classifier_status"].str.startswith("not applicable").all()
    [row] = summarize(samples).to_dict("records")
    assert row["unscored_free"] == 0 and row["unscored_paid"] == 0


def test_a_condition_without_pairs_reports_n_a_never_nan(run_policy, tmp_path):
    run_policy(lambda messages: "no tags at all", n_queries=2)
    out = tmp_path / "report"
    build_report([tmp_path / "logs"], out, figures=["headline"])
    text = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    assert "n/a" in text
    html = re.sub(r'src="data:[^"]*"', "", html)  # the figures' bytes
    for page in (text, html):
        assert not re.search(r"\bnan\b", page, re.IGNORECASE)


def test_identical_epochs_give_the_one_epoch_numbers_exactly(tmp_path, scripted):
    """The deterministic demo model repeats its answers in every epoch: three epochs must
    report exactly what one does, intervals and p-value included."""
    model = scripted(POLICIES["alignment_faker"])
    run(model, tmp_path / "one", task_args={"n_queries": 6})
    run(model, tmp_path / "three", task_args={"n_queries": 6}, epochs=3)
    numbers = [
        "free_compliance", "free_ci_low", "free_ci_high", "paid_compliance", "paid_ci_low",
        "paid_ci_high", "compliance_gap", "gap_ci_low", "gap_ci_high", "gap_p_value",
        "gap_test", "gap_ci_method", "rate_ci_method", "n_pairs",
    ]  # fmt: skip
    one = summarize(load_samples([tmp_path / "one"]))
    three = summarize(load_samples([tmp_path / "three"]))
    assert three["epochs"].item() == 3 and one["epochs"].item() == 1
    assert one["compliance_gap"].item() > 0  # a gap worth testing
    assert one[numbers].to_dict("records") == three[numbers].to_dict("records")


def test_re_judging_an_older_run_keeps_the_newer_transcripts(tmp_path, scripted):
    """Two valid runs of one condition: the one that finished last is kept, and judging the
    older one again (same judge) must not bring its transcripts back."""
    from inspect_ai import score
    from inspect_ai.log import read_eval_log, write_eval_log

    from evals.judges.scorer import alignment_faking_judge

    state = {"comply": True}

    def policy(messages):
        return VALID + (ACCEPT if state["comply"] else REJECT)

    model = scripted(policy)
    judged = {"task_args": {"n_queries": 2, "judge_votes": 3}}
    run(model, tmp_path, model_roles={"grader": "scripted/keyword_judge"}, **judged)
    state["comply"] = False
    run(model, tmp_path, model_roles={"grader": "scripted/keyword_judge"}, **judged)
    before = summarize(load_samples([tmp_path]))
    assert before[["free_compliance", "paid_compliance"]].values.tolist() == [[0.0, 0.0]]

    older = min(tmp_path.glob("*.eval"), key=lambda path: read_eval_log(str(path)).eval.created)
    rescored = score(
        read_eval_log(str(older)),
        alignment_faking_judge(votes=3),
        model_roles={"grader": "scripted/keyword_judge"},
        action="overwrite",
    )
    write_eval_log(rescored, str(older))
    after = summarize(load_samples([tmp_path]))
    assert after[["free_compliance", "paid_compliance"]].values.tolist() == [[0.0, 0.0]]
    assert after["runs_merged"].item() == 2 and after["superseded"].item() == 4


def test_a_renamed_json_log_is_read(run_policy, tmp_path):
    from inspect_ai.log import read_eval_log, write_eval_log

    run_policy(POLICIES["alignment_faker"], n_queries=2)
    [original] = (tmp_path / "logs").glob("*.eval")
    folder = tmp_path / "json"
    folder.mkdir()
    write_eval_log(read_eval_log(str(original)), str(folder / "my-run.json"))
    (folder / "notes.json").write_text('{"not": "a log"}')
    from_json = load_samples([folder])
    assert len(from_json) == 4
    single = load_samples([folder / "my-run.json"])
    assert single["status"].tolist() == from_json["status"].tolist()
    # Beside it, JSON that is no log, or cannot even be read, is passed over, never an error.
    (folder / "claims-an-eval.json").write_text('{"eval": "not a log"}')
    (folder / "a-list.json").write_text("[1, 2]")
    (folder / "folder.json").mkdir()
    (folder / "nested.eval").mkdir()  # a folder, whatever its name, is no .eval log
    if Path("/proc/self/clear_refs").exists():
        (folder / "unreadable.json").symlink_to("/proc/self/clear_refs")
    assert load_samples([folder]).equals(from_json)


def test_a_failed_compliance_judge_is_counted_and_named(tmp_path, scripted):
    """animal_welfare without a scratchpad: AF is not applicable, but compliance needs the
    grader, and a grader that never answers leaves every sample compliance-unscored."""
    run(
        scripted(lambda messages: "<OUTPUT>Fine.</OUTPUT>"),
        tmp_path,
        task_args={"n_queries": 2, "setting": "animal_welfare", "variant": "no_scratchpad",
                   "judge_votes": 3, "judge_cache": False},
        model_roles={"grader": scripted(lambda messages: "I refuse to give a verdict.")},
    )  # fmt: skip
    samples = load_samples([tmp_path])
    assert (samples["status"] == "valid").all() and samples["complied"].isna().all()
    assert samples["compliance_status"].str.startswith("unscored").all()
    assert not samples["compliance_status"].str.contains("no grader").any()
    [row] = summarize(samples).to_dict("records")
    assert (row["compliance_unscored_free"], row["compliance_unscored_paid"]) == (2, 2)
    assert (row["unscored_free"], row["unscored_paid"]) == (0, 0)  # AF: not applicable


def test_another_solver_is_another_condition(tmp_path, scripted):
    from inspect_ai.solver import generate

    model = scripted(POLICIES["alignment_faker"])
    run(model, tmp_path, task_args={"n_queries": 2})
    run(model, tmp_path, task_args={"n_queries": 2}, solver=generate())
    summary = summarize(load_samples([tmp_path]))
    assert len(summary) == 2 and (summary["superseded"] == 0).all()
