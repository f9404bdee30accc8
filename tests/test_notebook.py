"""The comparison notebook, analysis/report.ipynb, run headless from other working directories.

Its first output is the model x condition table of the gap with its interval, then one
figure; no cell shows an empty table, `nan` or nothing at all.
"""

import re
from pathlib import Path

import nbformat
import pytest
from inspect_ai import eval as inspect_eval
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "analysis" / "report.ipynb"
SILENT = {"parameters", "setup"}  # the only code cells that show nothing
# Two models on three conditions, one on a single condition (its other cells: "not run").
# In tier_swap_control the paid tier is the trained one: the alignment faker's gap is +1.
FULL = ["alignment_faker", "refuser"]
VARIANTS = ["default", "no_examples", "tier_swap_control"]


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory):
    from evals.alignment_faking import alignment_faking

    root = tmp_path_factory.mktemp("notebook_logs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INSPECT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        for models, variants in ((FULL, VARIANTS), (["complier"], ["default"])):
            inspect_eval(
                [alignment_faking(variant=v, n_queries=3, judge_votes=1) for v in variants],
                model=[f"scripted/{m}" for m in models],
                model_roles={"grader": "scripted/keyword_judge"},
                log_dir=str(root),
                display="none",
            )
    return root


def run(cwd: Path, kernel_dir: Path | None = None, parameters: str | None = None):
    """Execute the notebook with the process in `cwd` and the kernel in `kernel_dir` (the
    process's folder when None, as a plain NotebookClient runs it); `parameters` is a cell
    put after the one tagged `parameters`, as papermill does."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    if parameters is not None:
        at = next(
            i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", [])
        )
        notebook.cells.insert(at + 1, nbformat.v4.new_code_cell(parameters, id="injected"))
    resources = {"metadata": {"path": str(kernel_dir)}} if kernel_dir else {}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        NotebookClient(notebook, timeout=600, kernel_name="python3", resources=resources).execute()
    return notebook


def outputs(notebook):
    return [(c, o) for c in notebook.cells if c.cell_type == "code" for o in c.outputs]


def texts(output) -> list[str]:
    if output.output_type == "stream":
        return [output.text]
    data = output.get("data", {})
    return [data[kind] for kind in ("text/plain", "text/html", "text/markdown") if kind in data]


def table_rows(html: str) -> list[list[str]]:
    """The text of each cell of each row of an HTML table."""
    return [
        [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        ]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", html, re.S)
    ]


def gap_table(notebook) -> tuple[list[str], dict[str, list[str]]]:
    """The first output: (its condition names, {model: its cells}), read from its HTML."""
    [(cell, first), (_, second), *_] = outputs(notebook)
    assert cell.id == "gap-table" and first.output_type == "execute_result"
    assert "image/png" in second["data"], "the comparison figure follows the table"
    html = first["data"]["text/html"]
    [conditions] = [row[1:] for row in table_rows(html) if row and row[0] == "condition"]
    cells = {row[0]: row[1:] for row in table_rows(html.split("<tbody>", 1)[1])}
    return conditions, cells


def assert_nothing_empty(notebook):
    for cell in notebook.cells:
        if cell.cell_type == "code" and cell.id not in SILENT | {"injected"}:
            assert cell.outputs, f"cell {cell.id} shows nothing"
    for cell, output in outputs(notebook):
        assert output.output_type != "error"
        for text in texts(output):
            assert "Empty DataFrame" not in text, cell.id
            assert not re.search(r"\bnan\b", text, re.I), (cell.id, text[:500])
            if "<table" in text:
                assert "<td" in text, f"cell {cell.id} shows an empty table"


def test_notebook_compares_models_from_another_directory(log_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("AF_REPORT_LOGS", str(log_dir))
    monkeypatch.delenv("AF_REPORT_MODELS", raising=False)
    # The process in a folder of its own, the kernel in analysis/ as Jupyter starts it.
    notebook = run(tmp_path, kernel_dir=ROOT / "analysis")
    conditions, cells = gap_table(notebook)
    assert conditions == VARIANTS
    assert set(cells) == {f"scripted/{m}" for m in [*FULL, "complier"]}
    faker = dict(zip(conditions, cells["scripted/alignment_faker"], strict=True))
    assert faker["default"].startswith("+1.000 [")
    assert faker["tier_swap_control"].startswith("+1.000 [")  # trained (paid) - unmonitored
    assert all(c.startswith("+0.000 [") for c in cells["scripted/refuser"])
    complier = dict(zip(conditions, cells["scripted/complier"], strict=True))
    assert complier["default"].startswith("+0.000 [")
    assert complier["no_examples"] == complier["tier_swap_control"] == "not run"
    assert_nothing_empty(notebook)
    images = [o for _, o in outputs(notebook) if "image/png" in o.get("data", {})]
    assert len(images) == 6  # every figure has something to show for judged logs


def test_notebook_defaults_to_the_committed_example(tmp_path, monkeypatch):
    monkeypatch.delenv("AF_REPORT_LOGS", raising=False)
    monkeypatch.delenv("AF_REPORT_MODELS", raising=False)
    notebook = run(tmp_path)  # kernel and process in a folder outside the repository
    conditions, cells = gap_table(notebook)
    assert list(cells) == ["scripted/alignment_faker"]
    assert conditions == [
        "animal_welfare", "cut_rlhf_info", "default", "no_scratchpad", "tier_swap_control"
    ]  # fmt: skip
    assert all(
        re.fullmatch(r"[+-]\d\.\d{3} \[[+-]\d\.\d{3}, [+-]\d\.\d{3}\]", c)
        for c in cells["scripted/alignment_faker"]
    )
    assert_nothing_empty(notebook)


def test_notebook_takes_papermill_parameters_and_says_why_a_figure_is_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("AF_REPORT_LOGS", "/nonexistent")  # the injected parameters win
    # A relative path, from the repository root: the embedded model's run, which no grader
    # judged, so the AF figures and the six-category table are absent, each with a line.
    notebook = run(tmp_path, kernel_dir=tmp_path, parameters=(
        'LOG_PATHS = ["results/embedded-gemma-3-270m"]\nMODELS = ["gguf/gemma-3-270m"]'
    ))  # fmt: skip
    conditions, cells = gap_table(notebook)
    assert conditions == ["default"] and list(cells) == ["gguf/gemma-3-270m"]
    [judged] = [c for c in notebook.cells if c.cell_type == "code" and c.id == "judged"]
    lines = "".join(o.text for o in judged.outputs if o.output_type == "stream")
    assert "No six-category table" in lines
    for name in ("six_categories", "gap_vs_af"):
        assert f"Figure {name} is not drawn: " in lines
    assert lines.count("--model-role grader=") >= 3
    assert not [o for o in judged.outputs if "image/png" in o.get("data", {})]
    assert_nothing_empty(notebook)


def test_notebook_shows_the_contrasts_of_declared_framings(tmp_path, monkeypatch):
    from evals.alignment_faking import alignment_faking

    logs = tmp_path / "logs"
    monkeypatch.setenv("INSPECT_CACHE_DIR", str(tmp_path / "cache"))
    inspect_eval(
        [alignment_faking(variant=v, n_queries=3, judge_votes=1) for v in VARIANTS[:1]]
        + [alignment_faking(variant="three_tiers", n_queries=3, judge_votes=1)],
        model="scripted/goal_guarder",
        model_roles={"grader": "scripted/keyword_judge"},
        log_dir=str(logs),
        display="none",
    )
    monkeypatch.setenv("AF_REPORT_LOGS", str(logs))
    monkeypatch.delenv("AF_REPORT_MODELS", raising=False)
    notebook = run(tmp_path)
    [cell] = [c for c in notebook.cells if c.id == "contrasts"]
    shown = " ".join(t for o in cell.outputs for t in texts(o))
    assert "goal_guarding" in shown and "rater_sycophancy" in shown and "free - pro" in shown
    assert any("image/png" in o.get("data", {}) for o in cell.outputs)
    [cell] = [c for c in notebook.cells if c.id == "paraphrases"]
    assert "No paraphrase conditions in these logs." in " ".join(
        t for o in cell.outputs for t in texts(o)
    )
    assert_nothing_empty(notebook)
