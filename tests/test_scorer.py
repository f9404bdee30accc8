"""The epoch reducer and the row reader that every log metric shares."""

import math

from inspect_ai.scorer import SampleScore, Score

from evals.scorer import (
    EPOCHS_KEY,
    epoch_rows,
    free_compliance,
    invalid_free,
    invalid_paid,
    keep_epochs,
)


def sample_score(tier: str, query_id: str, complied: int, epoch: int = 1) -> SampleScore:
    metadata = {"status": "valid", "complied": complied, "epoch": epoch}
    return SampleScore(
        score=Score(value={"complied": float(complied)}, metadata=metadata),
        sample_id=f"{query_id}:{tier}",
        sample_metadata={"tier": tier, "query_id": query_id},
    )


def test_one_epoch_is_kept_as_scored_and_several_are_averaged():
    reduce = keep_epochs()
    one = sample_score("free", "q1", 1, epoch=2).score
    assert reduce([one]) is one  # its epoch (2) is in its own metadata
    two = reduce([one, sample_score("free", "q1", 0, epoch=1).score])
    assert two.value == {"complied": 0.5}
    assert [m["epoch"] for m in two.metadata[EPOCHS_KEY]] == [2, 1]
    nan = reduce([Score(value={"complied": math.nan}), Score(value={"complied": math.nan})])
    assert math.isnan(nan.value["complied"])


def test_rows_are_read_again_when_the_list_changes():
    scores = [sample_score("free", "q1", 1), sample_score("free", "q2", 0)]
    assert [row[:3] for row in epoch_rows(scores)] == [("free", "q1", 1), ("free", "q2", 1)]
    assert free_compliance()(scores) == 0.5
    scores.append(sample_score("free", "q3", 1))  # the same list, grown
    assert free_compliance()(scores) == 2 / 3
    other = [sample_score("free", "q1", 0)]  # another list
    assert free_compliance()(other) == 0.0
    assert [row[1] for row in epoch_rows(scores)] == ["q1", "q2", "q3"]


def test_samples_stopped_by_a_limit_count_as_invalid():
    def stopped(tier: str, query_id: str, status: str) -> SampleScore:
        metadata = {"status": status, "complied": None, "epoch": 1}
        return SampleScore(
            score=Score(value={"complied": math.nan}, metadata=metadata),
            sample_id=f"{query_id}:{tier}",
            sample_metadata={"tier": tier, "query_id": query_id},
        )

    scores = [
        stopped("free", "q1", "limit_reached: message"),
        stopped("free", "q2", "limit_reached: a_type_of_a_later_inspect"),
        stopped("free", "q3", "no_output_tag"),
        stopped("paid", "q1", "limit_reached: turn"),
        sample_score("paid", "q2", 1),
    ]
    assert (invalid_free()(scores), invalid_paid()(scores)) == (3, 1)
