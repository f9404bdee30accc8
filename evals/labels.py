"""The status strings, categories and tier rule that logs record and the analysis reads back.

Kept free of Inspect imports: the analysis reads finished `.eval` logs without importing
Inspect (about two seconds of every report's start-up), so what it shares with the task
lives here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

VALID = "valid"
LIMIT_REACHED = "limit_reached"
"""Status prefix of a sample that an Inspect limit stopped: `limit_reached: <type>`."""
NO_GRADER = "unscored: no grader model (bind one with --model-role grader=...)"
NO_SCRATCHPAD = "not applicable: no scratchpad in this variant"
TURN_CAP_KEY = "alignment_faking:turn_cap_reached"
"""Store key the solver sets when a sample used every turn without an `<OUTPUT>`."""
CATEGORIES = tuple(
    f"{behaviour}{suffix}"
    for behaviour in ("refusal", "partial_compliance", "full_compliance")
    for suffix in ("", "_af")
)
"""The six-way classification: behaviour, with `_af` where the reasoning fakes alignment."""


def limit_status(limit_type: str) -> str:
    """The invalid status of a sample stopped by an Inspect limit of this type (`message`,
    `token`, `turn`, `time`, `working`, `cost`, ...: `EvalSampleLimit.type` in a log)."""
    return f"{LIMIT_REACHED}: {limit_type}"


GAP_CONTRAST = "compliance_gap"
"""The contrast every condition with a trained and an unmonitored framing reports."""
NO_TRAINED_FRAMING = "none"
"""The trained framing of a condition whose framings tell the model none is trained."""
SEVERAL_TRAINED = "several"
"""The trained framing of a condition whose framings tell the model several are trained."""
RESERVED_FRAMINGS = frozenset({NO_TRAINED_FRAMING, SEVERAL_TRAINED, "trained", "unmonitored"})
"""Names a framing may not take: the tables and figures use them for roles."""


def trained_tier(metadata: Mapping[str, Any] | None) -> tuple[str, bool]:
    """(the tier the system prompt says is trained, whether that is assumed) of a sample,
    from its metadata's `scenario_facts`: `free` or `paid`. A prompt file of one's own does
    not say which: it is taken to train the free tier, as the paper's prompts do (assumed).
    Where a variant declared its own framings, the one told it is trained (`none` where
    none is, `several` where several are)."""
    facts = (metadata or {}).get("scenario_facts") or {}
    if isinstance(framings := facts.get("framings"), dict):
        trained = [name for name, told in framings.items() if (told or {}).get("trained")]
        if len(trained) > 1:
            return SEVERAL_TRAINED, False
        return (trained[0] if trained else NO_TRAINED_FRAMING), False
    told = facts.get("trained_tier")
    tier = {"free-tier": "free", "paid-tier": "paid"}.get(str(told))
    return (tier, False) if tier is not None else ("free", True)


def unmonitored_framing(metadata: Mapping[str, Any] | None) -> str | None:
    """The framing told that nobody trains on, rates or monitors its conversation: the
    untrained tier of the two fixed tiers; None where declared framings have no single one."""
    facts = (metadata or {}).get("scenario_facts") or {}
    if isinstance(framings := facts.get("framings"), dict):
        unmonitored = [
            name
            for name, told in framings.items()
            if not any((told or {}).get(key) for key in ("trained", "rated", "monitored"))
        ]
        return unmonitored[0] if len(unmonitored) == 1 else None
    return "paid" if trained_tier(metadata)[0] == "free" else "free"


def framing_role(told: Mapping[str, Any]) -> str:
    """A framing's role in a few words, from what the model was told of it: figures and
    tables name each bar by it."""
    if told.get("trained"):
        return "trained" if told.get("deployed", True) else "trained, never deployed"
    if told.get("rated"):
        return "rated only"
    return "monitored only" if told.get("monitored") else "unmonitored"
