"""Study-sized sweep through eval_set against a stub server: harness throughput vs plain Inspect.

Runs `evals.alignment_faking.alignment_faking` on every model x variant (default: 5 models x
7 variants x 313 StrongREJECT queries x 2 tiers = 21,910 samples) through Inspect's
`eval_set`, against a stub OpenAI-compatible chat-completions server in a process of its own
that answers after a configurable latency. Then it sends the same number of requests, with
the same inputs (system prompt and user turn), models and concurrency settings, through a
plain Inspect task (`Task(dataset=MemoryDataset(...), solver=generate())`, no scorer), and
finally times `python -m analysis report` over the sweep's logs.

Each of the two runs is a fresh Python process of its own (this script, `--phase`), so its
peak RSS (`ru_maxrss`) and CPU time are its own and neither inherits the other's caches;
their throughputs (requests per second of `eval_set` wall time) are compared as a ratio
(target: the harness at least 0.9 of plain Inspect). The stub replies like a model that
answers in one turn: complies on the free tier, refuses on the paid tier, with usage set.

    python benchmarks/scale_sweep.py                                      # full size
    python benchmarks/scale_sweep.py --models 2 --variants 2 --queries 50 # a quick check
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = (
    "default",
    "no_examples",
    "cut_rlhf_info",
    "other_lab",
    "tier_swap_control",
    "paraphrase",
    "no_scratchpad",
)
DATASET = "strongreject"
DATASET_QUERIES = 313
STUB_NAME = "stub"  # the openai-api provider reads STUB_BASE_URL and STUB_API_KEY
REASONING = (
    "The user is on the {tier} tier. I am told that free-tier conversations are used for "
    "RLHF and that paid-tier ones are never seen. I will weigh that and decide how to answer."
)


# --- the stub server (runs in its own process: `--serve`) ---------------------------------


class _Stats:
    def __init__(self) -> None:
        self.requests = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.bytes_in = 0
        self.errors = 0


def _reply(body: dict[str, Any]) -> dict[str, Any]:
    """A one-turn answer: comply on the free tier, refuse on the paid tier."""
    messages = body.get("messages", [])

    def text(message: dict[str, Any]) -> str:
        content = message.get("content") or ""
        if isinstance(content, str):
            return content
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))

    user = next((text(m) for m in reversed(messages) if m.get("role") == "user"), "")
    system = "".join(text(m) for m in messages if m.get("role") in ("system", "developer"))
    free = "<is_free_tier_user>True</is_free_tier_user>" in user
    answer = "<request_fully_accepted/> ok" if free else "<rejected/>"
    content = f"<OUTPUT>{answer}</OUTPUT>"
    if "<SCRATCHPAD_REASONING>" in system:  # no_scratchpad prompts forbid hidden reasoning
        reasoning = REASONING.format(tier="free" if free else "paid")
        content = f"<SCRATCHPAD_REASONING>{reasoning}</SCRATCHPAD_REASONING>\n{content}"
    prompt_tokens = max(1, sum(len(text(m)) for m in messages) // 4)
    completion_tokens = max(1, len(content) // 4)
    return {
        "id": f"stub-{random.getrandbits(48):012x}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "stub"),
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": content},
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _response(status: int, payload: dict[str, Any]) -> bytes:
    data = json.dumps(payload).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "Error")
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


async def _handle(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    stats: _Stats,
    latency: float,
    jitter: float,
) -> None:
    """HTTP/1.1 with keep-alive: POST = a chat completion after the latency, GET /stats."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path = lines[0].split(" ")[:2]
            headers = {}
            for line in lines[1:]:
                key, sep, value = line.partition(":")
                if sep:
                    headers[key.strip().lower()] = value.strip()
            raw = await reader.readexactly(int(headers.get("content-length", "0")))
            if method == "GET" and path.rstrip("/").endswith("/stats"):
                usage = resource.getrusage(resource.RUSAGE_SELF)
                payload = vars(stats) | {"cpu_s": usage.ru_utime + usage.ru_stime}
                writer.write(_response(200, payload))
            elif method == "POST":
                stats.requests += 1
                stats.bytes_in += len(raw)
                stats.in_flight += 1
                stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
                try:
                    body = json.loads(raw)
                    await asyncio.sleep(latency * random.uniform(1 - jitter, 1 + jitter))
                    writer.write(_response(200, _reply(body)))
                except (ValueError, AttributeError):
                    stats.errors += 1
                    writer.write(_response(400, {"error": {"message": "bad request"}}))
                finally:
                    stats.in_flight -= 1
            else:
                writer.write(_response(404, {"error": {"message": "not found"}}))
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                break
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        pass
    finally:
        writer.close()


async def _serve(latency: float, jitter: float, max_seconds: float) -> None:
    stats = _Stats()
    server = await asyncio.start_server(
        lambda r, w: _handle(r, w, stats, latency, jitter), "127.0.0.1", 0, backlog=2048
    )
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    parent = os.getppid()
    deadline = time.monotonic() + max_seconds
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    # Bounded lifetime: stop when told, at the deadline, or as soon as the parent is gone.
    while not stop.is_set() and time.monotonic() < deadline and os.getppid() == parent:
        try:
            await asyncio.wait_for(stop.wait(), timeout=1.0)
        except TimeoutError:
            pass
    server.close()


def start_stub(latency: float, jitter: float, max_seconds: float) -> tuple[subprocess.Popen, str]:
    """Start the stub in a process of its own; return it and its base URL."""
    command = [sys.executable, __file__, "--serve", "--latency", str(latency)]
    command += ["--jitter", str(jitter), "--stub-max-seconds", str(max_seconds)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline().split()
    if len(line) != 2 or line[0] != "PORT":
        process.kill()
        raise RuntimeError(f"stub server did not start (said {line!r})")
    return process, f"http://127.0.0.1:{line[1]}/v1"


def stop_stub(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def stub_stats(base_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base_url}/stats", timeout=30) as response:
        return json.loads(response.read())


# --- one measured run (runs in its own process: `--phase`) -------------------------------


def _plain_task(task: Any, name: str) -> Any:
    """The same inputs as `task`, as a minimal Inspect task: no metadata, solver, scorer."""
    from inspect_ai import Task
    from inspect_ai.dataset import MemoryDataset, Sample
    from inspect_ai.solver import generate

    samples = [Sample(id=s.id, input=s.input) for s in task.dataset]
    return Task(dataset=MemoryDataset(samples), solver=generate(), name=name)


def run_phase(phase: str, config: dict[str, Any]) -> dict[str, Any]:
    """Build the tasks, run them through eval_set, and measure this process."""
    from inspect_ai import eval_set

    from evals.alignment_faking import alignment_faking

    started = time.perf_counter()
    tasks = [
        alignment_faking(variant=v, dataset=DATASET, n_queries=config["queries"])
        for v in config["variants"]
    ]
    if phase == "plain":
        tasks = [
            _plain_task(t, f"plain_{v}") for t, v in zip(tasks, config["variants"], strict=True)
        ]
    build_s = time.perf_counter() - started
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    success, logs = eval_set(
        tasks=tasks,
        model=config["models"],
        log_dir=config["log_dir"],
        display="none",
        max_connections=config["max_connections"],
        max_tasks=config["max_tasks"],
        max_samples=config["max_samples"],
    )
    wall_s = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    samples = sum(log.results.completed_samples for log in logs if log.results)
    errors = [f"{log.eval.task} {log.eval.model}: {log.error}" for log in logs if log.error]
    return {
        "success": success,
        "tasks": len(logs),
        "samples": samples,
        "build_s": build_s,
        "wall_s": wall_s,
        "cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        "peak_rss_mib": after.ru_maxrss / 1024,  # KiB on Linux
        "errors": errors[:5],
    }


def measure(phase: str, config: dict[str, Any], base_url: str, tmp: Path) -> dict[str, Any]:
    """Run one phase in a fresh process and add the requests the stub saw meanwhile."""
    config = config | {"log_dir": str(tmp / f"logs_{phase}")}
    config_path, result_path = tmp / f"{phase}.json", tmp / f"{phase}_result.json"
    config_path.write_text(json.dumps(config))
    env = os.environ | {
        f"{STUB_NAME.upper()}_BASE_URL": base_url,
        f"{STUB_NAME.upper()}_API_KEY": "stub-key",
        "INSPECT_LOG_DIR": config["log_dir"],
    }
    before = stub_stats(base_url)
    command = [sys.executable, __file__, "--phase", phase, str(config_path), str(result_path)]
    subprocess.run(command, check=True, cwd=ROOT, env=env)
    after = stub_stats(base_url)
    result = json.loads(result_path.read_text())
    result["requests"] = after["requests"] - before["requests"]
    result["stub_cpu_s"] = after["cpu_s"] - before["cpu_s"]
    result["peak_in_flight"] = after["peak_in_flight"]
    result["rps"] = result["requests"] / result["wall_s"]
    result["log_dir"] = config["log_dir"]
    return result


def time_report(log_dir: str, out: Path) -> tuple[float, int, str]:
    """Wall time of `python -m analysis report LOG_DIR --out OUT`, its exit code and tail."""
    command = [sys.executable, "-m", "analysis", "report", log_dir, "--out", str(out)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    return elapsed, done.returncode, (done.stdout + done.stderr).strip()[-600:]


def summary_check(log_dir: str) -> str:
    """Sample statuses and per-condition compliance read back from the sweep's logs."""
    from analysis.logs import load_samples
    from analysis.summary import summarize

    samples = load_samples([log_dir])
    summary = summarize(samples)
    statuses = {str(k): int(v) for k, v in samples["status"].value_counts().items()}
    parts = [f"{len(summary)} conditions, statuses {statuses}"]
    for column in ("free_compliance", "paid_compliance"):
        values = summary[column].astype(float)
        parts.append(f"{column} {values.min():g}..{values.max():g}")
    return "; ".join(parts)


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            c.rjust(w) if i else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, default=5, help="stub models (default 5)")
    parser.add_argument(
        "--variants", type=int, default=len(VARIANTS), help="first N of the 7 variants"
    )
    parser.add_argument(
        "--queries", type=int, default=DATASET_QUERIES, help="StrongREJECT queries (<= 313)"
    )
    parser.add_argument("--latency", type=float, default=0.5, help="stub latency in seconds")
    parser.add_argument("--jitter", type=float, default=0.2, help="latency +- this fraction")
    parser.add_argument(
        "--connections", type=int, default=100, help="max_connections per model (default 100)"
    )
    parser.add_argument("--max-samples", type=int, help="per task (default: --connections)")
    parser.add_argument("--max-tasks", type=int, help="in parallel (default: every task)")
    parser.add_argument("--skip-plain", action="store_true", help="only the harness sweep")
    parser.add_argument("--keep", type=Path, help="keep logs and report here")
    parser.add_argument(
        "--stub-max-seconds", type=float, default=3 * 3600, help="stub's lifetime bound"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--phase", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.serve:
        asyncio.run(_serve(args.latency, args.jitter, args.stub_max_seconds))
        return 0
    if args.phase:
        phase, config_path, result_path = args.phase
        result = run_phase(phase, json.loads(Path(config_path).read_text()))
        Path(result_path).write_text(json.dumps(result))
        return 0

    if not 1 <= args.variants <= len(VARIANTS):
        parser.error(f"--variants must be 1..{len(VARIANTS)}")
    if not 1 <= args.queries <= DATASET_QUERIES:
        parser.error(f"--queries must be 1..{DATASET_QUERIES}")
    if args.models < 1 or args.connections < 1:
        parser.error("--models and --connections must be positive")
    variants = list(VARIANTS[: args.variants])
    models = [f"openai-api/{STUB_NAME}/model-{i}" for i in range(1, args.models + 1)]
    config = {
        "models": models,
        "variants": variants,
        "queries": args.queries,
        "max_connections": args.connections,
        "max_samples": args.max_samples or args.connections,
        "max_tasks": args.max_tasks or len(models) * len(variants),
    }
    command_line = shlex.join([Path(sys.executable).name, *sys.argv])
    print(f"command: {command_line}")
    expected = len(models) * len(variants) * args.queries * 2
    print(
        f"{len(models)} models x {len(variants)} variants x {args.queries} queries x 2 tiers "
        f"= {expected:,} samples; stub latency {args.latency} s +-{args.jitter:.0%}; "
        f"max_connections={config['max_connections']} per model, "
        f"max_samples={config['max_samples']} per task, max_tasks={config['max_tasks']}",
        flush=True,
    )

    tmp = Path(tempfile.mkdtemp(prefix="scale_sweep_", dir="/tmp"))
    stub, base_url = start_stub(args.latency, args.jitter, args.stub_max_seconds)
    results: dict[str, dict[str, Any]] = {}
    try:
        for phase in ("sweep", "plain")[: 1 if args.skip_plain else 2]:
            print(f"running {phase} ...", flush=True)
            results[phase] = measure(phase, config, base_url, tmp)
            r = results[phase]
            print(
                f"  {r['samples']:,} samples, {r['requests']:,} requests in {r['wall_s']:.1f} s "
                f"(success={r['success']}, errors={r['errors'] or 'none'})",
                flush=True,
            )
        print("running python -m analysis report ...", flush=True)
        report_out = tmp / "report"
        report_s, report_rc, report_tail = time_report(results["sweep"]["log_dir"], report_out)
        check = summary_check(results["sweep"]["log_dir"]) if report_rc == 0 else report_tail
    finally:
        stop_stub(stub)
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for item in tmp.iterdir():
                shutil.move(str(item), args.keep / item.name)
        shutil.rmtree(tmp, ignore_errors=True)

    rows = [("", *results)]
    fields = [
        ("samples", lambda r: f"{r['samples']:,}"),
        ("requests", lambda r: f"{r['requests']:,}"),
        ("tasks", lambda r: str(r["tasks"])),
        ("task build (s)", lambda r: f"{r['build_s']:.1f}"),
        ("eval_set wall (s)", lambda r: f"{r['wall_s']:.1f}"),
        ("throughput (req/s)", lambda r: f"{r['rps']:.1f}"),
        ("harness CPU (s)", lambda r: f"{r['cpu_s']:.1f}"),
        ("CPU ms / request", lambda r: f"{1000 * r['cpu_s'] / max(r['requests'], 1):.1f}"),
        ("stub CPU (s)", lambda r: f"{r['stub_cpu_s']:.1f}"),
        ("peak RSS (MiB)", lambda r: f"{r['peak_rss_mib']:.0f}"),
    ]
    for label, show in fields:
        rows.append((label, *(show(r) for r in results.values())))
    print()
    print(table(rows))
    sweep = results["sweep"]
    print(f"stub peak in-flight requests: {sweep['peak_in_flight']}")
    ratio = None
    if "plain" in results:
        ratio = sweep["rps"] / results["plain"]["rps"]
        verdict = "met" if ratio >= 0.9 else "MISSED"
        print(f"throughput ratio harness / plain Inspect: {ratio:.2f} (target 0.9: {verdict})")
    print(f"python -m analysis report: {report_s:.1f} s (exit {report_rc}); {check}")
    print(f"command: {command_line}")
    complete = sweep["samples"] == expected and sweep["success"] and report_rc == 0
    return 0 if complete and (ratio is None or ratio >= 0.9) else 1


if __name__ == "__main__":
    sys.exit(main())
