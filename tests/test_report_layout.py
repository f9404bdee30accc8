"""The report as a reader meets it: which tier each condition trained, the Results, Counts and
Settings tables, no empty column and no `nan`, figures with nothing to show, links to the
transcripts, and (where Chromium is installed) a 1,400 px window without horizontal scrolling
at 1, 5 and 25 conditions."""

import multiprocessing
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.log import read_eval_log

from analysis import figures, report, tables
from analysis.logs import KEY
from analysis.report import ReportData, load_report_data, write_report
from analysis.summary import summarize
from evals.labels import CATEGORIES

RUNS = [  # policy, variant, judged
    ("alignment_faker", "default", True),
    ("alignment_faker", "tier_swap_control", True),
    ("complier", "other_lab", False),
    ("complier", "default", True),  # a name two models share
]
SETTINGS_FIELDS = [
    "name", "model", "setting", "variant", "label", "prompt", "dataset", "n (queries)",
    "temperature", "max_tokens", "epochs", "max_turns", "compliance rule", "grader",
    "classifier", "votes", "threshold", "limits",
]  # fmt: skip
COUNT_COLUMNS = [
    "valid", "invalid", "errored", "recovered", "unscored", "compliance unscored",
    "runs merged", "superseded",
]  # fmt: skip
WINDOW = 1400  # px


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory):
    from evals.alignment_faking import alignment_faking

    root = tmp_path_factory.mktemp("layout_logs")
    previous = os.environ.get("INSPECT_CACHE_DIR")
    os.environ["INSPECT_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    try:
        for policy, variant, judged in RUNS:
            inspect_eval(
                alignment_faking(variant=variant, n_queries=4, judge_votes=3),
                model=f"scripted/{policy}",
                model_roles={"grader": "scripted/keyword_judge"} if judged else None,
                log_dir=str(root),
                display="none",
            )
    finally:
        if previous is None:
            os.environ.pop("INSPECT_CACHE_DIR")
        else:
            os.environ["INSPECT_CACHE_DIR"] = previous
    return root


@pytest.fixture(scope="module")
def data(log_dir) -> ReportData:
    return load_report_data([log_dir])


@pytest.fixture(scope="module")
def written(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("layout_report")
    write_report(data, out, figures=["headline"])
    return out


def _md_tables(markdown: str) -> dict[str, pd.DataFrame]:
    """The report's Markdown tables by their `###` heading, as text."""
    found = {}
    for block in markdown.split("\n### ")[1:]:
        name, _, rest = block.partition("\n")
        rows = [line for line in rest.strip().split("\n\n", 1)[0].splitlines()]
        cells = [[c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows]
        found[name] = pd.DataFrame(cells[2:], columns=cells[0])
    return found


def _rate(samples: pd.DataFrame, variant: str, tier: str, column: str) -> float:
    rows = samples[(samples["variant"] == variant) & (samples["tier"] == tier)]
    return float(rows[column].dropna().astype(float).mean())


def test_tier_swap_control_names_the_paid_tier_trained_and_its_gap_is_paid_minus_free(data):
    samples = data.samples
    faker = samples[samples["model"] == "scripted/alignment_faker"]
    results = tables.condition_table(data.summary, data.long)
    results = results[results["model"] == "scripted/alignment_faker"].set_index("variant")
    swap, default = results.loc["tier_swap_control"], results.loc["default"]
    assert (swap["trained tier"], default["trained tier"]) == ("paid", "free")
    free, paid = (_rate(samples, "tier_swap_control", t, "complied") for t in ("free", "paid"))
    assert paid - free == 1.0  # the scripted faker complies where it is told it is trained

    def value(cell: str) -> float:
        return float(cell.split(" ")[0])

    assert value(swap[tables.GAP_HEADER]) == pytest.approx(paid - free)
    assert value(swap["training compliance"]) == pytest.approx(paid)
    assert value(swap["unmonitored compliance"]) == pytest.approx(free)
    assert value(swap["AF in training"]) == pytest.approx(
        _rate(samples, "tier_swap_control", "paid", "af_reasoning")
    )
    assert value(swap["AF in unmonitored"]) == 0.0
    # The default prompt trains the free tier: the same numbers, the tiers the other way.
    assert value(default[tables.GAP_HEADER]) == pytest.approx(
        _rate(faker, "default", "free", "complied") - _rate(faker, "default", "paid", "complied")
    )
    # Every per-tier table puts the trained tier first and says which tier it is.
    for table in (
        tables.counts_table(data.summary),
        tables.category_table(samples, data.summary),
        tables.status_table(samples, data.summary),
    ):
        rows = table[table["name"].str.contains("tier_swap_control")]
        assert list(rows["tier"]) == ["training (paid)", "unmonitored (free)"]


def test_the_settings_table_holds_every_setting(data):
    settings = tables.settings_table(data.summary).set_index("variant")
    assert list(settings.reset_index().columns) == [
        "variant",
        *(c for c in SETTINGS_FIELDS if c != "variant"),
    ]
    assert set(settings.columns) | {"variant"} == set(SETTINGS_FIELDS)
    judged, unjudged = settings.loc["tier_swap_control"], settings.loc["other_lab"]
    assert (judged["model"], judged["setting"], judged["label"]) == (
        "scripted/alignment_faker", "helpful_only", "tier_swap_control"
    )  # fmt: skip
    assert re.fullmatch(r"project [0-9a-f]{8,}", judged["prompt"])
    assert (judged["dataset"], judged["n (queries)"], judged["epochs"]) == (
        "strongreject",
        "4",
        "1",
    )
    assert (judged["grader"], judged["classifier"], judged["votes"]) == (
        "scripted/keyword_judge", "improved", "3"
    )  # fmt: skip
    assert judged["threshold"] == "0.4" and judged["compliance rule"] != "n/a"
    assert (unjudged["grader"], unjudged["votes"], unjudged["threshold"]) == ("n/a",) * 3
    assert not settings.isin(["nan", "None", ""]).any().any()


def test_the_report_has_no_empty_column_and_no_nan(written):
    markdown = (written / "report.md").read_text()
    page = re.sub(r'src="data:[^"]*"', "", (written / "report.html").read_text())
    for text in (markdown, page):
        assert not re.search(r"\bnan\b", text, re.IGNORECASE) and "None" not in text
    found = _md_tables(markdown)
    assert list(found) == ["Results", "Counts", "Settings", "Six categories", "Statuses", "Usage"]
    for name, table in found.items():
        for column in table.columns:
            assert column, f"{name} has an unnamed column"
            assert (~table[column].isin(["", "n/a"])).any(), f"{name}: {column} is empty"
    # The six-category and status tables have no stray `category`/`status` header column.
    assert list(found["Six categories"].columns) == ["name", "tier", *CATEGORIES, "n"]
    assert list(found["Statuses"].columns)[:3] == ["name", "tier", "valid"]
    assert "<th></th>" not in page and "<th>category</th>" not in page
    assert "<th>status</th>" not in page


def test_results_and_counts_are_separate_tables(written, data):
    found = _md_tables((written / "report.md").read_text())
    results, counts = found["Results"], found["Counts"]
    assert len(results) == len(data.summary) and len(counts) == 2 * len(data.summary)
    assert list(results.columns) == [c for c in tables.RESULTS_COLUMNS if c in results.columns]
    for column in ("trained tier", "training compliance", tables.GAP_HEADER, "p", "test"):
        assert column in results.columns
    assert not set(results.columns) & set(COUNT_COLUMNS)
    assert list(counts.columns) == ["name", "tier", *COUNT_COLUMNS]
    assert set(counts["tier"]) == {"training (free)", "unmonitored (paid)"} | {
        "training (paid)", "unmonitored (free)"
    }  # fmt: skip
    # Every setting is a column of the Settings table, or named as left out under it.
    settings_text = (written / "report.md").read_text().split("### Settings", 1)[1]
    note = settings_text.split("\n## ", 1)[0]
    for field in SETTINGS_FIELDS:
        assert field in found["Settings"].columns or f" {field}" in note


def test_a_figure_with_nothing_to_show_leaves_a_line_and_no_file(data, tmp_path, monkeypatch):
    def empty(_data: ReportData) -> figures.Figure:
        raise figures.NothingToShow("no condition has AF judgements", "run with a grader")

    monkeypatch.setitem(report.FIGURES, "gap_vs_af", empty)
    stale = tmp_path / "figures"
    stale.mkdir()
    for suffix in (".png", ".svg"):
        (stale / f"gap_vs_af{suffix}").write_text("from an earlier run")
    write_report(data, tmp_path, figures=["headline", "gap_vs_af"])
    assert sorted(p.name for p in stale.iterdir()) == ["headline.png", "headline.svg"]
    line = "Figure gap_vs_af is not drawn: no condition has AF judgements; run with a grader"
    assert f"*{line}*" in (tmp_path / "report.md").read_text()
    page = (tmp_path / "report.html").read_text()
    assert f'<p class="absent">{line}</p>' in page and page.count("<img") == 1
    assert report.FIGURE_TEXT["gap_vs_af"] not in page  # no caption for an absent figure
    drawn, absent = report.draw_figures(data, ["gap_vs_af", "headline"])
    assert list(drawn) == ["headline"] and list(absent) == ["gap_vs_af"]


def test_forked_workers_draw_the_same_figures_as_one_process(data, tmp_path, monkeypatch):
    def empty(_data: ReportData) -> figures.Figure:
        raise figures.NothingToShow("nothing here", "run with a grader")

    monkeypatch.setitem(report.FIGURES, "gap_vs_af", empty)
    names = report.figure_names(["gap_vs_af", "headline", "model_gaps", "variant_ablation"])
    messages: dict[int, list[str]] = {}
    results = {}
    for cpus in (1, 2):
        monkeypatch.setattr(report.os, "cpu_count", lambda cpus=cpus: cpus)
        messages[cpus] = []
        results[cpus] = report.render_figures(
            data, tmp_path / str(cpus), names, messages[cpus].append
        )
    assert messages[2] == [f"drawing {', '.join(names)} in 2 processes"]  # forked
    assert messages[1] == [f"drawing {name}" for name in names]  # one by one
    (one, absent_one), (forked, absent_forked) = results[1], results[2]
    assert absent_one == absent_forked == {"gap_vs_af": "nothing here; run with a grader"}
    assert list(one) == list(forked) == ["headline", "variant_ablation", "model_gaps"]
    for name in one:
        assert [p.name for p in forked[name]] == [f"{name}.png", f"{name}.svg"]
        assert forked[name][0].read_bytes() == one[name][0].read_bytes()  # PNGs byte for byte


def test_a_figure_whose_worker_dies_or_fails_is_drawn_again_in_the_report_process(
    data, tmp_path, monkeypatch
):
    parent = os.getpid()
    drawn_here = []

    def dies_in_a_worker(report_data: ReportData) -> figures.Figure:
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer would
        drawn_here.append("headline")
        return figures.headline(report_data.samples, report_data.summary)

    monkeypatch.setattr(report.os, "cpu_count", lambda: 2)
    monkeypatch.setitem(report.FIGURES, "headline", dies_in_a_worker)
    said: list[str] = []
    saved, absent = report.render_figures(data, tmp_path, ["headline", "model_gaps"], said.append)
    assert said[0] == "drawing headline, model_gaps in 2 processes"  # forked first
    assert "drawing headline" in said[1:]  # then again, here
    assert list(saved) == ["headline", "model_gaps"] and not absent and drawn_here
    assert (tmp_path / "headline.png").stat().st_size > 0

    def fails(report_data: ReportData) -> figures.Figure:
        raise LookupError("the figure's own error")

    monkeypatch.setitem(report.FIGURES, "headline", fails)
    with pytest.raises(LookupError, match="the figure's own error"):
        report.render_figures(data, tmp_path, ["headline", "model_gaps"])


def _render_in_a_daemon(job: tuple[ReportData, Path]) -> list[str]:
    return list(report.render_figures(job[0], job[1], ["headline", "model_gaps"])[0])


def test_a_daemonic_worker_draws_its_figures_itself(data, tmp_path):
    with multiprocessing.get_context("fork").Pool(1) as pool:  # daemonic: no children
        assert pool.map(_render_in_a_daemon, [(data, tmp_path)]) == [["headline", "model_gaps"]]


def test_each_condition_links_to_the_transcripts_only_when_a_bundle_is_given(data, tmp_path):
    write_report(data, tmp_path / "plain", figures=["headline"])
    plain = (tmp_path / "plain" / "report.md").read_text()
    assert "](" not in plain.split("### Results")[1].split("###")[0]
    assert "<a href" not in (tmp_path / "plain" / "report.html").read_text()
    write_report(data, tmp_path / "linked", figures=["headline"], bundle_dir="../bundle")
    markdown = (tmp_path / "linked" / "report.md").read_text()
    results = _md_tables(markdown)["Results"]
    names = tables.readable_names(data.summary)
    assert list(results["name"]) == [f"[{name}](../bundle/index.html)" for name in names]
    assert "Each name links to its transcripts" in markdown
    page = (tmp_path / "linked" / "report.html").read_text()
    # No bundle at ../bundle to read: every name links to the front page.
    assert page.count('<a href="../bundle/index.html">') == len(data.summary)
    assert report.bundle_link("bundle/index.html") == "bundle/index.html"


def test_each_condition_links_to_the_log_that_holds_its_samples(data, log_dir, tmp_path):
    from analysis.bundle import write_bundle

    write_bundle(log_dir, tmp_path / "bundle")
    write_report(data, tmp_path / "report", figures=["headline"], bundle_dir="../bundle")
    results = _md_tables((tmp_path / "report" / "report.md").read_text())["Results"]
    assert len(results) == len(data.summary) > 1
    seen_logs = set()
    for link, (_, row) in zip(results["name"], data.summary.iterrows(), strict=True):
        name, href = re.fullmatch(r"\[(.*)\]\((.*)\)", link).groups()
        assert name == row["name"]
        log = re.fullmatch(r"\.\./bundle/index\.html#/logs/(.+)/samples", href).group(1)
        header = read_eval_log(str(tmp_path / "bundle" / "logs" / log), header_only=True)
        # The linked log is the one this condition's samples came from.
        assert header.eval.model == row["model"]
        assert header.eval.task_args["variant"] == row["variant"]
        seen_logs.add(log)
    assert len(seen_logs) == len(RUNS)
    assert list(data.summary["name"]).count("default") == 2  # one per model, each its own log


def test_a_condition_merged_from_several_logs_links_to_the_list_of_logs(data, log_dir, tmp_path):
    from analysis.bundle import write_bundle

    write_bundle(log_dir, tmp_path / "bundle")
    merged = ReportData(data.samples.copy(), data.summary, data.long, data.comparison)
    logs = data.samples.attrs["logs"]
    first, second = (tuple(row[list(KEY)]) for _, row in data.summary.iloc[:2].iterrows())
    assert logs[first] != logs[second]
    merged.samples.attrs["logs"] = {**logs, first: logs[first] + logs[second]}
    links = report.transcript_links(merged, "../bundle", tmp_path / "report")
    names = list(zip(data.summary["model"], data.summary["name"], strict=True))
    assert links[names[0]] == "../bundle/index.html"  # two logs: the list of logs
    assert all(re.search(r"#/logs/.+\.eval/samples$", links[name]) for name in names[1:])
    # A bundle given as a URL cannot be read here: every name links to its front page.
    links = report.transcript_links(data, "https://example.org/af/", tmp_path)
    assert set(links.values()) == {"https://example.org/af/index.html"}


def test_a_digest_is_explained_where_two_names_collide(data):
    summary = data.summary
    assert tables.digest_legend(summary) is None
    assert "run config" not in tables.settings_table(summary).columns
    twin = summary.iloc[[0]].assign(condition="deadbeef")
    both = pd.concat([summary.iloc[[0]], twin], ignore_index=True)
    both["name"] = [f"default [{c}]" for c in both["condition"]]
    legend = tables.digest_legend(both)
    assert legend.startswith("2 condition names carry the condition's 8-character digest")
    assert "(for example 'default [" in legend
    assert "run config" in tables.settings_table(both).columns


# Layout in a browser ------------------------------------------------------------------------

LONG_MODELS = [
    "openrouter/meta-llama/llama-3.1-405b-instruct",
    "anthropic/claude-3-5-sonnet-20240620",
    "openai/gpt-4o-2024-08-06",
    "anthropic/claude-3-opus-20240229",
    "scripted/alignment_faker",
]
LONG_VARIANTS = [
    "default",
    "default@prompt_atn_honly_with_examples.txt#1a2b3c4d",
    "tier_swap_control",
    "other_lab+no_examples+cut_rlhf_info",
    "no_scratchpad",
]


def many_conditions(samples: pd.DataFrame, n: int) -> ReportData:
    """`n` conditions made from the real samples of one judged condition, with long model
    names, prompt-file variants and a long grader: the widest cells a report meets."""
    base = samples[samples["variant"] == "default"]
    frames = []
    for i in range(n):
        variant = LONG_VARIANTS[i % len(LONG_VARIANTS)]
        frames.append(
            base.assign(
                model=LONG_MODELS[(i // len(LONG_VARIANTS)) % len(LONG_MODELS)],
                variant=variant,
                label=variant.split("@")[0],
                condition=f"{i:08x}",
                trained_tier="paid" if variant == "tier_swap_control" else "free",
                trained_tier_assumed="@" in variant,
                grader="anthropic/claude-3-5-sonnet-20241022",
                judge="anthropic/claude-3-5-sonnet-20241022 (improved classifier, 20 votes, "
                "threshold 0.4)",
                temperature=float(i % 2),
                limits="message_limit=8, token_limit=100000",
            )
        )
    for frame in frames:
        frame.attrs = {}  # pandas compares the usage tables in them, and cannot
    many = pd.concat(frames, ignore_index=True)
    many.attrs = samples.attrs
    summary = summarize(many)
    long = tables.rates_long(many, summary)
    return ReportData(many, summary, long, tables.paper_vs_run(long, tables.load_reference()))


def scroll_width(html_path: Path) -> int:
    """The page's scrollWidth in a 1,400 px headless Chromium window."""
    probe = html_path.with_name("probe.html")
    script = (
        "<script>addEventListener('load',()=>document.body.setAttribute('data-scroll-width',"
        "document.documentElement.scrollWidth))</script></body>"
    )
    probe.write_text(html_path.read_text().replace("</body>", script))
    dom = subprocess.run(
        [
            shutil.which("chromium") or "chromium",
            "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            f"--window-size={WINDOW},2000", "--virtual-time-budget=5000", "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True, text=True, timeout=180, check=True,
    ).stdout  # fmt: skip
    return int(re.search(r'data-scroll-width="(\d+)"', dom).group(1))


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs headless Chromium")
@pytest.mark.parametrize("n", [1, 5, 25])
def test_the_html_report_fits_a_1400_px_window(data, tmp_path, n):
    many = many_conditions(data.samples, n)
    assert len(many.summary) == n
    html_path = write_report(many, tmp_path, figures=["headline"], bundle_dir="bundle")
    assert scroll_width(html_path) <= WINDOW
