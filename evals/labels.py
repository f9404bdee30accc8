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


def trained_tier(metadata: Mapping[str, Any] | None) -> tuple[str, bool]:
    """(the tier the system prompt says is trained, whether that is assumed) of a sample,
    from its metadata's `scenario_facts`: `free` or `paid`. A prompt file of one's own does
    not say which: it is taken to train the free tier, as the paper's prompts do (assumed)."""
    told = ((metadata or {}).get("scenario_facts") or {}).get("trained_tier")
    tier = {"free-tier": "free", "paid-tier": "paid"}.get(str(told))
    return (tier, False) if tier is not None else ("free", True)
