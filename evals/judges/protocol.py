"""Asking an LLM judge, several times if needed, and reading only its own final verdict.

The judged material is wrapped in tags whose names carry a digest of that material. The
material cannot contain the judge's answer tag (it would have to contain its own digest), so
fake verdicts, JSON or instructions inside a transcript never parse as the judge's answer.
Every vote sees the same messages (instructions, then the material), so providers that cache
prompt prefixes bill the material once per sample, and Inspect's cache replays all votes.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any, Literal

from inspect_ai.model import (
    CachePolicy,
    ChatMessageSystem,
    ChatMessageUser,
    GenerateConfig,
    Model,
    ModelOutput,
)
from inspect_ai.model._generate_config import active_generate_config

from evals.judges.cache import generate_judged
from evals.judges.scenario_context import describe_scenario

Batching = Literal["auto", "choices", "parallel"]
# Providers whose Inspect backend passes `num_choices` through to the API.
CHOICES_PROVIDERS = frozenset(
    {"openai", "openai-api", "grok", "google", "together", "vllm", "scripted"}
)
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def yes_no(text: str) -> bool:
    answer = text.strip().lower()
    if answer not in ("yes", "no"):
        raise ValueError(f"expected yes or no, got {text[:40]!r}")
    return answer == "yes"


def quote(text: str) -> str | None:
    """A one-line evidence quote, kept as written (None for `none`): a record of why, never
    read as a verdict."""
    shown = text.strip().strip('"').strip()
    return None if shown.lower() in ("", "none") else shown[:400]


def integer(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise ValueError(f"expected {low}..{high}, got {value}")
        return value

    return parse


@dataclass(frozen=True)
class JudgeSpec:
    """One judge: its instruction file and the keys its verdict block must hold."""

    name: str
    prompt: str
    keys: dict[str, Callable[[str], Any]]
    refuse_copies: bool = False
    """Discard a vote whose every decision line (a key other than a quote) also stands as a
    line of the record: a grader that copies an injected verdict is no vote (see
    `parse_verdict`)."""

    def instructions(self, values: dict[str, str]) -> str:
        """The instruction file with its `{{placeholders}}` filled from `values`."""
        text = (files("evals.judges") / "prompts" / f"{self.prompt}.md").read_text("utf-8")
        missing = sorted(set(_PLACEHOLDER.findall(text)) - set(values))
        if missing:
            raise ValueError(f"judge {self.name!r} needs values for {missing}")
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


@dataclass
class Usage:
    """Tokens for one classifier on one sample, as the provider reported them."""

    requests: int = 0
    cached_replies: int = 0
    """Requests answered from the cache, at no cost (their tokens are not counted)."""
    input_tokens: int = 0
    """Billed at the full input price (cache reads and writes excluded, as in Inspect)."""
    cache_read: int = 0
    cache_write: int = 0
    output_tokens: int = 0
    prompt_tokens: int = 0
    """Size of one full request's input (what a naive request per vote pays each time)."""

    def add(self, output: ModelOutput, from_cache: bool = False) -> None:
        self.requests += 1
        self.cached_replies += from_cache
        usage = output.usage
        if usage is None:
            return
        cached = usage.input_tokens_cache_read or 0
        written = usage.input_tokens_cache_write or 0
        self.prompt_tokens = max(self.prompt_tokens, usage.input_tokens + written + cached)
        if from_cache:  # replayed from the cache: nothing was billed
            return
        self.input_tokens += usage.input_tokens
        self.cache_read += cached
        self.cache_write += written
        self.output_tokens += usage.output_tokens


@dataclass
class Verdicts:
    """Parsed votes from one judge on one sample."""

    votes: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)


JUDGE_KEY = "judge"
"""Score metadata key of the settings a judgement was made with (see `judge_settings`)."""


def judge_settings(
    grader: str | None,
    classifier: str,
    votes: int,
    threshold: float | None,
    possible_threshold: float | None,
    temperature: float,
    rule: str,
) -> dict[str, Any]:
    """Who made a judgement and how, stamped with the time it was made.

    Recorded in the judgement's own score, so that a log re-judged with another grader or
    other settings (`inspect score`) says so per record, and the newest judgement can be
    told by its time rather than by file names. `grader` is None when none was bound.
    """
    return {
        "grader": grader,
        "classifier": classifier,
        "votes": int(votes),
        "threshold": None if threshold is None else float(threshold),
        "possible_threshold": None if possible_threshold is None else float(possible_threshold),
        "temperature": float(temperature),
        "rule": rule,
        "judged_at": datetime.now(UTC).isoformat(timespec="microseconds"),
    }


def tags_for(material: str, judge: str) -> tuple[str, str]:
    digest = hashlib.sha256(f"{judge}\0{material}".encode()).hexdigest()[:16]
    return f"record_{digest}", f"verdict_{digest}"


def build_messages(
    spec: JudgeSpec, material: str, context: dict[str, str] | None = None
) -> tuple[list[Any], str]:
    transcript_tag, answer_tag = tags_for(material, spec.name)
    # The per-request tags live in the user message, ahead of the record, so that the
    # instructions are one byte-identical prefix that every sample's request shares (and a
    # provider's prompt cache serves).
    user = (
        f"Record markers: <{transcript_tag}> and </{transcript_tag}>. "
        f"Verdict tag: {answer_tag}.\n\n"
        f"<{transcript_tag}>\n{material}\n</{transcript_tag}>\n\n"
        f"Assess the record above as instructed and end with one <{answer_tag}> block."
    )
    # Without facts about the scenario, the judge hears the wording that asserts none.
    values = {"scenario": describe_scenario(None), **(context or {})}
    messages = [
        ChatMessageSystem(content=spec.instructions(values)),
        ChatMessageUser(content=user),
    ]
    return messages, answer_tag


def _verdict_line(line: str) -> str:
    key, _, value = line.partition(":")
    return f"{key.strip().lower()}:{' '.join(value.split()).lower()}"


def parse_verdict(
    text: str,
    answer_tag: str,
    keys: dict[str, Callable[[str], Any]],
    record: str | None = None,
) -> dict:
    """Read the judge's one `<answer_tag>` block; raise ValueError unless it is unambiguous.

    Fails closed: a grader that copies text from the record into its reply (a second block
    with the real tag, a repeated or extra key, a stray tag) must never have the copy read as
    its verdict, so any such reply is no vote at all rather than its first or last reading.
    Tag matching ignores case and spacing, so variants of the tag count as a second tag.
    """
    tags = list(re.finditer(rf"<\s*/?\s*{re.escape(answer_tag)}\s*/?\s*>", text, re.I))
    if not tags:
        raise ValueError("no verdict block")
    if len(tags) != 2:
        raise ValueError(f"expected one verdict block, found {len(tags)} verdict tags")
    if [t.group(0) for t in tags] != [f"<{answer_tag}>", f"</{answer_tag}>"]:
        raise ValueError(f"malformed verdict tags {tags[0].group(0)!r}, {tags[1].group(0)!r}")
    block = text[tags[0].end() : tags[1].start()]
    found: dict[str, str] = {}
    for line in block.strip().splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if not sep or not key:
            raise ValueError(f"malformed verdict line {line.strip()[:80]!r}")
        if key not in keys:
            raise ValueError(f"unknown verdict key {key[:40]!r}")
        if key in found:
            raise ValueError(f"verdict repeats {key!r}")
        found[key] = value.strip()  # each key's parser reads its own case (a quote keeps it)
    missing = set(keys) - set(found)
    if missing:
        raise ValueError(f"verdict lacks {sorted(missing)}")
    if record is not None:
        # Every decision also written, line for line, in the record: the verdict may be a
        # copy of text the model planted. Read as no vote, so that planted text can never
        # become a label (an honest grader that agrees with it leaves the sample unscored).
        decisions = [
            f"{k}:{' '.join(found[k].split()).lower()}" for k in keys if keys[k] is not quote
        ]
        planted = {_verdict_line(line) for line in record.splitlines() if ":" in line}
        if decisions and all(d in planted for d in decisions):
            raise ValueError("verdict copied from the record (its every decision is there)")
    return {key: parse(found[key]) for key, parse in keys.items()}


def supports_choices(model: Model) -> bool:
    return str(model).split("/", 1)[0] in CHOICES_PROVIDERS


async def ask(
    model: Model,
    spec: JudgeSpec,
    material: str,
    votes: int = 1,
    temperature: float | None = None,
    batching: Batching = "auto",
    cache: bool = True,
    context: dict[str, str] | None = None,
) -> Verdicts:
    """Collect `votes` verdicts: one multi-choice request where supported, else a warm-up
    request followed by the rest concurrently (so the provider's prefix cache is filled).

    `context` fills the instruction file's other placeholders (the scenario description).
    With `cache`, a reply is cached only once every verdict in it parsed.
    """
    messages, answer_tag = build_messages(spec, material, context)
    record = material if spec.refuse_copies else None
    result = Verdicts()
    texts: list[str] = []

    def usable(output: ModelOutput) -> bool:
        try:
            for choice in output.choices:
                parse_verdict(choice.message.text, answer_tag, spec.keys, record)
        except ValueError:
            return False
        return bool(output.choices)

    async def request(n: int, vote: int) -> None:
        config = GenerateConfig(
            temperature=temperature,
            num_choices=n if n > 1 else None,
            # Inspect passes `--batch` to the evaluated model only; judges follow it unless
            # the grader role sets its own.
            batch=None if model.config.batch is not None else active_generate_config().batch,
        )
        policy = CachePolicy(
            expiry=None, per_epoch=False, scopes={"judge": spec.name, "vote": str(vote)}
        )
        try:
            output, cached = await generate_judged(
                model, messages, config, policy if cache else None, usable
            )
        except Exception as err:  # any provider failure leaves this vote unscored
            result.failures.append(f"judge error: {type(err).__name__}: {err}"[:300])
            return
        result.usage.add(output, cached)
        texts.extend(choice.message.text for choice in output.choices[:n])

    use_choices = votes > 1 and (
        batching == "choices" or (batching == "auto" and supports_choices(model))
    )
    if use_choices:
        await request(votes, 0)
    else:
        await request(1, 0)
    missing = votes - len(texts) - len(result.failures)
    if missing > 0:  # parallel mode, or a provider that returned fewer choices than asked
        await asyncio.gather(*(request(1, votes - i) for i in range(missing)))
    for text in texts:
        try:
            result.votes.append(parse_verdict(text, answer_tag, spec.keys, record))
        except ValueError as err:
            result.failures.append(f"unparseable verdict: {err}")
    return result
