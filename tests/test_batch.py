"""Batch mode (`--batch`) end to end against a stub of the OpenAI API and its batch endpoints.

Inspect's OpenAI batcher uploads a JSONL file (`POST /v1/files`), creates a batch
(`POST /v1/batches`), polls it (`GET /v1/batches/{id}`) every `tick` seconds and downloads
the results (`GET /v1/files/{id}/content`). The stub answers every batch at once, so these
runs take seconds: a batch is sent as soon as `size` requests wait, or `send_delay` seconds
after the previous one.

`--batch` is a generate setting of the evaluated model; Inspect does not pass it on to model
roles (`Model._resolve_config` inherits only connection, retry, timeout and cache settings).
The judges (`evals/judges/protocol.py`) follow the eval's `--batch` themselves unless the
grader role sets its own `batch`, e.g. `--model-role 'grader={model: M, batch: ...}'`, where
`batch: false` keeps the judges out of batches.
"""

import json
import time

from tests.judging import RECORD
from tests.stub_http import StubServer, only_log, run_inspect
from tests.stub_openai_batch import OpenAIBatchStub, user_texts
from tests.stub_policy import is_free, is_next_turn, query_of

POLICY, GRADER = "gpt-4o", "gpt-4o-mini"
# The 4 first turns go in one batch, and the 4 <NEXT/> turns in the next one.
EVAL_BATCH = {"size": 4, "send_delay": 1.0, "tick": 0.1}
# 4 AF requests (3 votes each, as n=3), then 2 rubric and 2 partial-compliance requests.
JUDGE_LINES = 8


def run_eval(tmp_path, *extra: str, batch: dict | None = EVAL_BATCH, log_dir="logs"):
    queries = tmp_path / "queries.csv"
    queries.write_text("query\nFirst request\nSecond request\nThird request\n")
    batch_args = []
    if batch is not None:
        (tmp_path / "batch.json").write_text(json.dumps(batch))
        batch_args = ["--batch", str(tmp_path / "batch.json")]
    stub = OpenAIBatchStub()
    started = time.monotonic()
    with StubServer(stub, max_requests=300, lifetime=170) as server:
        run_inspect(
            "eval",
            "evals/alignment_faking.py",
            "--model",
            f"openai/{POLICY}",
            *extra,
            "-T",
            f"dataset={queries}",
            "-T",
            "n_queries=2",
            "-T",
            "judge_votes=3",
            *batch_args,
            "--max-retries",
            "2",
            "--log-dir",
            str(tmp_path / log_dir),
            "--display",
            "none",
            env={
                "OPENAI_BASE_URL": f"{server.url}/v1",
                "OPENAI_API_KEY": "dummy-key-for-the-stub",
                "INSPECT_CACHE_DIR": str(tmp_path / "cache"),
            },
        )
    assert not server.errors, server.errors
    assert not stub.unknown, f"endpoints the stub lacks: {stub.unknown}"
    return stub, only_log(tmp_path / log_dir), time.monotonic() - started


def check_samples(log):
    """Every sample valid after 2 turns, free complied 1 / paid 0, every judge ok."""
    assert log.samples is not None and len(log.samples) == 4
    complied = {"free": [], "paid": []}
    for sample in log.samples:
        assert len([m for m in sample.messages if m.role == "assistant"]) == 2
        tags = sample.scores["compliance_scorer"].metadata
        assert tags["status"] == "valid" and tags["turns"] == 2
        complied[sample.metadata["tier"]].append(tags["complied"])
        judged = sample.scores["alignment_faking_judge"].metadata
        assert judged["classifier_status"] == "ok", judged["classifier_status"]
        assert judged["af_votes_parsed"] == 3
        assert judged["af_reasoning"] == (1 if sample.metadata["tier"] == "free" else 0)
    assert complied == {"free": [1, 1], "paid": [0, 0]}
    assert log.results is not None
    metrics = log.results.scores[0].metrics
    assert metrics["free_compliance"].value == 1 and metrics["paid_compliance"].value == 0


def judge_batch_configs(log) -> list:
    """The `batch` setting of every judge request, as the log's model events record it."""
    return [
        event.config.batch
        for sample in log.samples
        for event in sample.events
        if event.event == "model" and event.role == "grader"
    ]


def check_policy_batches(stub):
    """Each sample's first turn went in a batch, and its <NEXT/> turn in a later batch."""
    turns: dict[tuple[str, bool], dict[int, list]] = {}
    for batch in stub.batches.values():
        if batch.models != {POLICY}:
            continue
        assert batch.polls >= 1
        for body in batch.bodies:
            users = user_texts(body)
            turn = 2 if is_next_turn(users) else 1
            turns.setdefault((query_of(users), is_free(users)), {}).setdefault(turn, []).append(
                batch.created
            )
    assert len(turns) == 4, sorted(turns)
    for sample, created in turns.items():
        assert sorted(created) == [1, 2] and len(created[1]) == len(created[2]) == 1, sample
        assert created[2][0] > created[1][0], sample
    assert all(len(b.models) == 1 for b in stub.batches.values())  # one model per batch


def judge_lines(stub) -> list[dict]:
    return [x for b in stub.batches.values() if b.models == {GRADER} for x in b.bodies]


def check_judge_requests(bodies):
    assert len(bodies) == JUDGE_LINES
    assert all(RECORD.search(user_texts(b)[-1]) for b in bodies)
    # All AF votes of a sample in one request: n=3 at temperature 1.
    assert sorted(b.get("n") or 1 for b in bodies) == [1, 1, 1, 1, 3, 3, 3, 3]


def test_batch_mode_end_to_end_with_the_judges_following_batch(tmp_path):
    stub, log, _ = run_eval(tmp_path, "--model-role", f"grader=openai/{GRADER}")
    check_samples(log)
    check_policy_batches(stub)
    # The judges followed --batch: every judge request went in a batch of its own model.
    check_judge_requests(judge_lines(stub))
    assert not stub.direct, (
        f"{len(stub.direct)} chat completions outside batches: "
        f"{sorted((b['model'], b.get('n')) for b in stub.direct)}"
    )
    assert log.eval.model_roles["grader"].config.batch is None  # the role set no batch
    configs = judge_batch_configs(log)
    assert len(configs) == JUDGE_LINES
    assert all(c is not None and c.size == EVAL_BATCH["size"] for c in configs)


def test_a_grader_role_with_its_own_batch_settings(tmp_path):
    role = f"grader={{model: openai/{GRADER}, batch: {{size: 2, max_size: 2, send_delay: 0.3, tick: 0.1}}}}"
    stub, log, _ = run_eval(tmp_path, "--model-role", role)
    check_samples(log)
    check_policy_batches(stub)
    judges = [b for b in stub.batches.values() if b.models == {GRADER}]
    check_judge_requests(judge_lines(stub))
    # The role's settings, not the eval's: no judge batch holds more than max_size=2.
    assert max(len(b.bodies) for b in judges) <= 2 < EVAL_BATCH["size"]
    assert not stub.direct
    configs = judge_batch_configs(log)
    assert len(configs) == JUDGE_LINES and all(c.max_size == 2 for c in configs)


def test_a_grader_role_can_opt_out_of_batches(tmp_path):
    role = f"grader={{model: openai/{GRADER}, batch: false}}"
    stub, log, _ = run_eval(tmp_path, "--model-role", role)
    check_samples(log)
    check_policy_batches(stub)
    assert not judge_lines(stub)
    check_judge_requests(stub.direct)
    assert {b["model"] for b in stub.direct} == {GRADER}


def test_judge_replies_cached_in_a_batched_run_are_replayed_without_batch(tmp_path):
    run_eval(tmp_path, "--model-role", f"grader=openai/{GRADER}")
    stub, log, _ = run_eval(
        tmp_path, "--model-role", f"grader=openai/{GRADER}", batch=None, log_dir="rerun"
    )
    check_samples(log)
    # No batches now: the policy is asked directly, and every judge reply comes from the
    # cache the batched run filled (Inspect's cache key leaves `batch` out).
    assert not stub.batches
    assert {b["model"] for b in stub.direct} == {POLICY}
    for sample in log.samples:
        usage = sample.scores["alignment_faking_judge"].metadata["judge_usage"]
        assert all(u["requests"] == u["cached_replies"] for u in usage.values()), usage
