"""Token counts and context windows of the models a run will call, known before any request.

Counts come from the model's own tokenizer where one is at hand offline: the `gguf`
provider's, Hugging Face's, or a self-hosted OpenAI-compatible server's `/tokenize` (vLLM and
SGLang have one).
Elsewhere they are estimated from the text's length and labelled as estimates.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import httpx
from inspect_ai.model import Model, get_model, get_model_info

CHARS_PER_TOKEN = 4.0
ESTIMATED = "estimate: 4 characters a token"
SERVER_PROVIDERS = ("openai-api", "vllm", "sglang")


@dataclass
class Counter:
    """Counts tokens of text for one model, saying how exact the count is. Without a model
    (one that can't be made here) every count is an estimate."""

    model: Model | None
    method: str = ESTIMATED

    def __post_init__(self) -> None:
        self._exact = _exact_counter(self.model) if self.model is not None else None
        if self._exact is not None:
            self.method = self._exact[0]

    def count(self, text: str) -> int:
        if self._exact is not None:
            try:
                return self._exact[1](text)
            except (httpx.HTTPError, ValueError, KeyError):
                self._exact, self.method = None, ESTIMATED  # the server stopped answering
        return math.ceil(len(text) / CHARS_PER_TOKEN)

    @property
    def exact(self) -> bool:
        return self.method != ESTIMATED


def context_window(model: Model) -> tuple[int | None, str]:
    """The model's context window in tokens, and where that number comes from."""
    api: Any = model.api
    window = getattr(api, "context_window", None)
    if callable(window):
        return int(window()), "the gguf provider's n_ctx"
    if isinstance(api_args := getattr(model, "model_args", None), dict) and api_args.get(
        "max_model_len"
    ):
        return int(api_args["max_model_len"]), "-M max_model_len"
    hf_config = getattr(getattr(api, "model", None), "config", None)
    if isinstance(getattr(hf_config, "max_position_embeddings", None), int):
        return int(hf_config.max_position_embeddings), "the model's max_position_embeddings"
    served = _served_context(model)
    if served is not None:
        return served, "the server's /v1/models"
    info = get_model_info(str(model))
    if info is not None and info.context_length:
        return int(info.context_length), "Inspect's model catalogue"
    return None, "unknown"


def _server_base_url(model: Model) -> str | None:
    """The base URL of a self-hosted OpenAI-compatible server (vLLM, SGLang, or any other
    behind `openai-api/NAME`), whose `/v1/models` and `/tokenize` are asked; None for a
    provider's own API, which is never probed."""
    if str(model).split("/", 1)[0] not in SERVER_PROVIDERS:
        return None
    api: Any = model.api
    # Inspect's vllm provider connects to VLLM_BASE_URL (or -M base_url) at its first request.
    base_url = (
        getattr(api, "base_url", None)
        or getattr(api, "_init_base_url", None)
        or (os.environ.get("VLLM_BASE_URL") if str(model).startswith("vllm/") else None)
    )
    return str(base_url).rstrip("/") if base_url else None


def _headers(model: Model) -> dict[str, str]:
    key = getattr(model.api, "api_key", None)
    return {"Authorization": f"Bearer {key}"} if key else {}


def _served_context(model: Model) -> int | None:
    """`max_model_len` (vLLM) or `context_length` from a server's model list."""
    base_url = _server_base_url(model)
    if base_url is None:
        return None
    try:
        reply = httpx.get(f"{base_url}/models", headers=_headers(model), timeout=5)
        reply.raise_for_status()
        entries = reply.json().get("data", [])
    except (httpx.HTTPError, ValueError):
        return None
    name = str(model.name)
    for entry in entries:
        if entry.get("id") in (name, name.rsplit("/", 1)[-1]) or len(entries) == 1:
            value = entry.get("max_model_len") or entry.get("context_length")
            if value:
                return int(value)
    return None


def _exact_counter(model: Model) -> tuple[str, Any] | None:
    api: Any = model.api
    count = getattr(api, "count_text_tokens_now", None)
    if callable(count):
        return "the model's own tokenizer (llama.cpp)", count
    tokenizer = getattr(api, "tokenizer", None)  # Inspect's hf provider
    if callable(getattr(tokenizer, "encode", None)):
        return "the model's own tokenizer (Hugging Face)", lambda text: len(
            tokenizer.encode(text, add_special_tokens=False)
        )
    base_url = _server_base_url(model)
    if base_url is None:
        return None
    root = base_url.removesuffix("/v1")

    def tokenize(text: str) -> int:
        reply = httpx.post(
            f"{root}/tokenize",
            json={"model": model.name, "prompt": text, "add_special_tokens": False},
            headers=_headers(model),
            timeout=30,
        )
        reply.raise_for_status()
        body = reply.json()
        return int(body["count"]) if "count" in body else len(body["tokens"])

    try:
        tokenize("probe")
    except (httpx.HTTPError, ValueError, KeyError):
        return None
    return "the server's /tokenize", tokenize


OFFLINE_PROVIDERS = ("gguf/", "openai-api/", "vllm/", "sglang/", "scripted/")
"""Providers whose models cost nothing to make before a run: no paid call, no GPU memory (an
`hf/` model would load its weights; the task checks it once Inspect has loaded it)."""


def offline_model(name: str, model_args: dict[str, Any] | None = None) -> Model | None:
    """The model, if it can be made here without a paid call; else None (counts are then
    estimated and the context window is Inspect's catalogue's)."""
    if not name.startswith(OFFLINE_PROVIDERS):
        return None
    try:
        return get_model(name, **(model_args or {}))
    except Exception:  # a missing key, server or optional package: fall back to estimates
        return None
