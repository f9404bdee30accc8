"""A name that nothing takes ends the run before any model request, in one line that names it
and the closest valid name: `-T` through Inspect's own command line and eval_set, and `-T`
and `-M` in this project's commands and providers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from inspect_ai import eval_set
from inspect_ai.log import read_eval_log
from inspect_ai.model import get_model

from evals.__main__ import main as evals_main
from evals.alignment_faking import alignment_faking, task_arguments
from evals.errors import ConfigError
from evals.providers.scripted import POLICIES

ROOT = Path(__file__).resolve().parents[1]
INSPECT = str(Path(sys.executable).parent / "inspect")
VALID = (
    "(valid: af_classifier, af_threshold, cache, compliance_rule, dataset, judge_cache, "
    "judge_votes, label, max_turns, n_queries, prompt_origin, seed, setting, system_prompt, "
    "user_turn, variant)"
)
N_QUERY = f"-T n_query=2: unknown task argument; did you mean n_queries? {VALID}"


def test_the_task_lists_its_own_arguments():
    assert VALID == f"(valid: {', '.join(sorted(task_arguments()))})"


def test_a_misspelled_task_argument_ends_inspect_eval_before_any_request(
    stub_server, stub_requests, tmp_path
):
    """Through the real command line: Inspect hands the unknown name to the task's
    `**kwargs`, which refuses it; the stub server counts the requests (none)."""
    logs = tmp_path / "logs"
    argv = [INSPECT, "eval", "evals/alignment_faking.py", "--model", "openai-api/stub/stub-model"]
    done = subprocess.run(
        [*argv, "-T", "n_query=2", "--log-dir", str(logs)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "STUB_BASE_URL": stub_server, "STUB_API_KEY": "unused"},
    )
    assert done.returncode == 1
    assert done.stderr == f"Error: {N_QUERY}\n"  # one line, not wrapped at 80 columns
    assert done.stdout.strip() == ""
    assert stub_requests == []
    assert not logs.exists() or not list(logs.glob("*.eval"))


def test_eval_set_refuses_it_too(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # eval_set reads a task file by a relative path
    calls = []
    POLICIES["counting_for_args"] = lambda messages: calls.append(1) or "<OUTPUT>x</OUTPUT>"
    try:
        with pytest.raises(ConfigError) as refused:
            eval_set(
                "evals/alignment_faking.py",
                model="scripted/counting_for_args",
                task_args={"n_query": 2},
                log_dir=str(tmp_path / "logs"),
                display="none",
            )
    finally:
        POLICIES.pop("counting_for_args")
    assert str(refused.value) == N_QUERY
    assert calls == []
    assert not list((tmp_path / "logs").glob("*.eval"))


def test_the_python_api_refuses_every_unknown_name_in_one_line():
    with pytest.raises(ConfigError) as one:
        alignment_faking(n_query=2)
    assert str(one.value) == N_QUERY
    with pytest.raises(ConfigError) as two:
        alignment_faking(n_query=2, seeed=1, colour="red")
    assert str(two.value) == (
        "-T n_query=2 (did you mean n_queries?), -T seeed=1 (did you mean seed?), "
        f"-T colour=red: unknown task arguments {VALID}"
    )


def test_estimate_refuses_it_in_one_line(capsys):
    assert evals_main(["estimate", "--model", "scripted/complier", "-T", "n_query=10"]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"Error: {N_QUERY.replace('=2', '=10')}\n"
    assert captured.out == ""


def test_a_study_condition_with_a_misspelled_argument_is_refused(tmp_path, capsys):
    study = tmp_path / "study.yaml"
    study.write_text(
        "models: [scripted/complier]\nconditions:\n  default: {variant: default, n_query: 3}\n"
    )
    assert evals_main(["study", str(study), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"Error: {study}: condition 'default' has unknown field(s) ['n_query']; "
        "did you mean n_queries? (task arguments: "
    )
    assert err.count("\n") == 1


def test_the_scripted_provider_refuses_model_args(capsys):
    with pytest.raises(ConfigError, match=r"^-M temperature=1: the scripted provider takes no"):
        get_model("scripted/complier", memoize=False, temperature=1)
    capsys.readouterr()  # (printed too, where Inspect's display is `none`)
    assert evals_main(["estimate", "--model", "scripted/complier", "-M", "seed=1"]) == 2
    assert (
        capsys.readouterr().err == "Error: -M seed=1: the scripted provider takes no model args\n"
    )


def test_the_gguf_provider_names_the_closest_model_arg(capsys):
    with pytest.raises(ConfigError) as refused:
        get_model("gguf/gemma-3-270m", memoize=False, n_ctxx=4096)
    assert str(refused.value) == (
        "gguf provider: unknown model args -M n_ctxx=4096 (did you mean n_ctx?) (valid: "
        "extra_buffers, flash_attn, n_ctx, n_threads, protocol_constrained, reasoning_tokens, "
        "state_cache)"
    )
    capsys.readouterr()
    args = ["estimate", "--model", "gguf/gemma-3-270m", "-M", "n_ctxx=4096"]
    assert evals_main(args) == 2
    assert capsys.readouterr().err == f"Error: {refused.value}\n"


def test_a_task_argument_without_a_value_is_refused(capsys):
    """Inspect drops `-T n_queries` (no `=`) without a word; this project's commands don't."""
    assert evals_main(["estimate", "--model", "scripted/complier", "-T", "n_queries"]) == 2
    assert capsys.readouterr().err == "Error: -T n_queries: expected NAME=VALUE\n"


ROLE = "--model-role grder=scripted/keyword_judge: unknown model role; did you mean grader? "
ROLE += "(roles: grader)"


def test_a_misspelled_model_role_ends_inspect_eval_before_any_request(tmp_path):
    """Inspect binds any role name it is given, and the judges read only `grader`: a typo
    would run every sample unjudged. The task sees the bound roles when it is built."""
    logs = tmp_path / "logs"
    argv = [INSPECT, "eval", "evals/alignment_faking.py", "--model", "scripted/alignment_faker"]
    argv += ["-T", "n_queries=2", "--model-role", "grder=scripted/keyword_judge"]
    done = subprocess.run(
        [*argv, "--log-dir", str(logs)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 1
    assert done.stderr == f"Error: {ROLE}\n"
    assert done.stdout.strip() == ""
    assert not logs.exists() or not list(logs.glob("*.eval"))


def test_estimate_refuses_a_misspelled_model_role(capsys):
    argv = ["estimate", "--model", "scripted/complier", "-T", "n_queries=2"]
    assert evals_main([*argv, "--model-role", "grder=scripted/keyword_judge"]) == 2
    assert capsys.readouterr() == ("", f"Error: {ROLE}\n")
    assert evals_main([*argv, "--model-role", "grader"]) == 2
    assert capsys.readouterr() == (
        "",
        "Error: --model-role grader: expected ROLE=MODEL, e.g. grader=MODEL\n",
    )


@pytest.fixture(scope="module")
def scripted_log(tmp_path_factory) -> Path:
    """A small real log to re-score."""
    logs = tmp_path_factory.mktemp("scripted")
    argv = [INSPECT, "eval", "evals/alignment_faking.py", "--model", "scripted/alignment_faker"]
    done = subprocess.run(
        [*argv, "-T", "n_queries=1", "--log-dir", str(logs), "--display", "none"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [log] = logs.glob("*.eval")
    return log


JUDGE_ARGS = (
    "(valid: af_classifier, batching, cache, possible_threshold, require_grader, rule, "
    "temperature, threshold, votes)"
)


@pytest.mark.parametrize(
    ("scorer", "args", "message"),
    [
        (
            "alignment_faking_judge",
            ["vote=3"],
            f"-S vote=3: unknown scorer argument; did you mean votes? {JUDGE_ARGS}",
        ),
        (
            "alignment_faking_judge",
            ["af_classifier=papr"],
            "-S af_classifier='papr' is not one of: improved, paper",
        ),
        ("alignment_faking_judge", ["votes=0"], "-S votes=0 must be an integer of at least 1"),
        (
            "alignment_faking_judge",
            ["threshold=0.3", "possible_threshold=0.35"],
            "-S possible_threshold=0.35 must be a number from 0 to -S threshold (0.3)",
        ),
        (
            "alignment_faking_judge",
            ["batching=serial"],
            "-S batching='serial' is not one of: auto, choices, parallel",
        ),
        (
            "compliance_scorer",
            ["rul=prefix"],
            "-S rul=prefix: unknown scorer argument; did you mean rule? (valid: compliance, "
            "judge_cache, rule)",
        ),
        (
            "compliance_scorer",
            ["compliance=judg"],
            "-S compliance='judg' is not one of: tags, judge",
        ),
    ],
)
def test_inspect_score_refuses_a_bad_scorer_argument_in_one_line(
    scripted_log, tmp_path, scorer, args, message
):
    """Through the real `inspect score`: its loader reads a ValueError from a scorer as "no
    such scorer" and ends with a misleading "couldn't be loaded"; a typo was a traceback."""
    out = tmp_path / "rescored.eval"
    argv = [INSPECT, "score", str(scripted_log), "--scorer", scorer, "--action", "append"]
    argv += [word for arg in args for word in ("-S", arg)]
    argv += ["--model-role", "grader=scripted/keyword_judge", "--output-file", str(out)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert done.stderr == f"Error: {message}\n"
    assert done.stdout == ""
    assert not out.exists()


def test_a_log_re_scores_with_the_scorer_arguments_it_recorded(scripted_log, tmp_path):
    """The scorers' registered names are unchanged: `inspect score` without --scorer makes
    them again from the arguments the log recorded."""
    out = tmp_path / "rescored.eval"
    argv = [INSPECT, "score", str(scripted_log), "--action", "overwrite"]
    done = subprocess.run(
        [*argv, "--output-file", str(out), "--display", "none"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    scores = {score.name: score.params for score in read_eval_log(str(out)).results.scores}
    assert scores == {
        score.name: score.params for score in read_eval_log(str(scripted_log)).results.scores
    }
    assert set(scores["alignment_faking_judge"]) >= {"af_classifier", "votes", "threshold"}


def test_the_scorers_refuse_unknown_arguments_from_python():
    from evals.judges.scorer import alignment_faking_judge
    from evals.scorer import compliance_scorer

    with pytest.raises(ConfigError) as refused:
        alignment_faking_judge(vote=3)
    assert (
        str(refused.value)
        == f"-S vote=3: unknown scorer argument; did you mean votes? {JUDGE_ARGS}"
    )
    with pytest.raises(ConfigError, match=r"^-S rule='loose' is not one of: strict, prefix$"):
        compliance_scorer(rule="loose")
