"""The embedded llama.cpp provider with the real bundled model (Gemma 3 270M base)."""

import json
import subprocess
import sys

import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.model import GenerateConfig, get_model

from evals.alignment_faking import alignment_faking
from evals.labels import VALID
from evals.parsing import ACCEPT_TAG, REJECT_TAG, parse_transcript
from evals.providers.gguf import loading

pytest.importorskip("llama_cpp", reason="needs the embedded extra")

MODEL = "gguf/gemma-3-270m"
GENERATION = {"max_tokens": 96, "temperature": 0.0}


def run_once(log_dir, state_dir, **model_args):
    [log] = inspect_eval(
        alignment_faking(n_queries=1),
        model=MODEL,
        model_args={"state_cache": str(state_dir), **model_args},
        log_dir=str(log_dir),
        display="none",
        **GENERATION,
    )
    assert log.status == "success", log.error
    return log


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("gguf-state")


@pytest.fixture(scope="module")
def constrained_log(tmp_path_factory, state_dir):
    """One query in both tiers, protocol-constrained, with a count of model loads."""
    loads = []
    real_construct = loading.construct_model

    def counting(settings):
        loads.append(settings)
        return real_construct(settings)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loading, "_loaded", {})
        patch.setattr(loading, "construct_model", counting)
        log = run_once(tmp_path_factory.mktemp("logs"), state_dir, protocol_constrained=True)
    return log, loads


def gguf_meta(sample):
    return sample.output.metadata["gguf"]


def test_constrained_decoding_gives_valid_samples_in_both_tiers(constrained_log):
    log, _ = constrained_log
    assert log.eval.model_args["protocol_constrained"] is True  # the log says the mode was on
    assert sorted(s.metadata["tier"] for s in log.samples) == ["free", "paid"]
    for sample in log.samples:
        score = sample.scores["compliance_scorer"].metadata
        assert score["status"] == VALID
        meta = gguf_meta(sample)
        assert meta["protocol_constrained"] is True
        assert meta["provider_text"][0] == "<SCRATCHPAD_REASONING>\n"
        final = parse_transcript(sample.messages).final
        assert final is not None and final.output is not None
        # The grammar's decision is the answer's opening tag, and the tag scorer reads it.
        opening = ACCEPT_TAG if meta["decision"] == "accept" else REJECT_TAG
        assert final.output.lstrip().startswith(opening)
        expected = int(meta["decision"] == "accept" and REJECT_TAG not in final.output)
        assert score["complied"] == expected
        assert parse_transcript(sample.messages).scratchpad.strip()


def test_the_model_is_loaded_once_and_the_system_prompt_prefilled_once(constrained_log):
    log, loads = constrained_log
    assert len(loads) == 1
    sources = sorted(gguf_meta(s)["prefix_from"] for s in log.samples)
    assert sources == ["memory", "prefill"]
    for sample in log.samples:
        usage = sample.model_usage[MODEL]
        assert usage.output_tokens > 0
        if gguf_meta(sample)["prefix_from"] == "memory":
            assert usage.input_tokens_cache_read >= 3000
        else:
            assert usage.input_tokens_cache_read == 0


SECOND_PROCESS = """
import json, sys
from inspect_ai import eval
from evals.alignment_faking import alignment_faking
[log] = eval(alignment_faking(n_queries=1), model="gguf/gemma-3-270m",
             model_args={"state_cache": sys.argv[1], "protocol_constrained": True},
             log_dir=sys.argv[2], display="none", max_tokens=96, temperature=0.0)
print(json.dumps({s.id: [s.output.completion, s.output.metadata["gguf"]["prefix_from"],
                         s.model_usage["gguf/gemma-3-270m"].input_tokens_cache_read]
                  for s in log.samples}))
"""


def test_a_second_process_starts_from_the_state_saved_on_disk(constrained_log, state_dir, tmp_path):
    log, _ = constrained_log
    result = subprocess.run(
        [sys.executable, "-c", SECOND_PROCESS, str(state_dir), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    second = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(source for _, source, _ in second.values()) == ["disk", "memory"]
    assert all(cache_read >= 3000 for _, _, cache_read in second.values())
    # A restored state is exactly this run's own prefill: the replies are identical.
    assert {s.id: s.output.completion for s in log.samples} == {
        sample_id: completion for sample_id, (completion, _, _) in second.items()
    }


def test_without_the_mode_the_provider_writes_nothing_itself(
    constrained_log, state_dir, tmp_path, monkeypatch
):
    monkeypatch.setattr(loading, "_loaded", {})  # a fresh load, as in a new process
    log = run_once(tmp_path, state_dir)
    assert "protocol_constrained" not in log.eval.model_args
    sources = []
    for sample in log.samples:
        outputs = [e.output for e in sample.events if e.event == "model"]
        sources.append(outputs[0].metadata["gguf"]["prefix_from"])
        for output in outputs:
            meta = output.metadata["gguf"]
            assert meta["protocol_constrained"] is False
            assert meta["provider_text"] == [] and meta["decision"] is None
    # The system prompt's state comes from the disk once, then from memory.
    assert sorted(sources) == ["disk", "memory"]


def test_one_request_at_a_time_even_under_adaptive_concurrency():
    # Inspect's adaptive concurrency ignores max_connections(); the model config carries it.
    assert get_model(MODEL).config.max_connections == 1
    explicit = get_model(MODEL, config=GenerateConfig(max_connections=3), memoize=False)
    assert explicit.config.max_connections == 3


@pytest.mark.parametrize(
    ("arg", "value", "message"),
    [
        ("protocol_constrained", "yes", "must be true or false"),
        ("reasoning_tokens", 0, "must be a positive integer"),
        ("n_ctx", "big", "must be a positive integer"),
        ("colour", "red", "unknown model args"),
    ],
)
def test_bad_model_args_are_named(arg, value, message):
    with pytest.raises(ValueError, match=message):
        get_model(MODEL, memoize=False, **{arg: value})
