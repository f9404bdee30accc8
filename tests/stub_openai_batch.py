"""Just enough of the OpenAI API for batch-mode tests: chat completions, and the batch
endpoints Inspect's `OpenAIBatcher` calls (inspect_ai/model/_providers/_openai_batch.py):

- `POST /v1/files` (multipart, purpose "batch"): upload the JSONL of requests;
- `POST /v1/batches`: create a batch for that file (processed at once, reported as
  `in_progress`);
- `GET /v1/batches/{id}`: poll it (`completed`, with `output_file_id` and `request_counts`);
- `GET /v1/files/{id}/content`: download the JSONL of results.

Chat completions, in or out of a batch, are answered with `tests.stub_policy`: the policy
model's reply, or for judge requests `n` choices that each hold a verdict block.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import threading
import time
from dataclasses import dataclass, field

from tests.stub_http import StubRequest
from tests.stub_policy import is_judge_request, judge_reply, policy_reply, text_of


@dataclass
class StubBatch:
    id: str
    input_file_id: str
    output_file_id: str
    endpoint: str
    bodies: list[dict]
    created: float = field(default_factory=time.monotonic)
    polls: int = 0

    @property
    def models(self) -> set[str]:
        return {body["model"] for body in self.bodies}


def user_texts(body: dict) -> list[str]:
    return [text_of(m["content"]) for m in body["messages"] if m["role"] == "user"]


def completion(body: dict, request_id: str) -> dict:
    """A chat completion for one request body."""
    users = user_texts(body)
    if is_judge_request(users):
        system = next(m for m in body["messages"] if m["role"] in ("system", "developer"))
        texts = [judge_reply(text_of(system["content"]), users[-1])] * (body.get("n") or 1)
    else:
        texts = [policy_reply(users)]
    return {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [
            {
                "index": i,
                "finish_reason": "stop",
                "logprobs": None,
                "message": {"role": "assistant", "content": text, "refusal": None},
            }
            for i, text in enumerate(texts)
        ],
        "usage": {
            "prompt_tokens": 50,
            "completion_tokens": 10 * len(texts),
            "total_tokens": 50 + 10 * len(texts),
        },
    }


def multipart_file(request: StubRequest) -> tuple[str, bytes]:
    """The (filename, content) of the `file` part of a multipart upload."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.default).parsebytes(head + request.body)
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "file":
            return part.get_filename() or "batch.jsonl", part.get_payload(decode=True)
    raise ValueError("no file part in the upload")


class OpenAIBatchStub:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, StubBatch] = {}
        self.direct: list[dict] = []
        """Chat-completion request bodies sent outside any batch."""
        self.unknown: list[str] = []
        self._ids = itertools.count()
        self._lock = threading.Lock()

    def _id(self, prefix: str) -> str:
        with self._lock:
            return f"{prefix}-stub{next(self._ids)}"

    def batch_object(self, batch: StubBatch, status: str) -> dict:
        done = status == "completed"
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": batch.endpoint,
            "completion_window": "24h",
            "created_at": int(time.time()),
            "input_file_id": batch.input_file_id,
            "status": status,
            "output_file_id": batch.output_file_id if done else None,
            "error_file_id": None,
            "errors": None,
            "request_counts": {
                "total": len(batch.bodies),
                "completed": len(batch.bodies) if done else 0,
                "failed": 0,
            },
        }

    def __call__(self, request: StubRequest) -> tuple[int, object]:
        method, path = request.method, request.path
        if method == "POST" and path == "/v1/chat/completions":
            body = request.json()
            with self._lock:
                self.direct.append(body)
            return 200, completion(body, self._id("direct"))
        if method == "POST" and path == "/v1/files":
            filename, content = multipart_file(request)
            file_id = self._id("file")
            self.files[file_id] = content
            return 200, {
                "id": file_id,
                "object": "file",
                "bytes": len(content),
                "created_at": int(time.time()),
                "filename": filename,
                "purpose": "batch",
                "status": "processed",
            }
        if method == "POST" and path == "/v1/batches":
            params = request.json()
            lines = [json.loads(line) for line in self.files[params["input_file_id"]].splitlines()]
            results = []
            for line in lines:
                assert line["url"] == params["endpoint"] == "/v1/chat/completions", line["url"]
                body = completion(line["body"], self._id("req"))
                response = {"status_code": 200, "request_id": body["id"], "body": body}
                results.append(
                    {"id": body["id"], "custom_id": line["custom_id"], "response": response}
                )
            output_id = self._id("file")
            self.files[output_id] = "".join(json.dumps(r) + "\n" for r in results).encode()
            batch = StubBatch(
                id=self._id("batch"),
                input_file_id=params["input_file_id"],
                output_file_id=output_id,
                endpoint=params["endpoint"],
                bodies=[line["body"] for line in lines],
            )
            with self._lock:
                self.batches[batch.id] = batch
            return 200, self.batch_object(batch, "in_progress")
        if method == "GET" and path.startswith("/v1/batches/"):
            batch = self.batches[path.rsplit("/", 1)[1]]
            batch.polls += 1
            return 200, self.batch_object(batch, "completed")
        if method == "GET" and path.startswith("/v1/files/") and path.endswith("/content"):
            return 200, self.files[path.split("/")[3]]
        self.unknown.append(f"{method} {path}")
        return 404, {"error": {"message": f"no {method} {path} in the stub", "type": "stub"}}
