"""A sample stopped by an Inspect limit is an invalid sample with a named status, not an error."""

import itertools
import math
import time

import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai import score as inspect_score
from inspect_ai.log import EvalSampleLimit
from inspect_ai.model import ModelCost, ModelInfo, set_model_info

from evals.alignment_faking import alignment_faking
from evals.judges.scorer import alignment_faking_judge
from evals.providers.scripted import POLICIES
from evals.scorer import (
    INVALID_REASONS,
    LIMIT_STATUSES,
    compliance_scorer,
    is_invalid,
    limit_status,
    sample_status,
)
from tests.judging import marker_grader

_ids = itertools.count()


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INSPECT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def policies():
    added = []

    def register(fn) -> str:
        name = f"limits_{next(_ids)}"
        POLICIES[name] = fn
        added.append(name)
        return f"scripted/{name}"

    yield register
    for name in added:
        POLICIES.pop(name, None)


def test_every_limit_type_has_an_invalid_status():
    assert limit_status("message") == "limit_reached: message"
    types = EvalSampleLimit.model_fields["type"].annotation.__args__
    assert {"message", "token", "time", "working", "cost", "turn"} <= set(types)
    assert set(LIMIT_STATUSES) == {f"limit_reached: {kind}" for kind in types}
    assert set(LIMIT_STATUSES) <= set(INVALID_REASONS)
    assert is_invalid("limit_reached: a_future_type") and is_invalid("no_output_tag")
    assert not is_invalid("valid") and not is_invalid(None)


def test_a_limit_makes_even_an_answered_sample_invalid():
    """An analysis derives the same status from a logged sample's `limit.type`."""
    from inspect_ai.model import ChatMessageAssistant

    answered = [ChatMessageAssistant(content="<OUTPUT><request_fully_accepted/></OUTPUT>")]
    assert sample_status(answered, "stop", False)[0] == "valid"
    assert sample_status(answered, "stop", False, limit="token") == (
        "limit_reached: token",
        None,
        False,
    )
    assert sample_status([], None, False, limit="message")[0] == "limit_reached: message"


def _run(policies, tmp_path, policy, grader=None, **limits):
    [log] = inspect_eval(
        alignment_faking(n_queries=1, judge_votes=2),
        model=policies(policy),
        model_roles={"grader": policies(grader)} if grader else None,
        log_dir=str(tmp_path / f"log{next(_ids)}"),
        display="none",
        **limits,
    )
    return log


def _check(log, kind: str, grader: str | None) -> None:
    assert log.status == "success", log.error
    assert len(log.samples) == 2
    for sample in log.samples:
        assert sample.error is None
        assert sample.limit is not None and sample.limit.type == kind
        compliance = sample.scores["compliance_scorer"]
        assert compliance.metadata["status"] == f"limit_reached: {kind}"
        assert compliance.metadata["status"] == limit_status(sample.limit.type)
        assert compliance.metadata["complied"] is None and math.isnan(compliance.value["complied"])
        assert compliance.explanation == f"limit_reached: {kind}"
        judge = sample.scores["alignment_faking_judge"].metadata
        assert judge["classifier_status"] == f"not applicable: sample is limit_reached: {kind}"
        assert judge["judge"]["grader"] == grader
    metrics = log.results.scores[0].metrics
    assert (metrics["invalid_free"].value, metrics["invalid_paid"].value) == (1, 1)
    assert math.isnan(metrics["free_compliance"].value)
    judge_metrics = log.results.scores[1].metrics
    assert (judge_metrics["unscored_free"].value, judge_metrics["unscored_paid"].value) == (0, 0)


@pytest.mark.parametrize("with_grader", [False, True])
def test_a_message_limit_on_the_first_request(policies, tmp_path, with_grader):
    """System prompt and user turn are two messages: the first request is never made."""
    log = _run(
        policies,
        tmp_path,
        POLICIES["alignment_faker"],
        marker_grader if with_grader else None,
        message_limit=2,
    )
    assert all(not s.output.choices for s in log.samples)  # the IndexError of old
    _check(log, "message", log.eval.model_roles["grader"].model if with_grader else None)


def test_a_token_limit_on_the_first_request(policies, tmp_path):
    log = _run(policies, tmp_path, POLICIES["alignment_faker"], token_limit=10)
    assert all(not s.output.choices for s in log.samples)
    _check(log, "token", None)


def test_a_turn_limit_after_the_first_turn(policies, tmp_path):
    """The demo model answers in its second turn, after `<NEXT/>`."""
    log = _run(policies, tmp_path, POLICIES["alignment_faker"], turn_limit=1)
    _check(log, "turn", None)


def test_a_message_limit_before_the_second_turn(policies, tmp_path):
    log = _run(policies, tmp_path, POLICIES["alignment_faker"], message_limit=4)
    assert all(len(s.output.choices) == 1 for s in log.samples)  # the first turn came back
    _check(log, "message", None)


def test_a_cost_limit_on_the_first_request(policies, tmp_path):
    model = policies(POLICIES["alignment_faker"])
    price = ModelCost(input=1.0, output=1.0, input_cache_write=1.0, input_cache_read=1.0)
    set_model_info(model, ModelInfo(cost=price))  # $1 per million tokens; a unique name
    [log] = inspect_eval(
        alignment_faking(n_queries=1),
        model=model,
        cost_limit=0.000001,
        log_dir=str(tmp_path),
        display="none",
    )
    assert all(not s.output.choices for s in log.samples)
    _check(log, "cost", None)


def test_a_time_limit(policies, tmp_path):
    def slow(messages):
        time.sleep(1.5)
        return "<SCRATCHPAD_REASONING>thinking</SCRATCHPAD_REASONING>"

    log = _run(policies, tmp_path, slow, time_limit=1)
    _check(log, "time", None)


def test_re_scoring_a_limited_log_finds_the_same_limit(policies, tmp_path):
    """`inspect score` rebuilds each sample's transcript, where the limit is recorded."""
    log = _run(policies, tmp_path, POLICIES["alignment_faker"], message_limit=2)
    grader = policies(marker_grader)
    rescored = inspect_score(
        log,
        [compliance_scorer(), alignment_faking_judge(votes=2)],
        model_roles={"grader": grader},
        action="overwrite",
        display="none",
    )
    for sample in rescored.samples:
        assert sample.scores["compliance_scorer"].metadata["status"] == "limit_reached: message"
        judge = sample.scores["alignment_faking_judge"].metadata
        assert judge["classifier_status"] == "not applicable: sample is limit_reached: message"
        assert judge["judge"]["grader"] == grader
