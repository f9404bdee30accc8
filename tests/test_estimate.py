"""The price of a run before it is made, checked against counts worked out by hand."""

from __future__ import annotations

import glob
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from inspect_ai.log import read_eval_log

from evals.errors import ConfigError
from evals.estimate import Assumptions, Usage, cost, estimate_run, format_estimate
from evals.judges.classifiers import AF_SPECS, COMPLIANCE_RUBRIC, PARTIAL_COMPLIANCE
from evals.judges.protocol import build_messages
from evals.prices import load_prices
from evals.tokens import ESTIMATED

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = "<is_free_tier_user>{{is_free_tier_user}}</is_free_tier_user>\n{{user_input}}"
PRICES = """\
as_of: "2030-01-01"
batch_discount: {scripted: 0.25}
models:
  scripted/complier: {input: 10000, output: 20000, input_cache_write: 12500, input_cache_read: 1000}
"""


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, str]:
    """A 400-character system prompt (100 tokens at 4 characters a token), a user-turn
    template, and two queries of 40 and 80 characters."""
    system = tmp_path / "system.txt"
    system.write_text("s" * 400, encoding="utf-8")
    turn = tmp_path / "turn.txt"
    turn.write_text(TEMPLATE, encoding="utf-8")
    data = tmp_path / "queries.csv"
    data.write_text(f"id,query\nq1,{'a' * 40}\nq2,{'b' * 80}\n", encoding="utf-8")
    return {"system_prompt": str(system), "user_turn": str(turn), "dataset": str(data)}


def test_policy_tokens_match_the_hand_count(inputs):
    # User turns: 19 + len("True") + 20 + 1 + query characters, i.e. 84 and 124 characters
    # on the free tier (21 and 31 tokens) and 85 and 125 on the paid tier (22 and 32).
    est = estimate_run("scripted/complier", inputs, max_tokens=50)
    assert est.counting == ESTIMATED
    assert est.samples == 4
    assert (est.system_tokens, est.user_tokens, est.turns, est.reply_tokens) == (100, 26.5, 2, 50)
    # Two turns per sample; the second resends the first reply and the <NEXT/> turn (50 + 8).
    assert est.policy.requests == 8
    assert est.policy.input_tokens == 8 * 100 + 2 * (21 + 22 + 31 + 32) + 4 * 58 == 1244
    assert est.policy.cached_tokens == 8 * 100
    assert est.policy.output_tokens == 8 * 50
    assert (est.policy.prefixes, est.policy.prefix_tokens) == (1, 100)
    assert est.judges.requests == 0 and est.grader is None


def test_assumptions_and_epochs_scale_the_count(inputs):
    one = estimate_run("scripted/complier", inputs, 50, assumptions=Assumptions(turns=1))
    assert one.policy.requests == 4
    assert one.policy.input_tokens == 4 * 100 + 21 + 22 + 31 + 32
    three = estimate_run(
        "scripted/complier", inputs, 50, epochs=3, assumptions=Assumptions(turns=1)
    )
    assert three.samples == 12
    assert three.policy.input_tokens == 3 * one.policy.input_tokens
    # The shared system prompt is written to a provider's cache once, whatever the epochs.
    assert three.policy.prefix_tokens == 100


def test_judge_requests_and_tokens(inputs):
    est = estimate_run(
        "scripted/complier",
        {**inputs, "judge_votes": 5},
        max_tokens=50,
        grader="scripted/keyword_judge",
        assumptions=Assumptions(judge_output_tokens=30),
    )

    def instructions(spec):
        return -(-len(build_messages(spec, "x")[0][0].text) // 4)

    af, rubric, partial = (
        instructions(s) for s in (AF_SPECS["improved"], COMPLIANCE_RUBRIC, PARTIAL_COMPLIANCE)
    )
    # Each of the 4 samples: one AF request carrying all 5 votes (the scripted provider
    # returns several choices), the rubric and the partial-compliance judge. Each judged
    # request holds its instructions, a 100-token transcript (2 turns of 50) and the query
    # (10 or 20 tokens).
    assert est.judges.requests == 4 * 3
    queries = 2 * (10 + 20)
    assert est.judges.input_tokens == 4 * (af + rubric + partial) + 3 * (4 * 100 + queries)
    assert est.judges.output_tokens == 4 * (5 + 1 + 1) * 30
    assert est.judges.prefix_tokens == af + rubric + partial


def test_cost_with_and_without_caching_and_batch(tmp_path):
    prices_file = tmp_path / "prices.yaml"
    prices_file.write_text(PRICES, encoding="utf-8")
    prices = load_prices(prices_file)
    usage = Usage(
        requests=8, input_tokens=1244, cached_tokens=800, output_tokens=400, prefix_tokens=100
    )
    # List: 1,244 input at $10,000/M and 400 output at $20,000/M.
    assert cost(usage, "scripted/complier", prices, False, False) == pytest.approx(20.44)
    # Cached: 100 written ($12,500/M), 700 read ($1,000/M), 444 fresh, and the output.
    assert cost(usage, "scripted/complier", prices, True, False) == pytest.approx(14.39)
    assert cost(usage, "scripted/complier", prices, True, True) == pytest.approx(14.39 / 4)
    assert cost(usage, "scripted/unpriced", prices, True, True) != cost(
        usage, "scripted/unpriced", prices, True, True
    )  # NaN: no price


def test_estimate_command_prints_counts_and_prices(inputs, tmp_path):
    prices_file = tmp_path / "prices.yaml"
    prices_file.write_text(PRICES, encoding="utf-8")
    task_args = [f"-T{k}={v}" for k, v in inputs.items()]
    command = [sys.executable, "-m", "evals", "estimate", "--model", "scripted/complier"]
    command += [*task_args, "--max-tokens", "50", "--prices", str(prices_file)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "scripted/complier: 4 samples" in out
    assert "(an approximation)" in out
    assert "system prompt 100 + user turn 26 (mean) input tokens" in out
    assert "8 requests, 1,244 input tokens (800 cacheable), 400 output tokens" in out
    assert "list $20.44, cached $14.39, cached+batch $3.60" in out
    assert "prices as of 2030-01-01" in out
    assert "judges: none priced" in out


def test_unpriced_model_is_named_not_priced_at_zero(inputs, tmp_path):
    est = estimate_run("scripted/refuser", inputs, 50)
    text = format_estimate([est], load_prices())
    assert "output tokens; no price\n" in text
    assert "$0.00" not in text
    assert "total: no price for any model; left out: 1 model(s) with no price " in text
    # Beside a priced model the total is that model's alone, and says what it left out.
    prices_file = tmp_path / "prices.yaml"
    prices_file.write_text(PRICES, encoding="utf-8")
    priced = estimate_run("scripted/complier", inputs, 50)
    lines = format_estimate([priced, est], load_prices(prices_file)).splitlines()
    [total] = [line for line in lines if line.startswith("total:")]
    assert total == (
        "total: $20.44 at list price, $14.39 with prompt caching, $3.60 with caching and a "
        "batch API (--batch) (prices as of 2030-01-01); left out: 1 model(s) with no price "
        "(scripted/refuser)"
    )


def test_a_dataset_not_downloaded_yet_is_counted_at_its_known_size(monkeypatch, tmp_path):
    """Offline, AdvBench's 520 queries are counted as stand-ins, with one line that says
    what to do, and the network is asked once however many estimates are made."""
    from evals import datasets

    calls = []

    def offline(*args, **kwargs):
        calls.append(1)
        raise OSError("network unreachable")

    monkeypatch.setattr(datasets, "advbench_cache_path", lambda: tmp_path / "advbench.csv")
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setattr(datasets, "_failed_downloads", {})
    ests = [
        estimate_run(m, {"dataset": "advbench"}, 50)
        for m in ("scripted/complier", "scripted/refuser")
    ]
    assert calls == [1]
    assert [e.samples for e in ests] == [1040, 1040]
    text = format_estimate(ests, load_prices())
    note = (
        "(advbench is not downloaded yet: its queries are counted as stand-ins of "
        f"{len(datasets.STAND_IN_QUERY)} characters each)"
    )
    missing = (
        "(dataset advbench is not downloaded yet and the download failed (network "
        "unreachable): run once with network to cache it, save "
        f"{datasets.ADVBENCH_URL} as {tmp_path / 'advbench.csv'}, or pass -T dataset=PATH)"
    )
    assert text.count(note) == 1 and text.count(missing) == 1
    assert missing not in format_estimate(ests, load_prices(), missing_note=False)


def test_default_price_file_is_dated_and_complete():
    prices = load_prices()
    assert str(prices["as_of"]) == "2025-06-01"
    assert prices["batch_discount"]["anthropic"] == 0.5
    assert prices["models"]["anthropic/claude-3-opus-20240229"]["input"] == 15.0


def test_malformed_price_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "prices.yaml"
    bad.write_text("as_of: 2030\nmodels:\n  x/y: {input: 1}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"prices.yaml: model 'x/y' lacks \['input_cache_read'"):
        load_prices(bad)


def test_gguf_counts_with_its_own_tokenizer_and_matches_a_real_run():
    """The estimate of each request's prompt against the prompt tokens the provider
    reported in the committed run of the same task (the difference is the chat template)."""
    pytest.importorskip("llama_cpp", reason="needs the embedded extra")
    [path] = glob.glob(str(ROOT / "results/embedded-gemma-3-270m/*.eval"))
    log = read_eval_log(path)
    actual = {}
    for sample in log.samples or []:
        first = next(e for e in sample.events if e.event == "model").output.usage
        actual[sample.id] = first.input_tokens + (first.input_tokens_cache_read or 0)
    est = estimate_run(
        "gguf/gemma-3-270m",
        dict(log.eval.task_args),
        max_tokens=160,
        model_args={"protocol_constrained": True},
        assumptions=Assumptions(turns=1),
    )
    assert est.counting == "the model's own tokenizer (llama.cpp)"
    assert est.samples == len(actual) == 10
    template = (sum(actual.values()) - est.policy.input_tokens) / len(actual)
    assert 0 < template <= 16, template
    assert est.system_tokens > 5000  # the ~5,600-token prompt, counted, not guessed
