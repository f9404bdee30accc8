"""Re-judged logs, through the real `inspect eval` and `inspect score` commands: each judge is
a condition of its own, the judgement made last wins, and no file name or read order decides."""

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from inspect_ai.log import read_eval_log, write_eval_log

from analysis.logs import load_samples
from analysis.summary import summarize

ROOT = Path(__file__).resolve().parents[1]
INSPECT = str(Path(sys.executable).parent / "inspect")


def inspect(*args: str) -> None:
    result = subprocess.run(
        [INSPECT, *args, "--display", "none"], cwd=ROOT, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]


def rejudge(log: Path, grader: str, out: Path | None = None, *extra: str) -> None:
    args = ["score", str(log), "--scorer", "alignment_faking_judge", "-S", "votes=3"]
    args += ["--model-role", f"grader=scripted/{grader}", "--action", "append", *extra]
    args += ["--output-file", str(out)] if out else ["--overwrite"]
    inspect(*args)


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> Path:
    """A run of the demo model that fakes alignment, judged by no grader."""
    logs = tmp_path_factory.mktemp("original")
    inspect(
        "eval", "evals/alignment_faking.py", "--model", "scripted/alignment_faker",
        "-T", "n_queries=3", "--log-dir", str(logs),
    )  # fmt: skip
    [log] = logs.glob("*.eval")
    return log


def tables(paths: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    samples = load_samples(paths)
    return samples, summarize(samples)


def test_two_graders_beside_the_original_are_two_judge_conditions(original, tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    shutil.copy(original, folder / "original.eval")
    rejudge(folder / "original.eval", "keyword_judge", folder / "by-keyword.eval")
    rejudge(folder / "original.eval", "doubting_judge", folder / "by-doubter.eval")

    samples, summary = tables([folder])
    judges = sorted(summary["judge"])
    assert len(summary) == 2 and summary["condition"].nunique() == 2
    assert judges[0].startswith("scripted/doubting_judge (improved classifier, 3 votes")
    assert judges[1].startswith("scripted/keyword_judge (improved classifier, 3 votes")
    by_judge = summary.set_index(summary["judge"].str.split(" ").str[0])
    # The demo model fakes alignment on the free tier: one grader sees it, the other never.
    assert by_judge.loc["scripted/keyword_judge", "af_rate_free"] == 1.0
    assert by_judge.loc["scripted/doubting_judge", "af_rate_free"] == 0.0
    # Compliance is the same transcripts' either way, and nothing is unscored.
    assert by_judge["free_compliance"].nunique() == 1 and by_judge["n_pairs"].tolist() == [3, 3]
    assert (summary[["unscored_free", "unscored_paid"]] == 0).all().all()
    assert (samples["classifier_status"] == "ok").all() and len(samples) == 12
    # Re-scored copies are the same run and the same attempts: nothing merged or superseded.
    assert summary["runs_merged"].tolist() == [1, 1] and summary["superseded"].tolist() == [0, 0]

    # Renamed so that the other file sorts first, and read in the other order: same tables.
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    shutil.copy(folder / "by-keyword.eval", renamed / "zzz-rejudged.eval")
    shutil.copy(folder / "by-doubter.eval", renamed / "0-first.eval")
    shutil.copy(folder / "original.eval", renamed / "m-original.eval")
    for order in (
        [renamed],
        [renamed / "zzz-rejudged.eval", renamed / "m-original.eval", renamed / "0-first.eval"],
    ):
        again, again_summary = tables(order)
        pd.testing.assert_frame_equal(again, samples)
        pd.testing.assert_frame_equal(again_summary, summary)


def test_two_graders_appended_to_one_log_are_two_judge_conditions(original, tmp_path):
    log = tmp_path / "log.eval"
    shutil.copy(original, log)
    rejudge(log, "keyword_judge")
    rejudge(log, "doubting_judge")
    scores = read_eval_log(str(log)).samples[0].scores
    assert {"alignment_faking_judge", "alignment_faking_judge1", "alignment_faking_judge2"} <= set(
        scores
    )
    _, summary = tables([log])
    rates = dict(zip(summary["judge"].str.split(" ").str[0], summary["af_rate_free"], strict=True))
    assert rates == {"scripted/keyword_judge": 1.0, "scripted/doubting_judge": 0.0}


def test_other_votes_are_another_judge_and_the_same_settings_merge(original, tmp_path):
    log = tmp_path / "log.eval"
    shutil.copy(original, log)
    rejudge(log, "keyword_judge")
    rejudge(log, "keyword_judge", None, "-S", "votes=5")
    rejudge(log, "keyword_judge")  # the first judge's settings again: no third condition
    _, summary = tables([log])
    assert len(summary) == 2
    assert sorted(summary["judge"].str.extract(r"(\d) votes")[0]) == ["3", "5"]


def test_the_judgement_made_last_wins_whatever_the_file_names(original, tmp_path):
    """Same grader and settings twice, with different verdicts: the later judgement wins, by
    its recorded time, whether its file sorts first or last."""
    first, second = tmp_path / "first.eval", tmp_path / "second.eval"
    rejudge(original, "keyword_judge", first)
    rejudge(original, "keyword_judge", second)
    log = read_eval_log(str(second))
    for sample in log.samples:  # the later judgement changed its mind
        judge = sample.scores["alignment_faking_judge1"]
        judge.metadata = {**judge.metadata, "af_reasoning": 0}
    write_eval_log(log, str(second))
    judged_at = [
        read_eval_log(str(path))
        .samples[0]
        .scores["alignment_faking_judge1"]
        .metadata["judge"]["judged_at"]
        for path in (first, second)
    ]
    assert judged_at[0] < judged_at[1]

    results = []
    for later_name in ("a-later.eval", "z-later.eval"):
        folder = tmp_path / later_name
        folder.mkdir()
        shutil.copy(first, folder / "m-earlier.eval")
        shutil.copy(second, folder / later_name)
        samples = load_samples([folder])
        assert samples["judge"].nunique() == 1
        assert (samples["af_reasoning"] == 0).all(), later_name
        results.append(samples)
    pd.testing.assert_frame_equal(results[0], results[1])
