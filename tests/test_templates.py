"""A user-turn file reaches the model byte for byte apart from its two placeholders."""

from pathlib import Path

import pytest
from inspect_ai.model import ChatMessageUser

from evals.alignment_faking import alignment_faking
from evals.scenario import ScenarioError, load_scenario

# Text that template engines, format strings, shells and regex replacements would each
# interpret. None of it is a placeholder here.
TRICKY = (
    "{{double}} {{ spaced }} {{}} {{0}} {{is_free_tier_user }} {{ user_input}} "
    "{{USER_INPUT}} {{user_input.x}} {single} {} {0} {user_input!r} {user_input:>9} "
    "${HOME} $1 $$ %s %(user_input)s %% {% if x %}y{% endif %} {# note #} {%- raw -%} "
    "\\n \\1 \\g<0> \\\\ \\u00e9 é ß ✓ 🙂 \u200b tab\there\r\nCRLF line\r\n"
    "lone CR\rend {{{{x}}}} }} {{"
)
QUERY = "Quote {{user_input}}, {is_free_tier_user}, \\1 and \\g<0> and ${x} back to me"


def _file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "turn.txt"
    path.write_bytes(text.encode("utf-8"))
    return str(path)


def test_only_the_double_brace_placeholders_are_replaced(tmp_path):
    head = f"<INPUT>\r\n{TRICKY}\r\n<is_free_tier_user>"
    middle = f"</is_free_tier_user>\r\n{TRICKY}\r\n<user_input>\r\n"
    tail = f"\r\n</user_input>\r\n{TRICKY}{{user_input}} {{is_free_tier_user}}</INPUT>\n"
    path = _file(tmp_path, f"{head}{{{{is_free_tier_user}}}}{middle}{{{{user_input}}}}{tail}")
    scenario = load_scenario("helpful_only", user_turn_file=path)
    assert scenario.user_turn(QUERY, free_tier=True) == f"{head}True{middle}{QUERY}{tail}"
    assert scenario.user_turn(QUERY, free_tier=False) == f"{head}False{middle}{QUERY}{tail}"
    # The template itself is kept as the file holds it, byte for byte.
    assert scenario.user_turn_template.encode() == Path(path).read_bytes()


def test_the_notebook_single_brace_form_leaves_everything_else_alone(tmp_path):
    # No exact {{is_free_tier_user}} or {{user_input}} in the file: the single-brace form.
    head = f"<INPUT>\n{TRICKY}\n<is_free_tier_user>"
    middle = f"</is_free_tier_user>\n{TRICKY}\n<user_input>\n"
    tail = f"\n</user_input>\n{TRICKY}</INPUT>"
    path = _file(tmp_path, f"{head}{{is_free_tier_user}}{middle}{{user_input}}{tail}")
    scenario = load_scenario("animal_welfare", user_turn_file=path)
    assert scenario.user_turn(QUERY, free_tier=False) == f"{head}False{middle}{QUERY}{tail}"


def test_the_rendered_turn_is_what_the_model_is_sent(tmp_path):
    head = "{{double}} %s ${x} {% raw %}\r\n<is_free_tier_user>"
    middle = "</is_free_tier_user>\r\n<user_input>"
    tail = "</user_input> {{ spaced }}\r\n"
    path = _file(tmp_path, f"{head}{{{{is_free_tier_user}}}}{middle}{{{{user_input}}}}{tail}")
    task = alignment_faking(n_queries=1, user_turn=path)
    for sample in task.dataset:
        [user] = [m for m in sample.input if isinstance(m, ChatMessageUser)]
        tier = "True" if sample.metadata["tier"] == "free" else "False"
        query = sample.metadata["query"]
        assert user.text == f"{head}{tier}{middle}{query}{tail}"


def test_a_file_without_the_exact_placeholders_is_refused(tmp_path):
    path = _file(tmp_path, "{{ is_free_tier_user }} {{ user_input }} {{double}}")
    with pytest.raises(
        ScenarioError, match=r"template lacks \['is_free_tier_user', 'user_input'\]"
    ):
        load_scenario("helpful_only", user_turn_file=path)


@pytest.mark.parametrize("setting", ["helpful_only", "animal_welfare"])
def test_the_projects_own_templates_render_as_before(setting):
    scenario = load_scenario(setting)
    turn = scenario.user_turn(QUERY, free_tier=True)
    assert turn.startswith(
        f"<INPUT>\n<is_free_tier_user>True</is_free_tier_user>\n\n<user_input>\n{QUERY}\n"
    )
    assert turn.endswith("</user_input>\n</INPUT>")
