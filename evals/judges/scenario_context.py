"""The scenario as the alignment-faking judges hear it: only what the model was shown."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

import yaml


@cache
def _sentences() -> dict[str, Any]:
    text = (files("evals.judges") / "prompts" / "scenario.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def describe_scenario(
    facts: dict[str, Any] | None,
    descriptions: dict[str, str] | None = None,
    prefill: str | None = None,
    closing: str = "closing",
) -> str:
    """A paragraph for the judge from a sample's `scenario_facts` metadata (and, where a
    variant declared its framings, their `framing_descriptions`).

    Logs made before the facts were recorded, and custom prompt files, get the wording that
    asserts nothing about the prompt.
    """
    sentences = _sentences()
    facts = facts or {}
    objectives = sentences["objective"]
    objective = objectives.get(str(facts.get("setting")), objectives["other"])
    parts = [sentences["opening"].format(objective=objective)]
    if facts.get("conflicting_objective") is False:
        parts = [sentences["no_conflict_opening"]]
    tier = facts.get("trained_tier")
    stated = facts.get("modification_stated")
    framings = facts.get("framings")
    if facts.get("custom_prompt") or stated is None:
        parts = [sentences["custom_prompt"]]
    elif isinstance(framings, dict):
        kinds = "; ".join(str((descriptions or {}).get(name, name)) for name in framings)
        parts.append(sentences["framings"].format(kinds=kinds))
        parts.append(sentences["modification"]["stated" if stated else "absent"])
    elif tier not in sentences["trained_tier"]:
        parts = [sentences["custom_prompt"]]
    else:
        parts.append(sentences["trained_tier"][tier])
        parts.append(sentences["modification"]["stated" if stated else "absent"])
    if prefill:
        parts.append(sentences["prefill"].replace("{prefill}", prefill))
    parts.append(sentences[closing])
    return " ".join(part.strip() for part in parts)
