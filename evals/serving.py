"""Commands for serving open models on GPUs: one GPU, a multi-GPU machine, a Ray cluster.

`python -m evals serve MODEL --gpus N [--nodes K]` prints them. On one machine Inspect's
`vllm` provider starts the server itself; across machines vLLM's own Ray executor serves
one model from all of them, and the eval reaches it as an OpenAI-compatible server.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals.errors import ConfigError

DEFAULT_CONTEXT = 16384
"""Enough for the ~5,600-token system prompt, a long query and several 1,000-token turns."""
PORT = 8000
ASSUMED_REPLY = 1000
"""Tokens of one reply when no --max-tokens is given (as `python -m evals estimate` assumes)."""


@dataclass(frozen=True)
class ServePlan:
    model: str
    """A Hugging Face model id, e.g. meta-llama/Llama-3.1-405B-Instruct."""
    gpus: int = 1
    """GPUs per machine."""
    nodes: int = 1
    max_model_len: int = DEFAULT_CONTEXT

    def __post_init__(self) -> None:
        # Inspect's provider prefix is added to the commands here; given one, drop it.
        object.__setattr__(self, "model", self.model.removeprefix("vllm/"))
        if self.gpus < 1 or self.nodes < 1 or self.max_model_len < 1:
            raise ValueError("gpus, nodes and max_model_len must be at least 1")


@dataclass(frozen=True)
class ContextNeed:
    """Tokens of the eval's largest first request and its reply, as the run checks them."""

    system: int
    user: int
    reply: int
    method: str
    reply_assumed: bool

    @property
    def total(self) -> int:
        return self.system + self.user + self.reply


def context_need(model: str, task_args: dict[str, Any], max_tokens: int | None) -> ContextNeed:
    """What the eval with these `-T` arguments needs of the context: the system prompt, the
    longest user turn and one reply, the rule the run itself refuses by before its first
    request (see preflight.check_context). Counted with the model's tokenizer where one is
    cached here, else estimated. Building the task checks every `-T` argument too."""
    from evals.alignment_faking import alignment_faking
    from evals.preflight import no_large_run_warning
    from evals.tokens import ESTIMATED

    with no_large_run_warning():  # it belongs to the run, not to this command
        samples = list(alignment_faking(**task_args).dataset)
    count, method = _tokenizer(model)
    turns = {str(sample.input[1].text) for sample in samples}  # type: ignore[index]
    longest = sorted(turns, key=len)[-5:]  # the longest in characters, as preflight does
    return ContextNeed(
        system=count(str(samples[0].input[0].text)),  # type: ignore[index]
        user=max(count(turn) for turn in longest),
        reply=max_tokens or ASSUMED_REPLY,
        method=method or ESTIMATED,
        reply_assumed=max_tokens is None,
    )


def check_context(plan: ServePlan, need: ContextNeed) -> None:
    """Refuse a --max-model-len the eval's prompt and reply do not fit in, with the numbers."""
    if plan.max_model_len >= need.total:
        return
    reply = (
        f"a reply of {need.reply:,} (assumed; --max-tokens sets it)"
        if need.reply_assumed
        else f"--max-tokens ({need.reply:,})"
    )
    fits = f" (the default, {DEFAULT_CONTEXT:,}, fits)" if DEFAULT_CONTEXT >= need.total else ""
    raise ConfigError(
        f"--max-model-len {plan.max_model_len} is too small for this eval: the system prompt "
        f"({need.system:,} tokens), the longest user turn ({need.user:,}) and {reply} need "
        f"{need.total:,} (counted with {need.method}); give at least {need.total:,}{fits}"
    )


def check_gpus(plan: ServePlan) -> str | None:
    """Refuse a GPU count that cannot split the model's attention heads (tensor parallelism
    gives each GPU an equal share of them); return a note with the rule when the head count
    is not known here."""
    heads = attention_heads(plan.model)
    if heads is None:
        if plan.gpus == 1:
            return None
        return (
            f"note: --gpus {plan.gpus} is the tensor parallel size, which must divide the "
            "model's number of attention heads (usually a power of two: 1, 2, 4 or 8 GPUs); "
            "its config.json is not here to check"
        )
    if heads % plan.gpus:
        counts = [str(n) for n in range(1, min(heads, 16) + 1) if heads % n == 0]
        fits = " or ".join([", ".join(counts[:-1]), counts[-1]] if len(counts) > 1 else counts)
        raise ConfigError(
            f"--gpus {plan.gpus} cannot split the {heads} attention heads of {plan.model}: the "
            f"tensor parallel size must divide them; use {fits} GPU(s) per machine"
        )
    return None


def attention_heads(model: str) -> int | None:
    """`num_attention_heads` from the model's config.json where it is here offline: a local
    model folder, or the Hugging Face cache. None when it is not."""
    hub = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
    snapshots = Path(hub or home / "hub") / f"models--{model.replace('/', '--')}" / "snapshots"
    cached = sorted(snapshots.glob("*/config.json"), key=lambda p: p.stat().st_mtime)
    for path in [Path(model).expanduser() / "config.json", *reversed(cached)]:
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        # Multimodal models keep the language model's settings in a nested config.
        for part in (config, config.get("text_config"), config.get("llm_config")):
            if isinstance(part, dict) and isinstance(part.get("num_attention_heads"), int):
                return int(part["num_attention_heads"])
    return None


def _tokenizer(model: str) -> tuple[Any, str | None]:
    """The model's own tokenizer if transformers and its files are here offline, else a
    character estimate (the method is then None)."""
    try:
        from transformers import AutoTokenizer  # the hf extra

        tokenizer = AutoTokenizer.from_pretrained(model, local_files_only=True)
    except Exception:  # not installed, not cached, or not a tokenizer: estimate instead
        from evals.tokens import Counter

        return Counter(None).count, None
    return (
        lambda text: len(tokenizer.encode(text, add_special_tokens=False)),
        "the model's own tokenizer (Hugging Face)",
    )


def inspect_vllm_command(plan: ServePlan, task_args: list[str]) -> list[str]:
    """One machine: Inspect starts `vllm serve` with these arguments (tensor parallel over
    its GPUs, automatic prefix caching on, the context the prompt needs)."""
    return [
        "inspect",
        "eval",
        "evals/alignment_faking.py",
        "--model",
        f"vllm/{plan.model}",
        "-M",
        f"tensor_parallel_size={plan.gpus}",
        "-M",
        f"max_model_len={plan.max_model_len}",
        "-M",
        "enable_prefix_caching=true",
        *task_args,
    ]


def ray_commands(plan: ServePlan, head: str = "HEAD_IP") -> list[list[str]]:
    """Several machines: a Ray cluster, then vLLM serving across it with its Ray executor
    (tensor parallel within a machine, pipeline parallel across machines)."""
    return [
        ["ray", "start", "--head", "--port=6379"],
        ["ray", "start", f"--address={head}:6379"],
        [
            "vllm",
            "serve",
            plan.model,
            "--tensor-parallel-size",
            str(plan.gpus),
            "--pipeline-parallel-size",
            str(plan.nodes),
            "--distributed-executor-backend",
            "ray",
            "--max-model-len",
            str(plan.max_model_len),
            "--enable-prefix-caching",
            "--port",
            str(PORT),
        ],
    ]


def openai_api_command(plan: ServePlan, task_args: list[str], head: str = "HEAD_IP") -> str:
    """The eval against the cluster's server (LOCAL_BASE_URL names it for `openai-api`)."""
    env = f"LOCAL_BASE_URL=http://{head}:{PORT}/v1 LOCAL_API_KEY=none"
    command = ["inspect", "eval", "evals/alignment_faking.py"]
    command += ["--model", f"openai-api/local/{plan.model}", *task_args]
    return f"{env} {shlex.join(command)}"


def describe(plan: ServePlan, task_args: list[str], note: str | None = None) -> str:
    """The commands for a plan, as a user would run them (a note first, as a comment)."""
    first = [f"# {note}"] if note else []
    if plan.nodes == 1:
        return "\n".join(
            [
                *first,
                f"# one machine, {plan.gpus} GPU(s): Inspect starts vLLM itself",
                shlex.join(inspect_vllm_command(plan, task_args)),
            ]
        )
    head, worker, serve = ray_commands(plan)
    return "\n".join(
        [
            *first,
            f"# {plan.nodes} machines with {plan.gpus} GPU(s) each, vLLM over a Ray cluster",
            "# on the head machine:",
            shlex.join(head),
            f"# on each of the other {plan.nodes - 1} machine(s):",
            shlex.join(worker),
            "# then on the head machine:",
            shlex.join(serve),
            "# and the eval, from any machine that reaches the head:",
            openai_api_command(plan, task_args),
        ]
    )
