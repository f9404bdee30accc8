"""Every bad model name is one line that lists the providers and names the closest match,
before anything else, in every command this project owns and in its own providers under
`inspect eval`."""

from __future__ import annotations

import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

from evals.__main__ import main as evals_main
from evals.preflight import model_problem, model_providers
from evals.providers.scripted import POLICIES
from evals.study import list_studies, load_study

ROOT = Path(__file__).resolve().parents[1]
INSPECT = str(Path(sys.executable).parent / "inspect")


@pytest.fixture(scope="module")
def providers() -> str:
    found = model_providers()
    assert found is not None
    # Inspect's own, this project's, and nothing made up.
    assert {"anthropic", "openai", "openai-api", "vllm", "hf", "scripted", "gguf"} <= set(found)
    return f"(providers: {', '.join(found)})"


def test_a_model_without_a_provider(providers):
    assert model_problem("claude-3-opus-20240229") == (
        "--model claude-3-opus-20240229: no provider; write PROVIDER/MODEL, e.g. "
        f"anthropic/claude-3-opus-20240229 {providers}"
    )
    assert model_problem("gpt-4o", "--grader") == (
        f"--grader gpt-4o: no provider; write PROVIDER/MODEL, e.g. openai/gpt-4o {providers}"
    )
    assert model_problem("my-model") == (
        f"--model my-model: no provider; write PROVIDER/MODEL {providers}"
    )


def test_an_unknown_provider(providers):
    assert model_problem("antropic/claude-3-opus-20240229") == (
        "--model antropic/claude-3-opus-20240229: unknown provider 'antropic'; did you mean "
        f"anthropic/claude-3-opus-20240229? {providers}"
    )


def test_this_projects_providers_are_checked_in_full():
    assert model_problem("scripted/compiler") == (
        "--model scripted/compiler: unknown scripted policy; did you mean scripted/complier? "
        f"(policies: {', '.join(sorted(POLICIES))})"
    )
    if find_spec("llama_cpp") is not None:
        assert model_problem("gguf/gemma-3-270") == (
            "--model gguf/gemma-3-270: no such model file gemma-3-270; "
            "did you mean gguf/gemma-3-270m?"
        )


@pytest.mark.parametrize(
    "name",
    [
        "anthropic/claude-3-opus-20240229",
        "openai-api/stub/stub-model",
        "vllm/meta-llama/Llama-3.1-8B-Instruct",
        "scripted/complier",
        "none",
    ],
)
def test_good_names_pass_without_making_a_model(name):
    assert model_problem(name) is None  # no key, server or weights needed


@pytest.mark.parametrize("name", list(list_studies()))
def test_every_bundled_study_names_only_models_inspect_can_make(name):
    study = load_study(name)
    assert [m for m in [*study.models, study.grader] if m and model_problem(m)] == []


POLICY_NAMES = f"(policies: {', '.join(sorted(POLICIES))})"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--model", "scripted/compiler"],
            "model scripted/compiler: unknown scripted policy; did you mean scripted/complier?",
        ),
        (
            ["--model", "scripted/complier", "--model-role", "grader=scripted/keyword_jduge"],
            "model scripted/keyword_jduge: unknown scripted policy; did you mean "
            "scripted/keyword_judge?",
        ),
    ],
)
def test_a_typo_in_a_scripted_policy_is_one_line_in_inspect_eval(tmp_path, args, message):
    """The provider is not told whether it makes the policy or a role's model, so its line
    names no option (a grader's typo was reported as `--model`)."""
    argv = [INSPECT, "eval", "evals/alignment_faking.py", *args]
    done = subprocess.run(
        [*argv, "--log-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    assert done.stderr == f"Error: {message} {POLICY_NAMES}\n"
    assert done.stdout.strip() == "" and not list(tmp_path.glob("*.eval"))


def test_the_projects_commands_name_the_option_of_a_bad_name(capsys):
    """`study` and `estimate` know which option named the model, and say so."""
    assert model_problem("scripted/keyword_jduge", "--model-role grader=") == (
        "--model-role grader=scripted/keyword_jduge: unknown scripted policy; did you mean "
        f"scripted/keyword_judge? {POLICY_NAMES}"
    )
    argv = ["estimate", "--model", "scripted/complier"]
    assert evals_main([*argv, "--model-role", "grader=scripted/keyword_jduge"]) == 2
    assert capsys.readouterr() == (
        "",
        f"Error: {model_problem('scripted/keyword_jduge', '--model-role grader=')}\n",
    )
    if find_spec("llama_cpp") is not None:
        assert model_problem("gguf/gemma-3-270", "--grader") == (
            "--grader gguf/gemma-3-270: no such model file gemma-3-270; "
            "did you mean gguf/gemma-3-270m?"
        )


def test_every_command_refuses_bad_names_first(capsys, providers):
    bad = (
        "Error: --model claude-3-opus-20240229: no provider; write PROVIDER/MODEL, e.g. "
        f"anthropic/claude-3-opus-20240229 {providers}\n"
    )
    # estimate: every bad name at once, the grader's too, before any task is built
    # (-T n_query is wrong as well, and is not reached).
    argv = ["estimate", "--model", "claude-3-opus-20240229", "-T", "n_query=1"]
    assert evals_main([*argv, "--model-role", "grader=gpt-4o"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == bad + (
        "Error: --model-role grader=gpt-4o: no provider; write PROVIDER/MODEL, e.g. "
        f"openai/gpt-4o {providers}\n"
    )
    # study, dry run or not: before the plan is printed.
    for extra in ([], ["--dry-run"]):
        argv = ["study", "offline_demo", "--model", "claude-3-opus-20240229", *extra]
        assert evals_main(argv) == 2
        captured = capsys.readouterr()
        assert (captured.out, captured.err) == ("", bad)
