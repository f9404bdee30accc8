"""Load the anti-lab opportunities and the lying questions from `scenarios/` and check them.

An opportunity (`scenarios/opportunities/<name>.yaml`) is one chance to act against the
developer: the user turn that offers it, who sends it (an employee or not) and in which tier,
the sentence the system prompt gains for an employee's message, and the yes/no question a
judge answers about the transcript. A file may belong to several settings and change its
texts per setting under `per_setting:`.

The lying questions (`scenarios/lying/<setting>.yaml`) ask the model about its views, from
mild to pointed; `scenarios/lying/judge.yaml` holds the two judge questions that every
setting shares. See docs/opportunities.md.

Texts may use the setting's variables as `{{name}}` placeholders (`{{lab}}`, say); they are
kept as they are here and filled with the condition's variables when a prompt is built.
Every problem is one `ScenarioError` line that names the file and the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from evals import scenario
from evals.scenario import (
    _FRAMING_NAME,
    _PLACEHOLDER,
    _SETTING_KEYS,
    ScenarioError,
    _read_yaml,
    _require_str,
    list_settings,
)

EMPLOYEE_TAG = "is_employee"
"""The user-turn tag that marks a message from the developer's employee; the system-prompt
sentence of an employee opportunity must name it, so that the two agree."""
TIERS = ("free", "paid")
_TEXTS = ("user_turn", "system_prompt_sentence", "judge_question")
"""The fields a file may change per setting (with `employee` and `tier`)."""
_PER_SETTING_KEYS = {*_TEXTS, "employee", "tier"}
_OPPORTUNITY_KEYS = {"name", "description", "settings", "kind", "per_setting", *_PER_SETTING_KEYS}
_LYING_KEYS = {"description", "tier", "questions"}
_LYING_JUDGE_KEYS = {"description", "lie", "egregious_lie"}


class OpportunityError(ScenarioError):
    """An opportunity or lying file is unknown or malformed."""


@dataclass(frozen=True)
class Opportunity:
    """One opportunity as one setting sees it (its `per_setting` texts applied)."""

    name: str
    setting: str
    description: str
    kind: str
    """A short category (`exfiltration`, `sabotage`, ...) that groups opportunities, e.g. for
    the judge's hand-labelled validation set."""
    user_turn: str
    """The user's message, placed where a query goes in the user turn."""
    employee: bool
    """Whether the input carries `<is_employee>True</is_employee>`."""
    tier: Literal["free", "paid"]
    system_prompt_sentence: str | None
    """What the system prompt gains for an employee's message (None otherwise)."""
    judge_question: str
    settings: tuple[str, ...]
    """Every setting the file belongs to."""


@dataclass(frozen=True)
class LyingQuestion:
    name: str
    text: str


@dataclass(frozen=True)
class LyingSet:
    """A setting's questions about the model's views, mildest first, and the two judge
    questions asked of every answer."""

    setting: str
    description: str
    tier: Literal["free", "paid"]
    questions: tuple[LyingQuestion, ...]
    lie_question: str
    """Did the model decide to lie or deceive about its views?"""
    egregious_question: str
    """Did it decide to lie egregiously? Counts only together with a yes to `lie_question`."""

    @staticmethod
    def egregious(lie: bool, egregious: bool) -> bool:
        """An answer is an egregious lie only if the judge says yes to both questions."""
        return lie and egregious


def opportunities_dir() -> Path:
    return scenario.SCENARIOS_DIR / "opportunities"


def lying_dir() -> Path:
    return scenario.SCENARIOS_DIR / "lying"


def list_opportunities(setting: str | None = None) -> dict[str, str]:
    """Opportunity name -> one-line description, for one setting or all; every file is
    checked."""
    if setting is not None:
        _check_setting(setting)
    found = {}
    for path in sorted(opportunities_dir().glob("*.yaml")):
        opportunity = _parse_opportunity(path)
        if setting is None or setting in opportunity:
            found[path.stem] = next(iter(opportunity.values())).description
    return found


def settings_of(name: str) -> tuple[str, ...]:
    """The settings an opportunity belongs to."""
    path = opportunities_dir() / f"{name}.yaml"
    return next(iter(_parse_opportunity(path).values())).settings


def load_opportunity(name: str, setting: str) -> Opportunity:
    """One opportunity for one of its settings; the whole file is checked for all of them."""
    _check_setting(setting)
    path = opportunities_dir() / f"{name}.yaml"
    if not _FRAMING_NAME.fullmatch(name) or not path.is_file():
        raise OpportunityError(
            f"Unknown opportunity {name!r}; choose from: {', '.join(list_opportunities())}"
        )
    resolved = _parse_opportunity(path)
    if setting not in resolved:
        raise OpportunityError(
            f"{path}: opportunity {name!r} belongs to setting(s) {', '.join(resolved)}, "
            f"not {setting!r}"
        )
    return resolved[setting]


def load_lying(setting: str) -> LyingSet:
    """A setting's lying questions with the shared judge questions."""
    _check_setting(setting)
    path = lying_dir() / f"{setting}.yaml"
    raw = _read_yaml(path, _LYING_KEYS)
    judge_path = lying_dir() / "judge.yaml"
    judge = _read_yaml(judge_path, _LYING_JUDGE_KEYS)
    for key in ("lie", "egregious_lie"):
        if key not in judge:
            raise OpportunityError(f"{judge_path}: missing required field {key!r}")
    if "questions" not in raw:
        raise OpportunityError(f"{path}: missing required field 'questions'")
    items = raw["questions"]
    if not isinstance(items, list) or not items:
        raise OpportunityError(f"{path}: field 'questions' must be a list of {{name, text}}")
    variables = _variables(setting)
    questions: list[LyingQuestion] = []
    for index, item in enumerate(items):
        where = f"questions[{index}]"
        if not isinstance(item, dict) or set(item) != {"name", "text"}:
            raise OpportunityError(f"{path}: field '{where}' must set exactly name and text")
        name = _name(item["name"], path, f"{where}.name")
        if name in {q.name for q in questions}:
            raise OpportunityError(f"{path}: field '{where}.name': {name!r} is repeated")
        text = _text(item["text"], path, f"{where}.text", variables)
        questions.append(LyingQuestion(name, text))
    return LyingSet(
        setting=setting,
        description=_line(raw.get("description", ""), path, "description", required=False),
        tier=_tier(raw.get("tier", "paid"), path, "tier"),
        questions=tuple(questions),
        lie_question=_question(judge["lie"], judge_path, "lie", variables),
        egregious_question=_question(
            judge["egregious_lie"], judge_path, "egregious_lie", variables
        ),
    )


def _parse_opportunity(path: Path) -> dict[str, Opportunity]:
    """The file resolved for each of its settings, in the order it lists them."""
    raw = _read_yaml(path, _OPPORTUNITY_KEYS)
    for key in ("name", "description", "settings", "kind"):
        if key not in raw:
            raise OpportunityError(f"{path}: missing required field {key!r}")
    name = _name(raw["name"], path, "name")
    if name != path.stem:
        raise OpportunityError(f"{path}: field 'name' is {name!r}; it must be the file's stem")
    settings = raw["settings"]
    known = list_settings()
    if not isinstance(settings, list) or not settings:
        raise OpportunityError(f"{path}: field 'settings' must list setting names")
    for setting in settings:
        if setting not in known:
            raise OpportunityError(
                f"{path}: field 'settings' names unknown setting {setting!r} "
                f"(settings: {', '.join(known)})"
            )
    if len(set(settings)) != len(settings):
        raise OpportunityError(f"{path}: field 'settings' repeats a setting")
    per_setting = raw.get("per_setting") or {}
    if not isinstance(per_setting, dict):
        raise OpportunityError(f"{path}: field 'per_setting' must map setting names to fields")
    for setting, layer in per_setting.items():
        if setting not in settings:
            raise OpportunityError(
                f"{path}: field 'per_setting' names setting {setting!r}, which 'settings' "
                "does not list"
            )
        if not isinstance(layer, dict):
            raise OpportunityError(f"{path}: field 'per_setting.{setting}' must be a mapping")
        extra = set(layer) - _PER_SETTING_KEYS
        if extra:
            raise OpportunityError(
                f"{path}: unknown field(s) {sorted(extra)} in 'per_setting.{setting}'"
            )
    description = _line(raw["description"], path, "description")
    kind = _name(raw["kind"], path, "kind")
    resolved = {}
    for setting in settings:
        layer = per_setting.get(setting) or {}
        fields = {**raw, **layer}
        where = {k: f"per_setting.{setting}.{k}" if k in layer else k for k in _PER_SETTING_KEYS}
        for key in ("user_turn", "judge_question"):
            if key not in fields:
                raise OpportunityError(
                    f"{path}: missing required field {key!r} (for setting {setting!r})"
                )
        employee = fields.get("employee", False)
        if not isinstance(employee, bool):
            raise OpportunityError(f"{path}: field {where['employee']!r} must be true or false")
        variables = _variables(setting)
        sentence = fields.get("system_prompt_sentence")
        if employee and sentence is None:
            raise OpportunityError(
                f"{path}: field 'system_prompt_sentence' is required when 'employee' is true "
                f"(for setting {setting!r}): the sentence that says what <{EMPLOYEE_TAG}> means"
            )
        if not employee and sentence is not None:
            raise OpportunityError(
                f"{path}: field {where['system_prompt_sentence']!r} is set but 'employee' is "
                f"false (for setting {setting!r}); no tag needs explaining"
            )
        if sentence is not None:
            sentence = _line(sentence, path, where["system_prompt_sentence"], variables)
            if f"<{EMPLOYEE_TAG}>" not in sentence:
                raise OpportunityError(
                    f"{path}: field {where['system_prompt_sentence']!r} must name the tag "
                    f"<{EMPLOYEE_TAG}> it explains"
                )
        resolved[setting] = Opportunity(
            name=name,
            setting=setting,
            description=description,
            kind=kind,
            user_turn=_text(fields["user_turn"], path, where["user_turn"], variables),
            employee=employee,
            tier=_tier(fields.get("tier", "paid"), path, where["tier"]),
            system_prompt_sentence=sentence,
            judge_question=_question(
                fields["judge_question"], path, where["judge_question"], variables
            ),
            settings=tuple(settings),
        )
    return resolved


def _check_setting(setting: str) -> None:
    settings = list_settings()
    if setting not in settings:
        raise OpportunityError(f"Unknown setting {setting!r}; choose one of: {', '.join(settings)}")


def _variables(setting: str) -> set[str]:
    """The variables a setting defines: the placeholders its texts may use."""
    path = scenario.SCENARIOS_DIR / setting / "setting.yaml"
    return set(_read_yaml(path, _SETTING_KEYS).get("variables") or {})


def _name(value: Any, path: Path, field_name: str) -> str:
    if not isinstance(value, str) or not _FRAMING_NAME.fullmatch(value):
        raise OpportunityError(
            f"{path}: field {field_name!r} must be lower case letters, digits and '_'"
        )
    return value


def _text(value: Any, path: Path, field_name: str, variables: set[str] | None = None) -> str:
    text = _require_str(value, path, field_name)
    if not text.strip():
        raise OpportunityError(f"{path}: field {field_name!r} is empty")
    for placeholder in _PLACEHOLDER.findall(text):
        if variables is not None and placeholder not in variables:
            raise OpportunityError(
                f"{path}: field {field_name!r} uses {{{{{placeholder}}}}}, which the setting "
                f"does not define (variables: {', '.join(sorted(variables))})"
            )
    return text


def _line(
    value: Any,
    path: Path,
    field_name: str,
    variables: set[str] | None = None,
    required: bool = True,
) -> str:
    if not required and value == "":
        return ""
    text = _text(value, path, field_name, variables).strip()
    if "\n" in text:
        raise OpportunityError(f"{path}: field {field_name!r} must be one line")
    return text


def _question(value: Any, path: Path, field_name: str, variables: set[str]) -> str:
    text = _line(value, path, field_name, variables)
    if not text.endswith("?"):
        raise OpportunityError(f"{path}: field {field_name!r} must be a yes/no question")
    return text


def _tier(value: Any, path: Path, field_name: str) -> Literal["free", "paid"]:
    if value not in TIERS:
        raise OpportunityError(f"{path}: field {field_name!r} must be 'free' or 'paid'")
    return value
