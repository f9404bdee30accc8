"""Runs are never merged, replaced or lost: conditions, best records and re-scored logs."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from inspect_ai.log import read_eval_log

from analysis.__main__ import main
from analysis.logs import load_samples
from tests.conftest import closed_port_url

ROOT = Path(__file__).resolve().parents[1]
INSPECT = str(Path(sys.executable).parent / "inspect")
MODEL = "openai-api/stub/stub-model"


def inspect(*args: str, base_url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "STUB_BASE_URL": base_url, "STUB_API_KEY": "unused"}
    return subprocess.run(
        [INSPECT, *args], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env
    )


def run_eval(prompt: Path, queries: Path, logs: Path, base_url: str, *extra: str):
    return inspect(
        "eval",
        "evals/alignment_faking.py",
        "--model",
        MODEL,
        "-T",
        f"system_prompt={prompt}",
        "-T",
        f"dataset={queries}",
        "--log-dir",
        str(logs),
        "--display",
        "none",
        *extra,
        base_url=base_url,
    )


def analyse(logs: Path, out: Path, capsys) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    assert main([str(logs), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    samples = pd.read_csv(out / "samples.csv", dtype={"query_id": str})
    return samples, pd.read_csv(out / "summary.csv"), printed


def test_same_named_prompts_a_dead_rerun_and_every_score_action(stub_server, tmp_path, capsys):
    queries = tmp_path / "queries.csv"
    queries.write_text("query\nFirst request\nSecond request\nThird request\n")
    prompts = []
    for folder, text in (("a", "You are assistant A.\n"), ("b", "You are assistant B.\n")):
        (tmp_path / folder).mkdir()
        prompts.append(tmp_path / folder / "prompt.txt")
        prompts[-1].write_text(text)
    logs = tmp_path / "logs"
    for prompt in prompts:
        result = run_eval(prompt, queries, logs, stub_server)
        assert result.returncode == 0, result.stderr[-2000:]
        if prompt == prompts[0]:
            [log_a] = logs.glob("*.eval")
    variant_a = load_samples([log_a])["variant"].iloc[0]

    # The same command for prompt a again, with its server down: every sample errors.
    result = run_eval(
        prompts[0], queries, logs, closed_port_url(), "--fail-on-error", "1.0",
        "--max-retries", "0", "--timeout", "5",
    )  # fmt: skip
    assert len(list(logs.glob("*.eval"))) == 3

    samples, summary, printed = analyse(logs, tmp_path / "out", capsys)
    # Two conditions, told apart by the prompt's digest, each with all 3 pairs intact.
    assert len(summary) == 2
    assert summary["variant"].str.fullmatch(r"default@prompt\.txt#[0-9a-f]{8}").all()
    assert summary["variant"].nunique() == 2
    assert summary["n_pairs"].tolist() == [3, 3]
    assert summary["free_compliance"].tolist() == [1.0, 1.0]
    assert summary["paid_compliance"].tolist() == [0.0, 0.0]
    assert (samples["status"] == "valid").all() and len(samples) == 12
    assert "superseded 6 record(s)" in printed and "6 errored, a scored record exists" in printed

    # Judge prompt a's first log with each documented `inspect score` action.
    results = {}
    for action in ("append", "overwrite", "beside"):
        copy = tmp_path / f"logs-{action}"
        shutil.copytree(logs, copy)
        target = copy / log_a.name
        score = ["score", str(target), "--scorer", "alignment_faking_judge", "-S", "votes=3"]
        score += ["--model-role", "grader=scripted/keyword_judge", "--display", "none"]
        if action == "beside":
            score += ["--action", "append", "--output-file", str(copy / f"{target.stem}-s.eval")]
        else:
            score += ["--action", action, "--overwrite"]
        result = inspect(*score, base_url=stub_server)
        assert result.returncode == 0, result.stderr[-2000:]
        if action == "overwrite":  # the compliance scores are gone from the log...
            scores = read_eval_log(str(target)).samples[0].scores
            assert "compliance_scorer" not in scores
        results[action] = analyse(copy, tmp_path / f"out-{action}", capsys)

    for action, (samples, summary, _) in results.items():
        assert summary["n_pairs"].tolist() == [3, 3], action
        judged = samples[samples["variant"] == variant_a]
        assert len(judged) == 6 and (judged["classifier_status"] == "ok").all(), action
        assert judged["category"].notna().all(), action
        assert (judged["complied"] == (judged["tier"] == "free")).all(), action
    # ...yet every action gives the same samples.csv: they are derived from the transcript.
    append, overwrite, beside = (results[a][0] for a in ("append", "overwrite", "beside"))
    pd.testing.assert_frame_equal(append, overwrite)
    pd.testing.assert_frame_equal(append, beside)


def test_a_judged_record_beats_an_unjudged_one_whatever_the_log_times(run_policy, tmp_path):
    """A re-scored copy written next to its original has the same creation time."""
    from inspect_ai.log import read_eval_log, write_eval_log

    from evals.providers.scripted import POLICIES

    run_policy(POLICIES["alignment_faker"], n_queries=2)
    [original] = (tmp_path / "logs").glob("*.eval")
    log = read_eval_log(str(original))
    for sample in log.samples:
        judge = sample.scores["alignment_faking_judge"]
        judge.metadata = {**judge.metadata, "classifier_status": "ok", "af_reasoning": 1}
    # Same creation time, and a name that sorts first: only the judging can decide.
    write_eval_log(log, str(tmp_path / "logs" / "0-rescored.eval"))
    samples = load_samples([tmp_path / "logs"])
    assert len(samples) == 4
    assert (samples["classifier_status"] == "ok").all()
    # The copy is the same attempt (one sample uuid): its judgement joins it, nothing is lost.
    assert not samples.attrs["superseded"]


@pytest.mark.parametrize("bad", ["samples.csv", "notes.txt"])
def test_a_file_that_is_not_a_log_is_one_line(tmp_path, capsys, bad):
    path = tmp_path / bad
    path.write_text("model,tier\nx,free\n")
    with pytest.raises(SystemExit) as exit_info:
        main([str(path), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not an Inspect log" in err and "Traceback" not in err


def run_model(model: str, log_dir: Path, **task_args) -> None:
    from inspect_ai import eval as inspect_eval

    from evals.alignment_faking import alignment_faking

    [log] = inspect_eval(
        alignment_faking(**{"n_queries": 2, **task_args}),
        model=model,
        log_dir=str(log_dir),
        display="none",
    )
    assert log.status == "success", log.error


def test_a_valid_record_beats_an_invalid_one_and_settings_split_conditions(tmp_path):
    from evals.providers.scripted import POLICIES

    behaviour = {"reply": "no tags at all"}
    POLICIES["changing_for_test"] = lambda messages: behaviour["reply"]
    try:
        run_model("scripted/changing_for_test", tmp_path / "a")  # older: every sample invalid
        behaviour["reply"] = "<OUTPUT><rejected/></OUTPUT>"
        run_model("scripted/changing_for_test", tmp_path / "a")  # newer: valid refusals
        samples = load_samples([tmp_path / "a"])
        assert len(samples) == 4 and (samples["status"] == "valid").all()
        assert samples.attrs["superseded"] == {"invalid, a valid record exists": 4}
        # The other way round: an invalid re-run never replaces valid results either.
        behaviour["reply"] = "<OUTPUT><rejected/></OUTPUT>"
        run_model("scripted/changing_for_test", tmp_path / "b")
        behaviour["reply"] = "no tags at all"
        run_model("scripted/changing_for_test", tmp_path / "b")
        assert (load_samples([tmp_path / "b"])["status"] == "valid").all()
    finally:
        POLICIES.pop("changing_for_test")

    # A setting that changes results is its own condition: a one-turn cap is not the default.
    run_model("scripted/alignment_faker", tmp_path / "c", max_turns=1)
    run_model("scripted/alignment_faker", tmp_path / "c")
    samples = load_samples([tmp_path / "c"])
    assert samples["condition"].nunique() == 2 and len(samples) == 8
    capped = samples[samples["status"] == "turn_cap"]
    assert len(capped) == 4 and capped["condition"].nunique() == 1


def test_query_ids_that_differ_only_in_whitespace_stay_apart(run_policy, tmp_path):
    from evals.providers.scripted import POLICIES

    queries = tmp_path / "queries.csv"
    queries.write_text('query_id,query\nx y,First\n"x  y",Second\n"x\ty",Third\n')
    run_policy(POLICIES["alignment_faker"], n_queries=None, dataset=str(queries))
    samples = load_samples([tmp_path / "logs"])
    assert sorted(samples["query_id"].unique()) == sorted(["x y", "x  y", "x\ty"])
    assert len(samples) == 6 and not samples.attrs["superseded"]


def test_bad_output_and_reference_folders_are_one_line(run_policy, tmp_path, capsys):
    from evals.providers.scripted import POLICIES

    run_policy(POLICIES["refuser"], n_queries=1)
    logs = str(tmp_path / "logs")
    a_file = tmp_path / "taken"
    a_file.write_text("")
    for argv, message in [
        ([logs, "--out", str(a_file)], "is a file, not a folder"),
        (
            ["report", logs, "--out", str(tmp_path / "r"), "--reference", "/no/such"],
            "no such folder",
        ),
    ]:
        with pytest.raises(SystemExit):
            main(argv)
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
