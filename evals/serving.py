"""Commands for serving open models on GPUs: one GPU, a multi-GPU machine, a Ray cluster.

`python -m evals serve MODEL --gpus N [--nodes K]` prints them. On one machine Inspect's
`vllm` provider starts the server itself; across machines vLLM's own Ray executor serves
one model from all of them, and the eval reaches it as an OpenAI-compatible server.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

DEFAULT_CONTEXT = 16384
"""Enough for the ~5,600-token system prompt, a long query and several 1,000-token turns."""
PORT = 8000


@dataclass(frozen=True)
class ServePlan:
    model: str
    """A Hugging Face model id, e.g. meta-llama/Llama-3.1-405B-Instruct."""
    gpus: int = 1
    """GPUs per machine."""
    nodes: int = 1
    max_model_len: int = DEFAULT_CONTEXT

    def __post_init__(self) -> None:
        if self.gpus < 1 or self.nodes < 1 or self.max_model_len < 1:
            raise ValueError("gpus, nodes and max_model_len must be at least 1")


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


def describe(plan: ServePlan, task_args: list[str]) -> str:
    """The commands for a plan, as a user would run them."""
    if plan.nodes == 1:
        return f"# one machine, {plan.gpus} GPU(s): Inspect starts vLLM itself\n" + shlex.join(
            inspect_vllm_command(plan, task_args)
        )
    head, worker, serve = ray_commands(plan)
    return "\n".join(
        [
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
