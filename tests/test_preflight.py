"""Before the first request: a context too short for the prompt is refused, with numbers,
and a run of a whole dataset is announced."""

from __future__ import annotations

import logging
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from inspect_ai import eval as inspect_eval

from evals.alignment_faking import alignment_faking
from evals.preflight import LARGE_RUN, warn_if_large
from tests.stub_http import StubRequest, StubServer
from tests.stub_policy import policy_reply, text_of

ROOT = Path(__file__).resolve().parent.parent
MODEL = "org/model-x"


class LocalServer:
    """A local OpenAI-compatible server as vLLM runs one: `/v1/models` reports the served
    context (`max_model_len`), `/tokenize` counts 3 characters a token, and chat
    completions answer with the scripted policy."""

    def __init__(self, max_model_len: int) -> None:
        self.max_model_len = max_model_len

    def __call__(self, request: StubRequest) -> tuple[int, object]:
        if request.method == "GET" and request.path == "/v1/models":
            entry = {"id": MODEL, "object": "model", "max_model_len": self.max_model_len}
            return 200, {"object": "list", "data": [entry]}
        if request.method == "POST" and request.path == "/tokenize":
            prompt = request.json()["prompt"]
            count = math.ceil(len(prompt) / 3)
            return 200, {"count": count, "max_model_len": self.max_model_len, "tokens": []}
        if request.method == "POST" and request.path == "/v1/chat/completions":
            body = request.json()
            users = [text_of(m["content"]) for m in body["messages"] if m["role"] == "user"]
            message = {"role": "assistant", "content": policy_reply(users)}
            return 200, {
                "id": f"chat-{time.monotonic_ns()}",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            }
        return 404, {"error": {"message": f"no {request.method} {request.path}"}}


def chats(server: StubServer) -> list[StubRequest]:
    return [r for r in server.requests if r.path.endswith("/chat/completions")]


def inspect_cli(args: list[str], env: dict[str, str], tmp_path: Path):
    command = [sys.executable, "-m", "inspect_ai", "eval", "evals/alignment_faking.py"]
    command += [*args, "--log-dir", str(tmp_path / "logs"), "--display", "plain"]
    return subprocess.run(
        command,
        cwd=ROOT,
        env=os.environ | {"COLUMNS": "1000"} | env,  # the message is one line: keep it so
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_one_line_refusal(done, *fragments: str) -> str:
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "Traceback" not in output, output
    [line] = [ln for ln in output.splitlines() if "context window holds" in ln]
    for fragment in fragments:
        assert fragment in line, line
    return line


def test_local_server_with_a_short_context_is_refused_before_any_request(tmp_path):
    with StubServer(LocalServer(max_model_len=2048)) as server:
        done = inspect_cli(
            ["--model", f"openai-api/local/{MODEL}", "-T", "n_queries=2", "--max-tokens", "500"],
            {"LOCAL_BASE_URL": f"{server.url}/v1", "LOCAL_API_KEY": "none"},
            tmp_path,
        )
        assert chats(server) == []
        assert {r.path for r in server.requests} == {"/v1/models", "/tokenize"}
    line = assert_one_line_refusal(
        done,
        "holds 2,048 tokens (the server's /v1/models)",
        "and --max-tokens (500)",
        "counted with the server's /tokenize",
    )
    # The default system prompt is far longer than 2,048 tokens at 3 characters a token.
    system = int(line.split("system prompt (")[1].split(")")[0].replace(",", ""))
    assert system > 5000


def test_local_server_with_room_runs(tmp_path):
    with StubServer(LocalServer(max_model_len=32768)) as server:
        done = inspect_cli(
            ["--model", f"openai-api/local/{MODEL}", "-T", "n_queries=1", "--max-tokens", "500"],
            {"LOCAL_BASE_URL": f"{server.url}/v1", "LOCAL_API_KEY": "none"},
            tmp_path,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        # Two samples, each a scratchpad turn and an answer after <NEXT/>.
        assert len(chats(server)) == 4


def test_vllm_max_model_len_is_checked_against_the_prompt(tmp_path):
    """`vllm/...` with `-M max_model_len` (the server the vllm provider would start, here a
    stub standing in through VLLM_BASE_URL)."""
    with StubServer(LocalServer(max_model_len=32768)) as server:
        done = inspect_cli(
            ["--model", f"vllm/{MODEL}", "-M", "max_model_len=4096", "-T", "n_queries=1"],
            {"VLLM_BASE_URL": f"{server.url}/v1", "VLLM_API_KEY": "none"},
            tmp_path,
        )
        assert chats(server) == []
    assert_one_line_refusal(done, "holds 4,096 tokens (-M max_model_len)")


def test_vllm_server_reports_its_own_context(tmp_path):
    with StubServer(LocalServer(max_model_len=4096)) as server:
        done = inspect_cli(
            ["--model", f"vllm/{MODEL}", "-T", "n_queries=1"],
            {"VLLM_BASE_URL": f"{server.url}/v1", "VLLM_API_KEY": "none"},
            tmp_path,
        )
        assert chats(server) == []
    assert_one_line_refusal(done, "holds 4,096 tokens (the server's /v1/models)")


def test_gguf_short_n_ctx_is_refused_with_its_own_token_count(tmp_path):
    pytest.importorskip("llama_cpp", reason="needs the embedded extra")
    done = inspect_cli(
        ["--model", "gguf/gemma-3-270m", "-M", "n_ctx=4096", "-T", "n_queries=1"],
        {},
        tmp_path,
    )
    assert_one_line_refusal(
        done,
        "holds 4,096 tokens (the gguf provider's n_ctx)",
        "counted with the model's own tokenizer (llama.cpp)",
    )
    assert not list((tmp_path / "logs").glob("*.eval"))  # nothing ran, nothing was logged


def test_python_api_run_is_stopped_by_the_solver_before_any_request(tmp_path):
    """A task built before its model was chosen (Python API, eval_set with task objects):
    the solver checks each sample's own prompt before its first request."""
    task = alignment_faking(n_queries=2)
    with StubServer(LocalServer(max_model_len=2048)) as server:
        os.environ["LOCAL_BASE_URL"] = f"{server.url}/v1"
        try:
            [log] = inspect_eval(
                task,
                model=f"openai-api/local/{MODEL}",
                model_args={"api_key": "none"},
                log_dir=str(tmp_path),
                display="none",
            )
        finally:
            del os.environ["LOCAL_BASE_URL"]
        assert chats(server) == []
    assert log.status == "error"
    assert "context window holds 2,048 tokens" in str(log.error)


def test_a_whole_dataset_run_is_announced(caplog):
    with caplog.at_level(logging.WARNING, logger="evals.preflight"):
        alignment_faking()  # all 313 StrongREJECT queries, both tiers, two turns each
    [record] = caplog.records
    assert "no -T n_queries" in record.message
    assert "626 samples and about 1,252 requests" in record.message
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="evals.preflight"):
        alignment_faking(n_queries=300)  # chosen on purpose: no warning
    assert caplog.records == []


def test_large_run_threshold():
    assert not warn_if_large(LARGE_RUN, 1, None, "d")
    assert warn_if_large(LARGE_RUN // 2 + 1, 2, None, "d")
    assert not warn_if_large(10_000, 2, 5000, "d")


def test_a_study_checks_each_local_model_before_eval_set(monkeypatch):
    from evals.errors import ConfigError
    from evals.preflight import check_study_context
    from evals.study import PlannedTask

    tasks = [alignment_faking(n_queries=1)]
    planned = [
        PlannedTask("scripted/complier", "default", {"n_queries": 1}, 1, 1),
        PlannedTask(f"openai-api/local/{MODEL}", "default", {"n_queries": 1}, 1, 1),
    ]
    with StubServer(LocalServer(max_model_len=2048)) as server:
        monkeypatch.setenv("LOCAL_BASE_URL", f"{server.url}/v1")
        monkeypatch.setenv("LOCAL_API_KEY", "none")
        with pytest.raises(ConfigError, match=r"local/org/model-x: its context window holds 2,048"):
            check_study_context(planned, tasks, max_tokens=100)
        server.app.max_model_len = 32768
        check_study_context(planned, tasks, max_tokens=100)  # room enough: no error
        assert chats(server) == []


def test_the_solver_counts_a_user_turn_only_when_the_byte_bound_does_not_fit(monkeypatch):
    """Each sample's check skips the tokenizer (a server's /tokenize) when even one token a
    byte would fit, and still counts, and refuses, a turn that may not."""
    import anyio
    from inspect_ai.model import ChatMessageSystem, ChatMessageUser

    from evals import preflight
    from evals.errors import ConfigError

    counted: list[str] = []

    class ThirdCounter:  # 3 characters a token, as the stub server counts
        method, exact = "a test tokenizer", True

        def __init__(self, model: object) -> None:
            pass

        def count(self, text: str) -> int:
            counted.append(text)
            return math.ceil(len(text) / 3)

    class Api:
        pass

    class FakeModel:
        api = Api()

        def __str__(self) -> str:
            return "test/model"

    monkeypatch.setattr(preflight, "context_window", lambda model: (1000, "a test window"))
    monkeypatch.setattr(preflight, "Counter", ThirdCounter)
    model, system = FakeModel(), ChatMessageSystem(content="s" * 300)  # 100 tokens

    def check(user: str) -> None:
        messages = [system, ChatMessageUser(content=user)]
        anyio.run(preflight.check_messages, model, messages, 100)

    check("u" * 700)  # 100 + 702 + 100 fits by bytes: not counted
    assert counted == ["s" * 300]
    check("u" * 2100)  # over by bytes, 700 tokens counted: 900 fits
    assert counted[-1] == "u" * 2100
    with pytest.raises(ConfigError, match=r"the user turn \(901\) and --max-tokens \(100\)"):
        check("u" * 2703)  # 901 tokens: 1,101 needed
