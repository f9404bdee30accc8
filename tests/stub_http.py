"""A small HTTP stub for provider tests: 127.0.0.1 only, a bounded serving loop.

`StubServer(app)` serves `app(request) -> (status, body)` until the `with` block ends, at
most `max_requests` requests or `lifetime` seconds, whichever comes first. Every request is
recorded in `requests`, in arrival order. `run_inspect` runs the `inspect` CLI against it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from inspect_ai.log import EvalLog, read_eval_log


@dataclass
class StubRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


App = Callable[[StubRequest], tuple[int, Any]]
"""A reply is (status, body): bytes are sent as they are, anything else as JSON."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = StubRequest(
            method=self.command,
            path=self.path.split("?", 1)[0],
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
        )
        stub = self.server.stub
        with stub.lock:
            stub.requests.append(request)
        try:
            status, body = stub.app(request)
        except Exception as err:  # a bug in the stub: tell the client and the test
            stub.errors.append(f"{request.method} {request.path}: {type(err).__name__}: {err}")
            status, body = 500, {"error": {"message": f"stub error: {err}", "type": "stub"}}
        if isinstance(body, bytes):
            data, content_type = body, "application/octet-stream"
        else:
            data, content_type = json.dumps(body).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _serve

    def log_message(self, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    stub: StubServer


class StubServer:
    def __init__(self, app: App, max_requests: int = 2000, lifetime: float = 120.0):
        self.app = app
        self.max_requests = max_requests
        self.lifetime = lifetime
        self.requests: list[StubRequest] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.stub = self
        self._server.timeout = 0.1  # handle_request() returns this often to check the stop flag
        self._thread = threading.Thread(target=self._loop, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _loop(self) -> None:
        deadline = time.monotonic() + self.lifetime
        while (
            not self._stop.is_set()
            and len(self.requests) < self.max_requests
            and time.monotonic() < deadline
        ):
            self._server.handle_request()

    def __enter__(self) -> StubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._server.server_close()


ROOT = Path(__file__).resolve().parents[1]
INSPECT = str(Path(sys.executable).parent / "inspect")


def run_inspect(*args: str, env: dict[str, str], timeout: float = 180) -> str:
    """Run `inspect ARGS` from the repository root; return its output, failing the test on a
    non-zero exit or a run past `timeout` seconds (the child is killed then)."""
    import pytest

    try:
        result = subprocess.run(
            [INSPECT, *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **env},
        )
    except subprocess.TimeoutExpired as err:
        tail = err.stderr.decode() if isinstance(err.stderr, bytes) else err.stderr or ""
        pytest.fail(f"inspect ran past {timeout}s:\n{tail[-3000:]}")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    return output


def only_log(log_dir: Path) -> EvalLog:
    [path] = sorted(log_dir.glob("*.eval"))
    log = read_eval_log(str(path))
    assert log.status == "success", log.error
    return log
