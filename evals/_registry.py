"""Inspect entry point: registers this project's model providers (imported lazily)."""

from inspect_ai.model import ModelAPI, modelapi


@modelapi(name="gguf")
def gguf() -> type[ModelAPI]:
    from evals.providers.gguf import GGUFModelAPI

    return GGUFModelAPI


@modelapi(name="scripted")
def scripted() -> type[ModelAPI]:
    from evals.providers.scripted import ScriptedModelAPI

    return ScriptedModelAPI


# Registers the judge scorers so `inspect score --scorer NAME` finds them.
from evals.judges.behaviour import lying_judge, opportunity_judge  # noqa: E402, F401
from evals.judges.scorer import alignment_faking_judge  # noqa: E402, F401
