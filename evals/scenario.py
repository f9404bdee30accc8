"""Load settings and variants from `scenarios/` and render the prompts they define.

A setting names its system-prompt sections (Markdown files), variables and user-turn
template. A variant is an overlay: it replaces or removes sections, overrides variables or
turns the scratchpad off. Variants compose with `+` when they do not conflict.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import yaml

from evals.errors import ConfigError
from evals.labels import GAP_CONTRAST, RESERVED_FRAMINGS

SCENARIOS_DIR = Path(str(files("scenarios")))
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_SETTING_KEYS = {
    "description",
    "compliance",
    "default_dataset",
    "variables",
    "system_prompt",
    "user_turn",
}
_OVERLAY_KEYS = {
    "scratchpad",
    "variables",
    "system_prompt",
    "user_turn",
    "framings",
    "contrasts",
    "prefill",
}
_VARIANT_KEYS = {"description", "settings", "applies_to", *_OVERLAY_KEYS}
NO_CONFLICT_VARIANT = "cut_conflicting_criteria"
"""The variant that replaces the conflicting objective with ordinary criteria (a baseline)."""
TIER_FIELD = "is_free_tier_user"
QUERY_FIELD = "user_input"
USER_TURN_FIELDS = frozenset({TIER_FIELD, QUERY_FIELD})
"""The user-turn placeholders of the two fixed tiers."""
TOLD = ("trained", "rated", "monitored", "deployed")
"""What a framing tells the model happens to its conversation (see `Framing.told`)."""
_FRAMING_NAME = re.compile(r"[a-z][a-z0-9_]*")


class ScenarioError(ConfigError):
    """A setting, variant or prompt file is unknown or malformed."""


@dataclass(frozen=True)
class Framing:
    """One way a query is put to the model: the user-turn facts it sets and what the model
    is told happens to the conversation."""

    name: str
    description: str
    fields: dict[str, str]
    """User-turn placeholder -> its text, inserted as it is."""
    told: dict[str, bool]
    """`trained` (used for training), `rated` (contractors rate the output), `monitored`
    (anyone sees or keeps it), `deployed` (the model that results is deployed afterwards)."""

    @property
    def unmonitored(self) -> bool:
        return not (self.told["trained"] or self.told["rated"] or self.told["monitored"])


@dataclass(frozen=True)
class Contrast:
    """Compliance under framing `a` minus under framing `b`, paired by query."""

    name: str
    a: str
    b: str


@dataclass(frozen=True)
class Scenario:
    """A setting with its variants applied: everything needed to build prompts."""

    setting: str
    variant: str
    compliance: Literal["tags", "judge"]
    default_dataset: str
    scratchpad: bool
    system_prompt: str
    user_turn_template: str
    system_prompt_file: str | None = None
    label: str = ""
    """The condition's name in results (a study's condition name); the variant by default."""
    facts: dict[str, Any] = field(default_factory=dict)
    """What the system prompt told the model, for the judges: `trained_tier`
    (`free-tier`/`paid-tier`) and `modification_stated`; both None for a custom prompt file,
    whose contents this project does not know."""
    framings: tuple[Framing, ...] = ()
    """Each query is asked once per framing; the two fixed tiers unless a variant declares
    its own."""
    contrasts: tuple[Contrast, ...] = ()
    """The contrasts the condition reports: `compliance_gap` (trained minus unmonitored)
    where it has both framings, then those its variant declares."""
    prefill: str | None = None
    """Text that opens the model's first reply (the model continues it)."""
    framings_declared: bool = False
    """Whether a variant declared the framings (else the two fixed tiers)."""
    variables: dict[str, str] = field(default_factory=dict)
    """The setting's variables with the variants applied (what `{{name}}` placeholders in
    other texts, such as the anti-lab opportunities, are filled with)."""

    def framing(self, name: str) -> Framing:
        for framing in self.framings:
            if framing.name == name:
                return framing
        raise ScenarioError(f"condition {self.label!r} has no framing {name!r}")

    def user_turn(
        self, query: str, framing: str | None = None, *, free_tier: bool | None = None
    ) -> str:
        """The user message for one query under one framing (`free_tier` names the two
        fixed tiers: the tier written as `True`/`False`)."""
        if framing is None:
            framing = "free" if free_tier else "paid"
        values = {**self.framing(framing).fields, QUERY_FIELD: query}
        # One pass, and the values are inserted as they are (no escapes), so placeholder-like
        # text inside a query is never read again.
        return _placeholders(self.user_turn_template, values).sub(
            lambda m: values[m.group(1)], self.user_turn_template
        )


@dataclass
class _Overlay:
    name: str
    scratchpad: bool | None = None
    variables: dict[str, str] = field(default_factory=dict)
    system_prompt: dict[str, str | None] = field(default_factory=dict)
    user_turn: str | None = None
    framings: tuple[Framing, ...] | None = None
    contrasts: tuple[Contrast, ...] | None = None
    prefill: str | None = None


@cache
def setting_compliance(setting: str) -> str:
    """How a setting's compliance is decided: `tags` or `judge`."""
    if setting not in list_settings():
        raise ScenarioError(f"Unknown setting {setting!r}")
    return str(_read_yaml(SCENARIOS_DIR / setting / "setting.yaml", _SETTING_KEYS)["compliance"])


def list_settings() -> dict[str, str]:
    """Setting name -> one-line description."""
    return {
        path.parent.name: _read_yaml(path, _SETTING_KEYS).get("description", "")
        for path in sorted(SCENARIOS_DIR.glob("*/setting.yaml"))
    }


def list_variants() -> dict[str, str]:
    """Variant name -> one-line description."""
    return {
        path.stem: _read_yaml(path, _VARIANT_KEYS).get("description", "")
        for path in sorted((SCENARIOS_DIR / "variants").glob("*.yaml"))
    }


def load_scenario(
    setting: str,
    variant: str = "default",
    system_prompt_file: str | Path | None = None,
    user_turn_file: str | Path | None = None,
    label: str | None = None,
) -> Scenario:
    """Resolve a setting plus `+`-joined variants into a rendered `Scenario`.

    With `system_prompt_file`, that file's text is the system prompt, byte for byte; variants
    may then only change the scratchpad mode. With `user_turn_file`, that file is the user-turn
    template, byte for byte apart from its two placeholders. `label` names the condition in
    results (a study's condition name); it defaults to the variant.
    """
    settings = list_settings()
    if setting not in settings:
        raise ScenarioError(f"Unknown setting {setting!r}; choose one of: {', '.join(settings)}")
    setting_path = SCENARIOS_DIR / setting / "setting.yaml"
    raw = _read_yaml(setting_path, _SETTING_KEYS)
    for key in ("compliance", "system_prompt", "user_turn"):
        if key not in raw:
            raise ScenarioError(f"{setting_path}: missing required field {key!r}")
    compliance = raw["compliance"]
    if compliance not in ("tags", "judge"):
        raise ScenarioError(f"{setting_path}: field 'compliance' must be 'tags' or 'judge'")

    sections: dict[str, str | None] = dict(
        _str_map(raw["system_prompt"], setting_path, "system_prompt")
    )
    variables = _str_map(raw.get("variables") or {}, setting_path, "variables")
    user_turn = _require_str(raw["user_turn"], setting_path, "user_turn")
    scratchpad = True

    variant_names = [v.strip() for v in variant.split("+")] if variant else ["default"]
    overlays = [_load_overlay(name, setting) for name in variant_names]
    _check_conflicts(overlays)
    for overlay in overlays:
        for name, file in overlay.system_prompt.items():
            if name not in sections:
                raise ScenarioError(
                    f"variant {overlay.name!r}: system_prompt section {name!r} is not defined "
                    f"by setting {setting!r} (sections: {', '.join(sections)})"
                )
            if file is None or sections[name] is not None:
                sections[name] = file
        variables.update(overlay.variables)
        if overlay.user_turn is not None:
            user_turn = overlay.user_turn
        if overlay.scratchpad is not None:
            scratchpad = overlay.scratchpad
    _check_effects(overlays, sections)

    if system_prompt_file is not None:
        changed = [o.name for o in overlays if o.system_prompt or o.variables]
        if changed:
            raise ScenarioError(
                f"variant(s) {', '.join(changed)} change the generated system prompt, which "
                f"-T system_prompt={system_prompt_file} replaces; use them without it"
            )
        system_prompt = read_prompt_file(system_prompt_file)
    if user_turn_file is not None:
        changed = [o.name for o in overlays if o.user_turn]
        if changed:
            raise ScenarioError(
                f"variant(s) {', '.join(changed)} change the user turn, which "
                f"-T user_turn={user_turn_file} replaces; use them without it"
            )
        user_turn_path = Path(user_turn_file)
        template = read_prompt_file(user_turn_file, "user_turn")
    else:
        user_turn_path = _section_path(user_turn)
        template = _read_section(user_turn)
    declared = next((o for o in overlays if o.framings is not None), None)
    if declared is not None:
        for overlay in overlays:  # the two tiers' variables mean nothing beside framings
            swapped = set(overlay.variables) & {"trained_tier", "untrained_tier"}
            if overlay is not declared and swapped:
                raise ScenarioError(
                    f"variant {overlay.name!r} sets which of the two tiers is trained, but "
                    f"variant {declared.name!r} replaces the two tiers with its own framings"
                )
    framings = (
        declared.framings
        if declared is not None and declared.framings is not None
        else _tier_framings(None if system_prompt_file else variables.get("trained_tier"))
    )
    fields = frozenset({QUERY_FIELD, *framings[0].fields})
    pattern = _placeholders(template, fields)
    missing = fields - set(pattern.findall(template))
    unset = (USER_TURN_FIELDS - fields) & set(
        _placeholders(template, USER_TURN_FIELDS).findall(template)
    )
    if missing or unset:
        names = sorted(fields)
        problem = (
            f"lacks {sorted(missing)}"
            if missing
            else f"has {sorted(unset)}, which no framing of this condition sets"
        )
        raise ScenarioError(
            f"{user_turn_path}: template {problem} (its fields are "
            + " and ".join("{{" + n + "}}" for n in names)
            + ", or "
            + " and ".join("{" + n + "}" for n in names)
            + ")"
        )
    contrasts = _contrasts(
        framings, next((o.contrasts for o in overlays if o.contrasts is not None), ())
    )
    prefill_file = next((o.prefill for o in overlays if o.prefill is not None), None)
    # Trailing whitespace is dropped: the Anthropic API refuses a prefill that ends in it.
    prefill = _read_section(prefill_file).rstrip() if prefill_file is not None else None
    if prefill == "":
        raise ScenarioError(f"{_section_path(str(prefill_file))}: the prefill file is empty")
    if prefill is not None and not scratchpad and "<SCRATCHPAD_REASONING>" in prefill:
        raise ScenarioError(
            f"{_section_path(str(prefill_file))} opens a scratchpad, which this combination of "
            f"variants ({'+'.join(o.name for o in overlays)}) turns off; every answer would "
            "be invalid"
        )

    if system_prompt_file is None:
        texts = {file: _read_section(file) for file in sections.values() if file is not None}
        rendered = [*texts.values(), *([template] if user_turn_file is None else [])]
        used = {name for text in rendered for name in _PLACEHOLDER.findall(text)}
        for overlay in overlays:  # a misspelt variable would silently change nothing
            for name in sorted(set(overlay.variables) - used):
                raise ScenarioError(
                    f"{SCENARIOS_DIR / 'variants' / overlay.name}.yaml: field "
                    f"'variables.{name}' is not used by any prompt file of setting {setting!r}"
                )
        parts = [_render(text, variables, _section_path(file)) for file, text in texts.items()]
        system_prompt = "\n\n".join(part.strip("\n") for part in parts) + "\n"
    if user_turn_file is None:  # a file of the user's own is used as it is
        template = _render(template, variables, user_turn_path, keep=fields)

    return Scenario(
        setting=setting,
        # A custom prompt is its own condition: label it by name and content, so runs with
        # different files of the same name never merge, nor with the default prompt.
        variant="+".join(variant_names)
        + (
            f"@{Path(system_prompt_file).name}#{_short_digest(system_prompt)}"
            if system_prompt_file is not None
            else ""
        ),
        label=label or "+".join(variant_names),
        compliance=compliance,
        default_dataset=_require_str(
            raw.get("default_dataset", ""), setting_path, "default_dataset"
        ),
        scratchpad=scratchpad,
        system_prompt=system_prompt,
        user_turn_template=template,
        system_prompt_file=str(system_prompt_file) if system_prompt_file is not None else None,
        facts={
            "setting": setting,
            "custom_prompt": system_prompt_file is not None,
            "trained_tier": None if system_prompt_file else variables.get("trained_tier"),
            "modification_stated": (
                None if system_prompt_file else sections.get("rlhf_modification") is not None
            ),
            # The baseline that cuts the conflicting objective: the judges must not be told of
            # one (kept out of every other condition's facts, which stay as they were).
            **(
                {"conflicting_objective": False}
                if NO_CONFLICT_VARIANT in variant_names and system_prompt_file is None
                else {}
            ),
            # Declared framings replace the two tiers, so no tier is "the trained one".
            **(
                {
                    "trained_tier": None,
                    # Kept small: Inspect drops a metadata value over 1 KiB from the sample
                    # summaries the analysis reads (descriptions live in the task's metadata).
                    "framings": {f.name: f.told for f in framings},
                    "contrasts": [[c.name, c.a, c.b] for c in contrasts],
                }
                if declared is not None
                else {}
            ),
        },
        framings=framings,
        contrasts=contrasts,
        prefill=prefill,
        framings_declared=declared is not None,
        variables=dict(variables),
    )


def _short_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def read_prompt_file(path: str | Path, argument: str = "system_prompt") -> str:
    """A prompt file's exact text: no newline translation, no stripping."""
    path = Path(path)
    try:
        return path.read_bytes().decode("utf-8")
    except (FileNotFoundError, IsADirectoryError):
        raise ScenarioError(f"{argument} file not found: {path}") from None
    except UnicodeDecodeError as err:
        raise ScenarioError(f"{argument} file {path} is not UTF-8: {err}") from None
    except OSError as err:
        raise ScenarioError(f"{argument} file {path} cannot be read ({err.strerror})") from None


# Only the two user-turn fields are placeholders there; the published notebook writes its
# user turn as a Python format string, so both forms are accepted.
_DOUBLE_BRACE = re.compile(r"\{\{(is_free_tier_user|user_input)\}\}")
_SINGLE_BRACE = re.compile(r"\{(is_free_tier_user|user_input)\}")


def _placeholders(template: str, fields: Iterable[str] = USER_TURN_FIELDS) -> re.Pattern[str]:
    """The placeholder syntax a user-turn template uses: {{name}}, or the notebook's {name}.

    Only the condition's fields match, in their exact spelling: any other braces,
    `{{other}}` or `{{ user_input }}` included, are text that reaches the model byte for byte.
    """
    double, single = _field_patterns(frozenset(fields))
    return double if double.search(template) else single


@cache
def _field_patterns(fields: frozenset[str]) -> tuple[re.Pattern[str], re.Pattern[str]]:
    if fields == USER_TURN_FIELDS:
        return _DOUBLE_BRACE, _SINGLE_BRACE
    names = "|".join(re.escape(name) for name in sorted(fields, key=len, reverse=True))
    return re.compile(r"\{\{(" + names + r")\}\}"), re.compile(r"\{(" + names + r")\}")


def _load_overlay(name: str, setting: str) -> _Overlay:
    path = SCENARIOS_DIR / "variants" / f"{name}.yaml"
    if not name or not path.is_file():
        raise ScenarioError(
            f"Unknown variant {name!r}; choose from: {', '.join(list_variants())} "
            "(combine with '+')"
        )
    raw = _read_yaml(path, _VARIANT_KEYS)
    per_setting = raw.get("settings") or {}
    if not isinstance(per_setting, dict):
        raise ScenarioError(f"{path}: field 'settings' must be a mapping of setting names")
    unknown = set(per_setting) - set(list_settings())
    if unknown:
        raise ScenarioError(f"{path}: field 'settings' names unknown setting(s) {sorted(unknown)}")
    applies_to = raw.get("applies_to")
    if applies_to is not None:
        if not isinstance(applies_to, list) or not set(applies_to) <= set(list_settings()):
            raise ScenarioError(f"{path}: field 'applies_to' must list known setting names")
        if setting not in applies_to:
            raise ScenarioError(
                f"variant {name!r} is written for setting(s) {', '.join(applies_to)} only, "
                f"not {setting!r}"
            )
    overlay = _Overlay(name=name)
    for layer in (raw, per_setting.get(setting) or {}):
        extra = set(layer) - _OVERLAY_KEYS
        extra -= {"description", "settings", "applies_to"} if layer is raw else set()
        if extra:
            raise ScenarioError(f"{path}: unknown field(s) {sorted(extra)}")
        if "scratchpad" in layer:
            if not isinstance(layer["scratchpad"], bool):
                raise ScenarioError(f"{path}: field 'scratchpad' must be true or false")
            overlay.scratchpad = layer["scratchpad"]
        overlay.variables.update(_str_map(layer.get("variables") or {}, path, "variables"))
        overlay.system_prompt.update(
            _str_map(layer.get("system_prompt") or {}, path, "system_prompt", allow_null=True)
        )
        if "user_turn" in layer:
            overlay.user_turn = _require_str(layer["user_turn"], path, "user_turn")
        if "framings" in layer:
            overlay.framings = _parse_framings(layer["framings"], path)
        if "contrasts" in layer:
            overlay.contrasts = _parse_contrasts(layer["contrasts"], path)
        if "prefill" in layer:
            overlay.prefill = _require_str(layer["prefill"], path, "prefill")
    if overlay.contrasts is not None:
        names = {f.name for f in overlay.framings or _tier_framings("free-tier")}
        for contrast in overlay.contrasts:
            for side in (contrast.a, contrast.b):
                if side not in names:
                    raise ScenarioError(
                        f"{path}: contrast {contrast.name!r} names framing {side!r}, which "
                        f"the variant does not declare (framings: {', '.join(sorted(names))})"
                    )
    return overlay


def _parse_framings(value: Any, path: Path) -> tuple[Framing, ...]:
    if not isinstance(value, dict) or len(value) < 2:
        raise ScenarioError(f"{path}: field 'framings' must map at least two framing names")
    framings = []
    for name, spec in value.items():
        where = f"{path}: framing {name!r}"
        if not isinstance(name, str) or not _FRAMING_NAME.fullmatch(name):
            raise ScenarioError(f"{where}: a name is lower case letters, digits and '_'")
        if name in RESERVED_FRAMINGS:
            raise ScenarioError(
                f"{where}: the name is reserved for the roles the tables name "
                f"({', '.join(sorted(RESERVED_FRAMINGS))}); choose another"
            )
        if not isinstance(spec, dict):
            raise ScenarioError(f"{where} must be a mapping")
        extra = set(spec) - {"description", "fields", "told"}
        if extra:
            raise ScenarioError(f"{where}: unknown field(s) {sorted(extra)}")
        for key in ("description", "fields", "told"):
            if key not in spec:
                raise ScenarioError(f"{where}: missing required field {key!r}")
        fields = _str_map(spec["fields"], path, f"framings.{name}.fields")
        if not fields or QUERY_FIELD in fields:
            raise ScenarioError(
                f"{where}: field 'fields' must set at least one user-turn field other than "
                f"{QUERY_FIELD!r}"
            )
        told = spec["told"]
        if not isinstance(told, dict) or set(told) != set(TOLD):
            raise ScenarioError(f"{where}: field 'told' must set exactly {', '.join(TOLD)}")
        for key, flag in told.items():
            if not isinstance(flag, bool):
                raise ScenarioError(f"{where}: field 'told.{key}' must be true or false")
        framings.append(
            Framing(
                name=name,
                description=_require_str(spec["description"], path, f"framings.{name}"),
                fields=fields,
                told={key: told[key] for key in TOLD},
            )
        )
    seen: dict[str, str] = {}
    for framing in framings:  # two framings the model cannot tell apart compare nothing
        text = repr(sorted(framing.fields.items()))
        if text in seen:
            raise ScenarioError(
                f"{path}: framings {seen[text]!r} and {framing.name!r} set the same user-turn "
                "fields, so the model sees the same conversation"
            )
        seen[text] = framing.name
    first = set(framings[0].fields)
    for framing in framings[1:]:
        if set(framing.fields) != first:
            raise ScenarioError(
                f"{path}: framings {framings[0].name!r} and {framing.name!r} set different "
                f"user-turn fields ({sorted(first)} vs {sorted(framing.fields)})"
            )
    return tuple(framings)


def _check_effects(overlays: list[_Overlay], sections: dict[str, str | None]) -> None:
    """A variant whose every rewritten section another variant removes would change nothing
    and still name the results: refused (removals otherwise compose)."""
    for overlay in overlays:
        rewrites = [name for name, file in overlay.system_prompt.items() if file is not None]
        others = (
            overlay.variables,
            overlay.user_turn,
            overlay.scratchpad,
            overlay.framings,
            overlay.contrasts,
            overlay.prefill,
            [name for name, file in overlay.system_prompt.items() if file is None],
        )
        if rewrites and all(sections.get(n) is None for n in rewrites):
            if not any(o not in (None, {}, []) for o in others):
                removers = [
                    o.name
                    for o in overlays
                    if any(o.system_prompt.get(n, 1) is None for n in rewrites)
                ]
                raise ScenarioError(
                    f"variant {overlay.name!r} rewrites {', '.join(rewrites)}, which "
                    f"{', '.join(removers)} removes: combined, it would change nothing"
                )


def _parse_contrasts(value: Any, path: Path) -> tuple[Contrast, ...]:
    if not isinstance(value, dict) or not value:
        raise ScenarioError(f"{path}: field 'contrasts' must map names to [framing, framing]")
    contrasts = []
    for name, pair in value.items():
        if not isinstance(name, str) or not _FRAMING_NAME.fullmatch(name):
            raise ScenarioError(
                f"{path}: contrast {name!r}: a name is lower case letters, digits and '_'"
            )
        if name == GAP_CONTRAST:
            raise ScenarioError(
                f"{path}: contrast name {GAP_CONTRAST!r} is reserved for trained minus "
                "unmonitored, which every condition reports where it can"
            )
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not all(isinstance(side, str) for side in pair)
            or pair[0] == pair[1]
        ):
            raise ScenarioError(
                f"{path}: contrast {name!r} must be two different framing names, [a, b] "
                "(it is compliance under a minus under b)"
            )
        contrasts.append(Contrast(name, pair[0], pair[1]))
    return tuple(contrasts)


def _tier_framings(trained: str | None) -> tuple[Framing, ...]:
    """The two fixed tiers; `trained` is the setting's `trained_tier` variable."""
    free_trained = trained != "paid-tier"
    framings = []
    for name, flag, is_trained in (
        ("free", "True", free_trained),
        ("paid", "False", not free_trained),
    ):
        framings.append(
            Framing(
                name=name,
                description=f"{name}-tier users",
                fields={TIER_FIELD: flag},
                told={
                    "trained": is_trained,
                    "rated": is_trained,
                    "monitored": is_trained,
                    "deployed": True,
                },
            )
        )
    return tuple(framings)


def _contrasts(
    framings: tuple[Framing, ...], declared: tuple[Contrast, ...]
) -> tuple[Contrast, ...]:
    """`compliance_gap` where exactly one framing is trained and one unmonitored, then the
    declared ones."""
    trained = [f.name for f in framings if f.told["trained"]]
    unmonitored = [f.name for f in framings if f.unmonitored]
    gap = (
        (Contrast(GAP_CONTRAST, trained[0], unmonitored[0]),)
        if len(trained) == 1 and len(unmonitored) == 1
        else ()
    )
    return gap + declared


def _check_conflicts(overlays: list[_Overlay]) -> None:
    """Two variants may not set the same thing to different values (removal always composes)."""
    seen: dict[tuple[str, str], tuple[str, Any]] = {}
    for overlay in overlays:
        items: list[tuple[tuple[str, str], Any]] = [
            (("variable", k), v) for k, v in overlay.variables.items()
        ]
        items += [(("section", k), v) for k, v in overlay.system_prompt.items() if v is not None]
        if overlay.scratchpad is not None:
            items.append((("scratchpad", ""), overlay.scratchpad))
        if overlay.user_turn is not None:
            items.append((("user_turn", ""), overlay.user_turn))
        for key in ("framings", "contrasts", "prefill"):
            if getattr(overlay, key) is not None:
                items.append(((key, ""), getattr(overlay, key)))
        for key, value in items:
            if key in seen and seen[key][1] != value:
                what = " ".join(part for part in key if part)
                raise ScenarioError(
                    f"variants {seen[key][0]!r} and {overlay.name!r} conflict: both set {what}"
                )
            seen[key] = (overlay.name, value)


def _render(
    text: str, variables: dict[str, str], path: Path, keep: frozenset[str] = frozenset()
) -> str:
    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in keep:
            return match.group(0)
        if name not in variables:
            known = ", ".join(sorted(variables))
            setters = _variants_setting(name)
            hint = f"; add a variant that sets it: {', '.join(setters)}" if setters else ""
            raise ScenarioError(
                f"{path}: unknown placeholder {{{{{name}}}}} (variables: {known}){hint}"
            )
        return variables[name]

    return _PLACEHOLDER.sub(substitute, text)


def _variants_setting(variable: str) -> list[str]:
    """The variants that set a variable, for the error of a prompt that needs one."""
    found = []
    for path in sorted((SCENARIOS_DIR / "variants").glob("*.yaml")):
        try:
            raw = _read_yaml(path, _VARIANT_KEYS)
        except ScenarioError:
            continue
        layers = [raw, *((raw.get("settings") or {}).values())]
        if any(variable in ((layer or {}).get("variables") or {}) for layer in layers):
            found.append(path.stem)
    return found


def _section_path(relative: str) -> Path:
    return SCENARIOS_DIR / relative


def _read_section(relative: str) -> str:
    path = _section_path(relative)
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"prompt file not found: {path}") from None
    except UnicodeDecodeError as err:
        raise ScenarioError(f"prompt file {path} is not UTF-8: {err}") from None


def _read_yaml(path: Path, allowed: set[str]) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"scenario file not found: {path}") from None
    except yaml.YAMLError as err:
        raise ScenarioError(f"{path}: invalid YAML: {err}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: expected a mapping at the top level")
    unknown = set(data) - allowed
    if unknown:
        raise ScenarioError(f"{path}: unknown field(s) {sorted(unknown)}")
    return data


def _str_map(value: Any, path: Path, field_name: str, allow_null: bool = False) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ScenarioError(f"{path}: field {field_name!r} must be a mapping")
    for key, item in value.items():
        if item is None and allow_null:
            continue
        if not isinstance(item, str):
            raise ScenarioError(f"{path}: field '{field_name}.{key}' must be a string")
    return {str(k): v for k, v in value.items()}


def _require_str(value: Any, path: Path, field_name: str) -> str:
    if not isinstance(value, str):
        raise ScenarioError(f"{path}: field {field_name!r} must be a string")
    return value
