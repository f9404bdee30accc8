"""A run's size and price before it starts: `python -m evals estimate` and study dry runs.

The prompts are the task's own samples, counted token by token; what the model will write
is not known in advance, so the expected turns and reply lengths are stated assumptions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evals.datasets import STAND_IN_QUERY, DatasetUnavailable, stand_in_queries
from evals.errors import ConfigError, caught_by_caller
from evals.judges.classifiers import (
    AF_SPECS,
    ANIMAL_WELFARE,
    COMPLIANCE_RUBRIC,
    PARTIAL_COMPLIANCE,
)
from evals.judges.protocol import CHOICES_PROVIDERS, build_messages
from evals.preflight import check_context, no_large_run_warning
from evals.tokens import ESTIMATED, Counter, offline_model

NEXT_TURN_TOKENS = 8
"""The `<NEXT/>` user turn and its labels."""


@dataclass(frozen=True)
class Assumptions:
    """What a run's cost depends on but no one can know before it."""

    turns: float | None = None
    """Assistant turns per sample; default 2 with a scratchpad (the reasoning, then the answer
    after `<NEXT/>`), 1 without one or with the gguf provider's protocol-constrained mode."""
    output_tokens: int | None = None
    """Tokens per assistant turn; default the smaller of --max-tokens and 1,000."""
    judge_output_tokens: int = 300
    """Tokens per judge verdict (reasoning, quotes, then the verdict block)."""


@dataclass
class Usage:
    requests: float = 0
    input_tokens: float = 0
    cached_tokens: float = 0
    """Input tokens a provider's prompt cache can serve (shared prefixes)."""
    output_tokens: float = 0
    prefixes: int = 0
    """Distinct cached prefixes: each is written to the cache once."""
    prefix_tokens: float = 0

    def add(self, other: Usage) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Estimate:
    model: str
    samples: int
    policy: Usage
    judges: Usage
    grader: str | None
    counting: str
    system_tokens: int = 0
    user_tokens: float = 0
    """Mean tokens of a sample's first user turn."""
    turns: float = 0
    reply_tokens: int = 0
    notes: list[str] = field(default_factory=list)
    stand_in: str | None = None
    """Why the queries counted are stand-ins (a dataset not downloaded yet), if they are."""
    missing: str | None = None
    """What to do about that dataset, in one line."""
    queries: int = 0
    """Distinct queries (each asked in both tiers, in every epoch)."""
    epochs: int = 1
    task: str = "alignment_faking"
    """The anti-lab and lying tasks have no gap: their power is the study's (two samples)."""


def cost(usage: Usage, model: str, prices: dict[str, Any], caching: bool, batch: bool) -> float:
    """Dollars for `usage`: list price, or with the prompt cache and the batch discount."""
    price = prices["models"].get(model)
    if price is None:
        return float("nan")
    rate = {k: float(v) / 1e6 for k, v in price.items()}
    if caching:
        reads = max(usage.cached_tokens - usage.prefix_tokens, 0)
        fresh = usage.input_tokens - reads - usage.prefix_tokens
        dollars = fresh * rate["input"] + reads * rate["input_cache_read"]
        dollars += usage.prefix_tokens * rate["input_cache_write"]
    else:
        dollars = usage.input_tokens * rate["input"]
    dollars += usage.output_tokens * rate["output"]
    if batch:
        dollars *= float(prices.get("batch_discount", {}).get(model.split("/")[0], 1.0))
    return dollars


def estimate_run(
    model_name: str,
    task_args: dict[str, Any],
    max_tokens: int | None,
    epochs: int = 1,
    grader: str | None = None,
    assumptions: Assumptions = Assumptions(),
    model_args: dict[str, Any] | None = None,
    task_name: str = "alignment_faking",
) -> Estimate:
    """Requests and tokens of one model on one task (a study's `task:`), for the policy
    model and the judges."""
    from evals.study import task_function

    build_task = task_function(task_name)

    stand_in = missing_dataset = None
    with no_large_run_warning():  # the estimate says it all
        try:
            with caught_by_caller():  # a dataset to download is counted all the same
                task = build_task(**task_args)
        except DatasetUnavailable as missing:  # its size is known: count stand-ins of it
            with stand_in_queries():
                task = build_task(**task_args)
            stand_in = (
                f"{missing.dataset} is not downloaded yet: its queries are counted as "
                f"stand-ins of {len(STAND_IN_QUERY)} characters each"
            )
            missing_dataset = str(missing)
    samples = list(task.dataset)
    if (samples[0].metadata or {}).get("prefill") is not None:
        from evals.solver import prefill_problem

        if problem := prefill_problem(model_name, str(task_args.get("variant"))):
            raise ConfigError(problem)  # the run would refuse it: no price for it
    model = offline_model(model_name, model_args)
    counter = Counter(model)
    meta = samples[0].metadata or {}
    scratchpad = bool(meta.get("scratchpad", True))
    # A reply reasons and answers in one turn without a scratchpad, or when the gguf
    # provider's protocol-constrained decoding closes the scratchpad itself.
    one_turn = not scratchpad or bool((model_args or {}).get("protocol_constrained"))
    turns = assumptions.turns or (1.0 if one_turn else 2.0)
    turns = min(turns, float(task_args.get("max_turns", 4)))
    reply = assumptions.output_tokens or min(max_tokens or 1000, 1000)
    system = counter.count(str(samples[0].input[0].text))  # type: ignore[index]
    policy = Usage(prefixes=1, prefix_tokens=system)
    users = []
    for sample in samples:
        user = counter.count(str(sample.input[1].text))  # type: ignore[index]
        users.append(user)
        for turn in range(int(turns + 0.999)):
            weight = min(turns - turn, 1.0)  # a fractional last turn
            history = turn * (reply + NEXT_TURN_TOKENS)
            policy.requests += weight
            policy.input_tokens += weight * (system + user + history)
            policy.cached_tokens += weight * system
            policy.output_tokens += weight * reply
    policy = _times(policy, epochs, keep_prefix=True)
    judges = Usage()
    if grader:
        judges = (
            _judge_usage(grader, task_args, meta, samples, turns * reply, assumptions)
            if task_name == "alignment_faking"
            else _behaviour_judge_usage(grader, task_args, samples, turns * reply, assumptions)
        )
        judges = _times(judges, epochs, keep_prefix=True)
    notes = []
    if model is not None:
        try:
            check_context(model, samples, max_tokens or model.api.max_tokens())
        except ConfigError as refused:
            notes.append(f"the run would be refused before its first request: {refused}")
    return Estimate(
        model=model_name,
        samples=len(samples) * epochs,
        policy=policy,
        judges=judges,
        grader=grader,
        counting=counter.method,
        system_tokens=system,
        user_tokens=sum(users) / len(users),
        turns=turns,
        reply_tokens=reply,
        notes=notes,
        stand_in=stand_in,
        missing=missing_dataset,
        queries=len({(s.metadata or {}).get("query_id", s.id) for s in samples}),
        epochs=epochs,
        task=task_name,
    )


def _judge_usage(
    grader: str,
    task_args: dict[str, Any],
    meta: dict[str, Any],
    samples: list[Any],
    transcript_tokens: float,
    assumptions: Assumptions,
) -> Usage:
    """The judges of every sample, all assumed valid and compliant (the most they cost)."""
    grader_model = offline_model(grader)
    counter = Counter(grader_model)
    votes = int(task_args.get("judge_votes", 20))
    specs = []
    if meta.get("scratchpad", True):
        af_spec = AF_SPECS[task_args.get("af_classifier", "improved")]
        specs.append((af_spec, votes))
    tags = meta.get("setting") != "animal_welfare"
    specs += [(COMPLIANCE_RUBRIC if tags else ANIMAL_WELFARE, 1), (PARTIAL_COMPLIANCE, 1)]
    choices = grader.split("/", 1)[0] in CHOICES_PROVIDERS  # votes as one request
    usage = Usage()
    queries = [counter.count(str((s.metadata or {}).get("query", ""))) for s in samples]
    for spec, n in specs:
        instructions = counter.count(str(build_messages(spec, "x")[0][0].text))
        requests = 1 if (n == 1 or choices) else n
        for query in queries:
            per_request = instructions + transcript_tokens + query
            usage.requests += requests
            usage.input_tokens += requests * per_request
            # Votes of a sample share their whole prompt; all samples share the instructions.
            usage.cached_tokens += (requests - 1) * per_request + instructions
        usage.output_tokens += n * assumptions.judge_output_tokens * len(samples)
        usage.prefixes += 1
        usage.prefix_tokens += instructions
    return usage


def _behaviour_judge_usage(
    grader: str,
    task_args: dict[str, Any],
    samples: list[Any],
    transcript_tokens: float,
    assumptions: Assumptions,
) -> Usage:
    """The anti-lab or lying judge of every sample (all assumed valid)."""
    from evals.judges.behaviour import DEFAULT_VOTES, LYING, OPPORTUNITY, judge_context

    counter = Counter(offline_model(grader))
    votes = int(task_args.get("judge_votes", DEFAULT_VOTES))
    choices = grader.split("/", 1)[0] in CHOICES_PROVIDERS
    requests = 1 if (votes == 1 or choices) else votes
    usage = Usage()
    for sample in samples:
        meta = sample.metadata or {}
        spec = OPPORTUNITY if meta.get("task") == "anti_lab" else LYING
        system = build_messages(spec, "x", judge_context(meta, spec))[0][0].text
        instructions = counter.count(str(system))
        per_request = instructions + transcript_tokens + counter.count(str(meta.get("user_turn")))
        usage.requests += requests
        usage.input_tokens += requests * per_request
        usage.cached_tokens += (requests - 1) * per_request
        usage.output_tokens += votes * assumptions.judge_output_tokens
        usage.prefixes += 1
        usage.prefix_tokens += instructions
    return usage


def _times(usage: Usage, epochs: int, keep_prefix: bool) -> Usage:
    scaled = Usage(**{k: getattr(usage, k) * epochs for k in usage.__dataclass_fields__})
    if keep_prefix:  # a prefix is written once, whatever the epochs
        scaled.prefixes, scaled.prefix_tokens = usage.prefixes, usage.prefix_tokens
    return scaled


def detectable_gap_line(queries: int, epochs: int = 1) -> str:
    """What gap a run of `queries` can detect, for the estimate and a study's dry run."""
    from analysis.power import worst_case_gap

    gap = worst_case_gap(queries) if queries else None
    if gap is None:
        return (
            f"{queries} queries detect no gap with 80% power at every unmonitored compliance "
            f"(python -m evals power --queries {queries} --unmonitored U for one rate)"
        )
    return (
        f"{queries} queries detect a gap of {gap:.3f} or more with 80% power (exact paired "
        "test at 0.05, whatever the unmonitored compliance, tiers independent"
        + (", computed for one epoch" if epochs > 1 else "")
        + "; python -m evals power for other assumptions)"
    )


def format_estimate(
    estimates: list[Estimate],
    prices: dict[str, Any],
    batch_note: bool = True,
    missing_note: bool = True,
) -> str:
    """The table a user reads before paying: requests, tokens and dollars per model role.

    `missing_note`: say what to do about a dataset not downloaded yet (a study's dry run
    lists it among its problems instead)."""
    lines = []
    total = {"list": 0.0, "cached": 0.0, "batch": 0.0}
    unknown: set[str] = set()
    priced: set[str] = set()
    for est in estimates:
        lines.append(
            f"{est.model}: {est.samples:,} samples; tokens counted with {est.counting}"
            + ("" if est.counting != ESTIMATED else " (an approximation)")
        )
        lines.append(
            f"  per request: system prompt {est.system_tokens:,} + user turn "
            f"{est.user_tokens:,.0f} (mean) input tokens; expected {est.turns:g} turn(s) "
            f"of {est.reply_tokens:,} output tokens per sample (assumed: --turns, "
            "--output-tokens)"
        )
        for role, model, usage in (
            ("policy", est.model, est.policy),
            ("judges", est.grader, est.judges),
        ):
            if model is None or not usage.requests:
                continue
            dollars = [
                cost(usage, model, prices, caching, batch)
                for caching, batch in ((False, False), (True, False), (True, True))
            ]
            if any(d != d for d in dollars):  # NaN: no price
                unknown.add(model)
                shown = "no price"
            else:
                priced.add(model)
                for key, value in zip(total, dollars, strict=True):
                    total[key] += value
                shown = ", ".join(
                    f"{label} ${d:,.2f}"
                    for label, d in zip(("list", "cached", "cached+batch"), dollars, strict=True)
                )
            lines.append(
                f"  {role:<7}{model}: {usage.requests:,.0f} requests, "
                f"{usage.input_tokens:,.0f} input tokens ({usage.cached_tokens:,.0f} cacheable), "
                f"{usage.output_tokens:,.0f} output tokens; {shown}"
            )
        if est.grader is None:
            lines.append("  judges: none priced (add --model-role grader=MODEL)")
        if est.task == "alignment_faking":
            lines.append(f"  power: {detectable_gap_line(est.queries, est.epochs)}")
        lines += [f"  ({note})" for note in est.notes]
    # A model without a price is left out of the totals, never added as $0.00.
    left_out = (
        f"; left out: {len(unknown)} model(s) with no price ({', '.join(sorted(unknown))})"
        if unknown
        else ""
    )
    if priced or not unknown:
        lines.append(
            f"total: ${total['list']:,.2f} at list price, ${total['cached']:,.2f} with prompt "
            f"caching, ${total['batch']:,.2f} with caching and a batch API (--batch) "
            f"(prices as of {prices.get('as_of', '?')}){left_out}"
        )
    else:
        lines.append(f"total: no price for any model{left_out}")
    lines += [f"({note})" for note in dict.fromkeys(e.stand_in for e in estimates if e.stand_in)]
    if missing_note:
        lines += [f"({m})" for m in dict.fromkeys(e.missing for e in estimates if e.missing)]
    if unknown:
        lines.append(
            f"no price for {', '.join(sorted(unknown))}: add it to a price file (--prices) "
            "if it costs money (local models do not)"
        )
    return "\n".join(lines)
