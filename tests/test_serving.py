"""The GPU serving commands: built as vLLM and Ray expect them, and run against a stub
server standing in for vLLM (no GPU here)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from evals.serving import ServePlan, describe, inspect_vllm_command, ray_commands
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
