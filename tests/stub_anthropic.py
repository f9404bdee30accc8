"""Just enough of the Anthropic Messages API (POST /v1/messages) for prompt-cache tests.

Policy requests are answered with `tests.stub_policy`, judge requests with a verdict block.
The reported usage imitates a provider prompt cache keyed by the system prompt: the first
request with a given system text writes it (`cache_creation_input_tokens`), later ones read
it (`cache_read_input_tokens`). The cache is only simulated when the request marks its
system block with `cache_control`, as the real API would.
"""

from __future__ import annotations

import itertools
import threading

from tests.stub_http import StubRequest
from tests.stub_policy import is_judge_request, judge_reply, policy_reply, text_of


def system_text(body: dict) -> str:
    system = body.get("system")
    return system if isinstance(system, str) else text_of(system)


def system_marked(body: dict) -> bool:
    """Whether the last system block carries `cache_control: {"type": "ephemeral"}`, which
    is what makes the real API cache the prefix up to and including it."""
    system = body.get("system")
    if not isinstance(system, list) or not system:
        return False
    return (system[-1].get("cache_control") or {}).get("type") == "ephemeral"


def user_texts(body: dict) -> list[str]:
    return [text_of(m["content"]) for m in body["messages"] if m["role"] == "user"]


class AnthropicStub:
    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self._written: set[str] = set()
        self._lock = threading.Lock()
        self._ids = itertools.count()

    def __call__(self, request: StubRequest) -> tuple[int, object]:
        if request.method != "POST" or request.path != "/v1/messages":
            error = {"type": "not_found_error", "message": f"no {request.path} in the stub"}
            return 404, {"type": "error", "error": error}
        body = request.json()
        with self._lock:
            self.bodies.append(body)
        if body.get("stream"):
            error = {"type": "invalid_request_error", "message": "the stub does not stream"}
            return 400, {"type": "error", "error": error}
        users = user_texts(body)
        system = system_text(body)
        if is_judge_request(users):
            text = judge_reply(system, users[-1])
        else:
            text = policy_reply(users)
        usage = {"input_tokens": 20, "output_tokens": max(1, len(text) // 4)}
        if system_marked(body):
            prefix = max(1, len(system) // 4)
            with self._lock:
                cached = system in self._written
                self._written.add(system)
            usage["cache_read_input_tokens"] = prefix if cached else 0
            usage["cache_creation_input_tokens"] = 0 if cached else prefix
        else:
            usage["input_tokens"] += len(system) // 4
        return 200, {
            "id": f"msg_stub_{next(self._ids)}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }
