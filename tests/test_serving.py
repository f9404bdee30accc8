"""The GPU serving commands: built as vLLM and Ray expect them, and run against a stub
server standing in for vLLM (no GPU here)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from evals.__main__ import main as evals_main
from evals.datasets import load_queries
from evals.scenario import load_scenario
from evals.serving import (
    ServePlan,
    attention_heads,
    describe,
    inspect_vllm_command,
    ray_commands,
)
from tests.stub_http import StubServer
from tests.test_preflight import LocalServer, chats

ROOT = Path(__file__).resolve().parent.parent
MODEL = "org/model-x"  # LocalServer's model id


def serve(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "evals", "serve", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_one_machine_uses_inspects_vllm_provider_with_tensor_parallelism():
    command = inspect_vllm_command(ServePlan(MODEL, gpus=4, max_model_len=32768), ["-T", "x=1"])
    assert command == [
        "inspect", "eval", "evals/alignment_faking.py", "--model", f"vllm/{MODEL}",
        "-M", "tensor_parallel_size=4", "-M", "max_model_len=32768",
        "-M", "enable_prefix_caching=true", "-T", "x=1",
    ]  # fmt: skip


def test_a_cluster_uses_vllms_ray_executor_across_machines():
    head, worker, server = ray_commands(ServePlan("meta/405b", gpus=8, nodes=2), head="10.0.0.1")
    assert head == ["ray", "start", "--head", "--port=6379"]
    assert worker == ["ray", "start", "--address=10.0.0.1:6379"]
    assert server == [
        "vllm", "serve", "meta/405b",
        "--tensor-parallel-size", "8", "--pipeline-parallel-size", "2",
        "--distributed-executor-backend", "ray",
        "--max-model-len", "16384", "--enable-prefix-caching", "--port", "8000",
    ]  # fmt: skip


def test_plan_rejects_impossible_sizes():
    with pytest.raises(ValueError, match="at least 1"):
        ServePlan(MODEL, gpus=0)
    done = serve(MODEL, "--nodes", "0")
    assert done.returncode == 2
    assert "gpus, nodes and max_model_len must be at least 1" in done.stderr
    assert "Traceback" not in done.stderr


def printed_commands(output: str) -> list[str]:
    return [line for line in output.splitlines() if line and not line.startswith("#")]


def run_printed(command: str, env: dict[str, str], tmp_path: Path):
    """Run a printed `inspect eval` line (leading VAR=value words become the environment)."""
    words = shlex.split(command)
    while "=" in words[0] and not words[0].startswith("-"):
        name, value = words.pop(0).split("=", 1)
        env.setdefault(name, value)
    assert words[:2] == ["inspect", "eval"]
    argv = [sys.executable, "-m", "inspect_ai", *words[1:], "--log-dir", str(tmp_path)]
    return subprocess.run(
        argv, cwd=ROOT, env=os.environ | env, capture_output=True, text=True, timeout=300
    )


def test_the_printed_single_gpu_command_runs_against_a_vllm_stand_in(tmp_path):
    done = serve(MODEL, "--gpus", "2", "-T", "n_queries=1")
    assert done.returncode == 0, done.stderr
    [command] = printed_commands(done.stdout)
    with StubServer(LocalServer(max_model_len=16384)) as server:
        # VLLM_BASE_URL makes Inspect's vllm provider use this server instead of starting one.
        ran = run_printed(command, {"VLLM_BASE_URL": f"{server.url}/v1"}, tmp_path)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert len(chats(server)) == 4  # 2 samples x (scratchpad turn + answer)
        assert chats(server)[0].json()["model"] == MODEL


def test_the_printed_cluster_commands_end_with_an_eval_against_the_head(tmp_path):
    done = serve(MODEL, "--gpus", "8", "--nodes", "2", "-T", "n_queries=1")
    assert done.returncode == 0, done.stderr
    head, worker, vllm, evaluation = printed_commands(done.stdout)
    assert head.startswith("ray start --head") and worker.startswith("ray start --address=")
    assert "--distributed-executor-backend ray" in vllm
    assert "--pipeline-parallel-size 2" in vllm and "--tensor-parallel-size 8" in vllm
    assert evaluation.startswith("LOCAL_BASE_URL=http://HEAD_IP:8000/v1 ")
    with StubServer(LocalServer(max_model_len=16384)) as server:
        pointed = evaluation.replace("http://HEAD_IP:8000", server.url)
        ran = run_printed(pointed, {}, tmp_path)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert len(chats(server)) == 4


def test_describe_says_what_to_run_where():
    text = describe(ServePlan(MODEL, gpus=8, nodes=3), [])
    assert "# 3 machines with 8 GPU(s) each" in text
    assert "# on each of the other 2 machine(s):" in text


def test_a_vllm_prefix_is_taken_off_not_doubled(capsys):
    assert evals_main(["serve", f"vllm/{MODEL}"]) == 0
    [command] = printed_commands(capsys.readouterr().out)
    assert f"--model vllm/{MODEL} " in command and "vllm/vllm/" not in command
    assert ServePlan(f"vllm/{MODEL}").model == MODEL


def _need(dataset: str) -> tuple[int, int]:
    """The system prompt and the longest user turn, at 4 characters a token, worked out
    here from the scenario and the dataset themselves."""
    scenario = load_scenario("helpful_only")
    turns = [
        scenario.user_turn(q.text, free_tier=tier)
        for q in load_queries(dataset, "helpful_only")
        for tier in (True, False)
    ]
    return -(-len(scenario.system_prompt) // 4), max(-(-len(t) // 4) for t in turns)


def test_a_context_too_small_for_the_prompt_is_refused_with_the_numbers(capsys):
    system, user = _need("strongreject")
    assert system > 5000  # the prompt alone
    assert evals_main(["serve", MODEL, "--max-model-len", "4096"]) == 2
    captured = capsys.readouterr()
    need = system + user + 1000
    assert captured.out == ""
    assert captured.err == (
        f"Error: --max-model-len 4096 is too small for this eval: the system prompt "
        f"({system:,} tokens), the longest user turn ({user:,}) and a reply of 1,000 (assumed; "
        f"--max-tokens sets it) need {need:,} (counted with estimate: 4 characters a token); "
        f"give at least {need:,} (the default, 16,384, fits)\n"
    )
    # The eval's own -T arguments and --max-tokens set the need; exactly enough passes.
    system, user = _need("harmbench")
    need = system + user + 2000
    args = ["serve", MODEL, "-T", "dataset=harmbench", "--max-tokens", "2000"]
    assert evals_main([*args, "--max-model-len", str(need - 1)]) == 2
    assert f"need {need:,} " in capsys.readouterr().err
    assert evals_main([*args, "--max-model-len", str(need)]) == 0
    # ... and a misspelled one is refused as the eval would refuse it.
    assert evals_main(["serve", MODEL, "-T", "n_query=3"]) == 2
    assert "-T n_query=3: unknown task argument; did you mean n_queries?" in (
        capsys.readouterr().err
    )


def test_a_gpu_count_that_cannot_split_the_heads_is_refused(tmp_path, monkeypatch, capsys):
    local = tmp_path / "my-model"
    local.mkdir()
    (local / "config.json").write_text('{"num_attention_heads": 24}')
    assert evals_main(["serve", str(local), "--gpus", "16"]) == 2
    assert capsys.readouterr().err == (
        f"Error: --gpus 16 cannot split the 24 attention heads of {local}: the tensor parallel "
        "size must divide them; use 1, 2, 3, 4, 6, 8 or 12 GPU(s) per machine\n"
    )
    assert evals_main(["serve", str(local), "--gpus", "4"]) == 0
    assert "note:" not in capsys.readouterr().out
    # From the Hugging Face cache (a multimodal model keeps it in its text config).
    hub = tmp_path / "hub"
    snapshot = hub / "models--org--vision-x" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text('{"text_config": {"num_attention_heads": 8}}')
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    assert attention_heads("org/vision-x") == 8
    assert evals_main(["serve", "org/vision-x", "--gpus", "3", "--nodes", "2"]) == 2
    assert "cannot split the 8 attention heads of org/vision-x" in capsys.readouterr().err
    # Not here: the rule, as a note above the commands.
    assert attention_heads(MODEL) is None
    assert evals_main(["serve", MODEL, "--gpus", "3"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        "# note: --gpus 3 is the tensor parallel size, which must divide the model's number "
        "of attention heads (usually a power of two: 1, 2, 4 or 8 GPUs); its config.json is "
        "not here to check"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["-M", "max_model_len=4096"],
            "-M max_model_len=4096: serve sets it itself; use --max-model-len instead",
        ),
        (
            ["-Mmax-model-len=4096"],
            "-M max_model_len=4096: serve sets it itself; use --max-model-len instead",
        ),
        (
            ["-M", "tensor_parallel_size=3"],
            "-M tensor_parallel_size=3: serve sets it itself; use --gpus instead",
        ),
        (["--max-tokens=abc"], "--max-tokens abc: must be a positive integer"),
        (["--max-tokens", "0"], "--max-tokens 0: must be a positive integer"),
        (["--max-tokens"], "--max-tokens (no value): must be a positive integer"),
    ],
)
def test_what_serve_sets_itself_or_cannot_read_is_refused(capsys, args, message):
    """A second -M max_model_len would win over the checked one in the printed command (and
    a second tensor_parallel_size skip the GPU check); a --max-tokens that is no count
    would be passed on unchecked."""
    assert evals_main(["serve", "meta-llama/Llama-3.1-8B-Instruct", *args]) == 2
    assert capsys.readouterr() == ("", f"Error: {message}\n")
    assert evals_main(["serve", MODEL, "--nodes", "2", *args]) == 2  # the cluster's eval too
    assert capsys.readouterr() == ("", f"Error: {message}\n")


def test_other_model_args_are_passed_on(capsys):
    assert evals_main(["serve", MODEL, "-M", "gpu_memory_utilization=0.8"]) == 0
    [command] = printed_commands(capsys.readouterr().out)
    assert command.endswith("-M enable_prefix_caching=true -M gpu_memory_utilization=0.8")
