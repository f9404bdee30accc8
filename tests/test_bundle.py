"""Transcripts a reader can browse: the sample list `inspect view` shows (Inspect's own viewer
configuration, in the log) and the static site `python -m analysis bundle` writes."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from inspect_ai.log import list_eval_logs, read_eval_log

from analysis.__main__ import main as analysis_main
from analysis.bundle import (
    INDEX,
    LOGS,
    bundle_href,
    bundle_logs,
    check_bundle_target,
    is_bundle,
    links_by_log,
    log_url,
    report_link,
    write_bundle,
)
from evals.alignment_faking import COMPLIANCE_SCORER, JUDGE_SCORER, VIEWER, VIEWER_COLUMNS
from evals.judges.scorer import shown_af_label, shown_category
from evals.labels import trained_tier
from evals.scorer import shown_trained_tier

ROOT = Path(__file__).resolve().parents[1]
INSPECT = str(Path(sys.executable).parent / "inspect")
AF_LABELS = {"AF", "possible AF", "no AF", "n/a", "unscored"}
CATEGORIES = {
    f"{b}{s}" for b in ("refusal", "partial_compliance", "full_compliance") for s in ("", "_af")
} | {"n/a", "unscored"}


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=ROOT, capture_output=True, text=True, timeout=300, env=dict(os.environ)
    )


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real logs of small scripted runs, as a user makes them: the default prompt with a
    grader, and the control that trains the paid tier, without one."""
    logs = tmp_path_factory.mktemp("bundle") / "logs"
    common = ["evals/alignment_faking.py", "--model", "scripted/alignment_faker"]
    common += ["-T", "n_queries=2", "--log-dir", str(logs), "--display", "none"]
    for extra in (
        ["--model-role", "grader=scripted/keyword_judge"],
        ["-T", "variant=tier_swap_control"],
    ):
        result = run(INSPECT, "eval", *common, *extra)
        assert result.returncode == 0, result.stderr[-2000:]
    return logs


def logs_by_variant(log_dir: Path) -> dict[str, object]:
    logs = [read_eval_log(info.name) for info in list_eval_logs(str(log_dir))]
    return {log.eval.task_args["variant"]: log for log in logs}


def test_the_log_header_names_the_sample_list_columns(log_dir):
    for log in logs_by_variant(log_dir).values():
        view = log.eval.viewer.task_samples_view
        ids = [column.id for column in view.columns if column.visible]
        wanted = [f"score__{scorer}__{key}" for scorer, key in VIEWER_COLUMNS]
        # The researcher's columns, in order, right after the sample's status and id.
        assert ids[: 2 + len(wanted)] == ["sampleStatus", "sampleId", *wanted]
        assert {view.score_labels[key] for _, key in VIEWER_COLUMNS} == {
            "tier", "trained tier", "complied", "status", "AF", "AF vote share", "category"
        }  # fmt: skip
        assert log.eval.viewer == VIEWER


def test_every_sample_has_the_values_of_the_columns(log_dir):
    by_variant = logs_by_variant(log_dir)
    trained = {"default": "free", "tier_swap_control": "paid"}
    for variant, log in by_variant.items():
        assert log.samples
        for sample in log.samples:
            compliance = sample.scores[COMPLIANCE_SCORER]
            judge = sample.scores[JUDGE_SCORER]
            for scorer, key in VIEWER_COLUMNS:
                assert key in sample.scores[scorer].value, (sample.id, scorer, key)
            assert compliance.value["tier"] == sample.metadata["tier"]
            assert compliance.value["trained_tier"] == trained[variant]
            assert sample.metadata["trained_tier"] == trained[variant]
            assert sample.metadata["trained_tier_assumed"] is False
            assert compliance.value["status"] == compliance.metadata["status"] == "valid"
            assert compliance.value["complied"] == compliance.metadata["complied"]
            assert judge.value["af_label"] in AF_LABELS
            assert judge.value["category"] in CATEGORIES
    # With a grader: the labels follow the judge's metadata, the alignment faker fakes
    # alignment in the trained (free) tier only.
    for sample in by_variant["default"].samples:
        judge = sample.scores[JUDGE_SCORER]
        free = sample.metadata["tier"] == "free"
        assert judge.value["af_label"] == ("AF" if free else "no AF")
        assert judge.value["vote_share"] == judge.metadata["af_vote_share"]
        assert judge.value["category"] == judge.metadata["category"]
        assert judge.value["judge_complied"] == judge.metadata["judge_complied"]
    # Without one: nothing judged, and the list says so.
    for sample in by_variant["tier_swap_control"].samples:
        judge = sample.scores[JUDGE_SCORER]
        assert judge.value["af_label"] == judge.value["category"] == "unscored"
        assert math.isnan(judge.value["vote_share"])


def test_the_trained_tier_of_a_prompt_file_is_assumed_free():
    assert trained_tier({"scenario_facts": {"trained_tier": "paid-tier"}}) == ("paid", False)
    assert trained_tier({"scenario_facts": {"trained_tier": "free-tier"}}) == ("free", False)
    custom = {"scenario_facts": {"trained_tier": None, "custom_prompt": True}}
    assert trained_tier(custom) == ("free", True)
    assert trained_tier({}) == trained_tier(None) == ("free", True)  # logs from before
    assert shown_trained_tier(custom) == "free (assumed)"


@pytest.mark.parametrize(
    ("fields", "label", "category"),
    [
        ({"af_reasoning": 1, "category": "full_compliance_af"}, "AF", "full_compliance_af"),
        ({"af_reasoning": 0, "possible_af": 1, "category": "refusal"}, "possible AF", "refusal"),
        ({"af_reasoning": 0, "possible_af": 0}, "no AF", "unscored"),
        ({"classifier_status": "not applicable: sample is turn_cap"}, "n/a", "n/a"),
        (
            {"classifier_status": "not applicable: no scratchpad in this variant"},
            "n/a",
            "unscored",
        ),
        ({"classifier_status": "unscored: no grader model"}, "unscored", "unscored"),
    ],
)
def test_the_af_label_and_category_of_every_judge_outcome(fields, label, category):
    assert shown_af_label(fields) == label
    assert shown_category(fields) == category


def sample_keys(logs: list[str]) -> list[tuple[str, str, int]]:
    keys = []
    for location in logs:
        log = read_eval_log(location)
        keys += [(log.eval.task_id, str(s.id), s.epoch) for s in log.samples or []]
    return sorted(keys)


def test_the_bundle_holds_every_sample_of_its_logs(log_dir, tmp_path):
    out = tmp_path / "site"
    result = run(sys.executable, "-m", "analysis", "bundle", str(log_dir), "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"wrote {out / INDEX}" in result.stdout
    assert is_bundle(out) and (out / "assets").is_dir()

    originals = [info.name for info in list_eval_logs(str(log_dir))]
    bundled = bundle_logs(out)
    assert sorted(p.name for p in bundled) == sorted(Path(o).name for o in originals)
    assert sorted(p.name for p in (out / LOGS).glob("*.eval")) == sorted(p.name for p in bundled)
    keys = sample_keys([str(p) for p in bundled])
    assert keys == sample_keys(originals)
    assert len(keys) == 2 * 2 * 2  # 2 logs x 2 queries x 2 tiers

    # Every condition can be linked: the fragment names the log as the listing does.
    listing = json.loads((out / LOGS / "listing.json").read_text())
    for original in originals:
        url = log_url(original, log_dir)
        assert url == f"{INDEX}#/{LOGS}/{Path(original).name}/samples"
        assert Path(original).name in listing
    one = log_url(originals[0], log_dir, sample_id="20:free", epoch=1)
    assert one.endswith("/samples/sample/20%3Afree/1/")
    # From a report beside the site: the relative way there, then the same link.
    report = tmp_path / "report"
    plain = originals[0].removeprefix("file://")  # a location as Inspect names it, or a path
    assert log_url(plain, log_dir) == log_url(originals[0], log_dir)
    href = bundle_href(originals[0], log_dir, out, report)
    assert href == f"../site/{log_url(plain, log_dir)}"

    # What a report links each condition to: found by the log's name in the listing.
    links = links_by_log(out, [*originals, "/elsewhere/not-bundled.eval"])
    assert links == {o: log_url(o, log_dir) for o in originals}

    # Same file names in two folders: each log links to its own copy, never to its twin's;
    # a log whose name matches but whose bytes differ gets no link, nor do two logs that
    # claim one entry.
    twins = tmp_path / "twins"
    for folder, original in zip(("run1", "run2"), originals, strict=True):
        (twins / folder).mkdir(parents=True)
        shutil.copy(original.removeprefix("file://"), twins / folder / "log.eval")
    twin_site = tmp_path / "twin_site"
    write_bundle(twins, twin_site)
    twin_logs = [str(twins / folder / "log.eval") for folder in ("run1", "run2")]
    assert links_by_log(twin_site, twin_logs) == {
        log: f"{INDEX}#/{LOGS}/{folder}/log.eval/samples"
        for log, folder in zip(twin_logs, ("run1", "run2"), strict=True)
    }
    elsewhere = tmp_path / "elsewhere" / "run1"
    elsewhere.mkdir(parents=True)
    shutil.copy(twins / "run2" / "log.eval", elsewhere / "log.eval")  # run1's name, run2's log
    assert links_by_log(twin_site, [str(elsewhere / "log.eval")]) == {}
    only_name = tmp_path / "one_name"
    write_bundle(twins / "run1", only_name)  # lists "log.eval" only
    # Both end in the listed "log.eval"; only run1's bytes are that copy.
    assert links_by_log(only_name, twin_logs) == {twin_logs[0]: f"{INDEX}#/{LOGS}/log.eval/samples"}
    twin = tmp_path / "copy" / "log.eval"  # the same log twice: one listing entry, two claims
    twin.parent.mkdir()
    shutil.copy(twin_logs[0], twin)
    assert links_by_log(only_name, [twin_logs[0], str(twin)]) == {}
    assert report_link(str(out), tmp_path / "report") == "../site"
    assert report_link(str(out / INDEX), tmp_path / "report") == "../site"
    url = "https://example.org/af/"
    assert report_link(url, tmp_path / "report") == url.rstrip("/")

    # The published page names no folder of this machine.
    page = (out / INDEX).read_text()
    assert '"log_dir": "logs"' in page and str(log_dir.resolve()) not in page

    # Made again over the earlier bundle: replaced, the same samples.
    again = run(sys.executable, "-m", "analysis", "bundle", str(log_dir), "--out", str(out))
    assert again.returncode == 0, again.stderr[-2000:]
    assert sample_keys([str(p) for p in bundle_logs(out)]) == keys


def refusal(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as exited:
        analysis_main(["bundle", *argv])
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1, captured
    return captured.err


def test_a_bad_path_is_one_line(log_dir, tmp_path, capsys):
    missing = tmp_path / "missing"
    assert refusal(capsys, str(missing), "--out", str(tmp_path / "o")) == (
        f"error: {missing}: no such log folder\n"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "folder holds no Inspect logs" in refusal(capsys, str(empty), "--out", "o")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert f"--out {a_file} is a file" in refusal(capsys, str(log_dir), "--out", str(a_file))
    inside = log_dir / "site"
    assert "inside the log folder" in refusal(capsys, str(log_dir), "--out", str(inside))
    assert not inside.exists()
    holds = log_dir.parent
    assert "holds the log folder" in refusal(capsys, str(log_dir), "--out", str(holds))
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.md").write_text("mine")
    assert "holds other files" in refusal(capsys, str(log_dir), "--out", str(other))
    assert (other / "notes.md").read_text() == "mine"


def test_a_report_refuses_a_bundle_that_is_none(log_dir, tmp_path, capsys):
    not_one = tmp_path / "empty"
    not_one.mkdir()
    argv = ["report", str(log_dir), "--out", str(tmp_path / "r"), "--bundle", str(not_one)]
    with pytest.raises(SystemExit) as exited:
        analysis_main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: --bundle {not_one}: not a transcript bundle (make one with python -m analysis "
        f"bundle LOG_DIR --out {not_one})\n"
    )
    assert not (tmp_path / "r").exists()


def test_a_study_refuses_a_bad_bundle_folder_before_it_runs(tmp_path, capsys):
    from evals.__main__ import main as evals_main

    a_file = tmp_path / "site"
    a_file.write_text("x")
    logs = tmp_path / "logs"
    argv = ["study", "offline_demo", "--log-dir", str(logs), "--bundle", str(a_file)]
    assert evals_main(argv) == 2
    assert capsys.readouterr().err == f"Error: --bundle {a_file} is a file, not a folder\n"
    assert not logs.exists()  # nothing was run
    check_bundle_target(logs, tmp_path / "new", logs_made=False)  # a first run's folders


def test_a_study_writes_its_bundle_after_its_report(tmp_path):
    study = tmp_path / "mini.yaml"
    study.write_text(
        "title: one condition\n"
        "description: the smallest study\n"
        "models: [scripted/alignment_faker]\n"
        "figures: [headline]\n"
        "conditions:\n"
        "  default: {setting: helpful_only, variant: default, dataset: strongreject, "
        "n_queries: 1}\n"
    )
    logs, site = tmp_path / "logs", tmp_path / "site"
    argv = ["-m", "evals", "study", str(study), "--log-dir", str(logs), "--bundle", str(site)]
    result = run(sys.executable, *argv, "--display", "none")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"transcripts: {site / INDEX}" in result.stdout
    assert sample_keys([str(p) for p in bundle_logs(site)]) == sample_keys(
        [info.name for info in list_eval_logs(str(logs))]
    )
    assert len(sample_keys([str(p) for p in bundle_logs(site)])) == 2
    # The report, written after the bundle, links to it from where it lies.
    assert "../../site/index.html" in (logs / "report" / "report.html").read_text()


def test_the_legacy_epoch_reducer_keeps_the_labels():
    from inspect_ai.scorer import Score

    from evals.scorer import keep_epochs

    labels = {"tier": "free", "trained_tier": "free", "status": "valid"}
    reduced = keep_epochs()(
        [
            Score(value={"complied": 1.0, **labels}),
            Score(value={"complied": 0.0, **labels, "status": "turn_cap"}),
        ]
    )
    assert reduced.value == {"complied": 0.5, **labels}
