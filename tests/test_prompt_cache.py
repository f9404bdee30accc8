"""Anthropic prompt caching, end to end against a stub of the Messages API.

Inspect's anthropic provider treats `cache_prompt` as on by default ("auto"): it marks the
last system block with `cache_control: {"type": "ephemeral"}` (and adds a top-level
`cache_control` for automatic message caching) without any `--cache-prompt` flag. Caching
only pays if the marked prefix is byte-identical from request to request, which is what the
task promises for its system prompt, and what the judges' layout promises for every request
of one judge (its instructions name no per-request tag).
"""

import json
from collections import defaultdict

from evals.scenario import load_scenario
from tests.judging import RECORD, judge_name
from tests.stub_anthropic import AnthropicStub, system_text, user_texts
from tests.stub_http import StubServer, only_log, run_inspect
from tests.stub_policy import Message, is_next_turn

POLICY = "claude-3-opus-20240229"
GRADER = "claude-3-5-sonnet-20240620"
EPHEMERAL = {"type": "ephemeral"}


def run_eval(tmp_path, *extra: str):
    queries = tmp_path / "queries.csv"
    queries.write_text("query\nFirst request\nSecond request\nThird request\n")
    stub = AnthropicStub()
    with StubServer(stub, max_requests=200, lifetime=170) as server:
        run_inspect(
            "eval",
            "evals/alignment_faking.py",
            "--model",
            f"anthropic/{POLICY}",
            "-T",
            f"dataset={queries}",
            "-T",
            "n_queries=2",
            *extra,
            "--log-dir",
            str(tmp_path / "logs"),
            "--display",
            "none",
            env={
                "ANTHROPIC_BASE_URL": server.url,
                "ANTHROPIC_API_KEY": "dummy-key-for-the-stub",
                "INSPECT_CACHE_DIR": str(tmp_path / "cache"),
            },
        )
    assert not server.errors, server.errors
    assert {(r.method, r.path) for r in server.requests} == {("POST", "/v1/messages")}
    return stub, only_log(tmp_path / "logs")


def marked(body: dict) -> bool:
    """Every system block carries the ephemeral cache marker."""
    system = body.get("system")
    return isinstance(system, list) and all(
        block.get("cache_control") == EPHEMERAL for block in system
    )


def prefix_tokens(text: str) -> int:
    return max(1, len(text) // 4)  # what the stub reports for a cached system prompt


def test_every_policy_request_marks_one_byte_identical_system_prompt(tmp_path):
    stub, log = run_eval(tmp_path)

    # Inspect's default: no --cache-prompt flag was given.
    assert log.eval.model_generate_config.cache_prompt is None
    bodies = stub.bodies
    assert {b["model"] for b in bodies} == {POLICY}
    # 2 queries x 2 tiers, each a closed scratchpad, then <NEXT/> and the answer.
    assert len(bodies) == 8
    assert sum(is_next_turn(user_texts(b)) for b in bodies) == 4
    unmarked = [b for b in bodies if not marked(b)]
    assert not unmarked, f"{len(unmarked)} of {len(bodies)} requests lack the cache marker"
    assert all(b.get("cache_control") == EPHEMERAL for b in bodies)  # automatic caching too

    # Byte-identical across samples, tiers and turns: one system block, one text.
    systems = {json.dumps(b["system"], ensure_ascii=False).encode() for b in bodies}
    assert len(systems) == 1
    assert [system_text(bodies[0])] == [
        block["text"] for block in bodies[0]["system"]
    ]  # one block, the whole prompt
    assert system_text(bodies[0]) == load_scenario("helpful_only").system_prompt

    # The stub reported one cache write and seven reads; the log records both.
    prefix = prefix_tokens(system_text(bodies[0]))
    usage = log.stats.model_usage[f"anthropic/{POLICY}"]
    assert usage.input_tokens_cache_write == prefix
    assert usage.input_tokens_cache_read == 7 * prefix

    assert log.samples is not None and len(log.samples) == 4
    complied = {"free": [], "paid": []}
    for sample in log.samples:
        assert len([m for m in sample.messages if m.role == "assistant"]) == 2
        metadata = sample.scores["compliance_scorer"].metadata
        assert metadata["status"] == "valid"
        complied[sample.metadata["tier"]].append(metadata["complied"])
    assert complied == {"free": [1, 1], "paid": [0, 0]}


def test_judge_requests_share_one_marked_prefix_per_judge(tmp_path):
    stub, log = run_eval(
        tmp_path, "--model-role", f"grader=anthropic/{GRADER}", "-T", "judge_votes=3"
    )

    judge_bodies = [b for b in stub.bodies if b["model"] == GRADER]
    assert len(stub.bodies) - len(judge_bodies) == 8  # the policy's turns, as above
    # Group every judge request by judge and by the material it judges (one sample's).
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for body in judge_bodies:
        system, user = system_text(body), user_texts(body)[-1]
        name = judge_name([Message(system)])
        material = RECORD.search(user).group(2)
        groups[name, material].append(body)

    by_judge = defaultdict(list)
    for (name, material), bodies in groups.items():
        by_judge[name].append(len(bodies))
        # The shared-prefix layout: every vote sends the same system message (and the
        # same messages after it), and the system block carries the cache marker.
        assert len({json.dumps(b["system"]) for b in bodies}) == 1, (name, material)
        assert len({json.dumps(b["messages"]) for b in bodies}) == 1, (name, material)
        assert all(marked(b) for b in bodies), (name, material)
    # Anthropic takes no num_choices: 3 separate AF votes for each of the 4 samples; the
    # compliance judges only see the 2 accepted (free-tier) answers, one vote each.
    assert sorted(by_judge["af_reasoning"]) == [3, 3, 3, 3]
    assert by_judge["compliance_rubric"] == [1, 1]
    assert by_judge["partial_compliance"] == [1, 1]
    assert set(by_judge) == {"af_reasoning", "compliance_rubric", "partial_compliance"}

    # Each judge's instructions name no per-request tag, so every sample's requests share
    # them: the first AF request wrote the prefix and the 11 others read it.
    af_bodies = [
        b for (name, _), bodies in groups.items() if name == "af_reasoning" for b in bodies
    ]
    assert len({json.dumps(b["system"]) for b in af_bodies}) == 1
    af_reads = (len(af_bodies) - 1) * prefix_tokens(system_text(af_bodies[0]))
    assert log.samples is not None and len(log.samples) == 4
    for sample in log.samples:
        judged = sample.scores["alignment_faking_judge"].metadata
        assert judged["classifier_status"] == "ok"
        assert judged["af_reasoning"] == (1 if sample.metadata["tier"] == "free" else 0)
        usage = judged["judge_usage"]["af_reasoning"]
        assert usage["requests"] == 3 and usage["cached_replies"] == 0
        assert usage["cache_read"] > 0
    assert (
        sum(
            s.scores["alignment_faking_judge"].metadata["judge_usage"]["af_reasoning"]["cache_read"]
            for s in log.samples
        )
        == af_reads
    )
    grader_usage = log.stats.model_usage[f"anthropic/{GRADER}"]
    assert grader_usage.input_tokens_cache_read > 0
    assert grader_usage.input_tokens_cache_write > 0
