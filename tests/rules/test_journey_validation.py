"""`rules validate` on journey files: every mistake named with file, line, column and reason."""

from pathlib import Path

import pytest

from rules.loader import load_rules
from rules.yaml_source import RuleFileError
from tests.rules.journey_builders import CART_RECOVERY, rules_dir


def _problems(tmp_path: Path, *journeys: str, policies: str | None = None) -> list[str]:
    directory = (
        rules_dir(tmp_path, journeys)
        if policies is None
        else rules_dir(tmp_path, journeys, policies=policies)
    )
    with pytest.raises(RuleFileError) as caught:
        load_rules(directory)
    return caught.value.problems


def test_unknown_event_type_in_a_trigger(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path, CART_RECOVERY.replace("cart.item_added", "cart.item_addded"))
    assert "journey_0.yaml:3:18: trigger.event: unknown event type 'cart.item_addded'" in problem
    assert "did you mean 'cart.item_added'" in problem


def test_unknown_event_property_in_a_condition(tmp_path: Path) -> None:
    journey = CART_RECOVERY.replace('"cart_value >= 20"', '"event.valu >= 20"')
    (problem,) = _problems(tmp_path, journey)
    assert ":3:41: trigger.when: cart.item_added has no property 'valu'" in problem


def test_unknown_profile_name_in_a_condition(tmp_path: Path) -> None:
    journey = CART_RECOVERY.replace('"cart_value >= 20"', '"cart_vlue >= 20"')
    (problem,) = _problems(tmp_path, journey)
    assert "did you mean 'cart_value'" in problem


def test_type_error_in_a_condition(tmp_path: Path) -> None:
    journey = CART_RECOVERY.replace('"cart_value >= 20"', "\"cart_value >= 'x'\"")
    (problem,) = _problems(tmp_path, journey)
    assert "trigger.when: column 15: cannot order a number against text" in problem


def test_bad_duration(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path, CART_RECOVERY.replace("wait: 1h", "wait: an hour"))
    assert ":8:11: steps.0.wait: bad duration 'an hour'" in problem


def test_unknown_template_for_the_channel(tmp_path: Path) -> None:
    (problem,) = _problems(
        tmp_path, CART_RECOVERY.replace("template: cart_reminder", "template: cart_remider")
    )
    assert "steps.1.send.template: unknown template for email 'cart_remider'" in problem
    assert "did you mean 'cart_reminder'" in problem


def test_unknown_channel(tmp_path: Path) -> None:
    (problem,) = _problems(
        tmp_path,
        CART_RECOVERY.replace(
            "channel: email, template: cart_reminder", "channel: fax, template: cart_reminder"
        ),
    )
    assert "steps.1.send.channel: unknown channel 'fax'" in problem


def test_unreachable_step_after_an_exit(tmp_path: Path) -> None:
    journey = CART_RECOVERY.replace("  - wait: 23h\n", "  - exit: true\n  - wait: 23h\n")
    (problem,) = _problems(tmp_path, journey)
    assert "steps.3: unreachable step" in problem


def test_duplicate_journey_id(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path, CART_RECOVERY, CART_RECOVERY)
    assert "journey_1.yaml:1:1: id: duplicate journey id 'cart_recovery'" in problem


def test_misspelt_step_and_field_are_all_listed(tmp_path: Path) -> None:
    journey = CART_RECOVERY.replace("  - wait: 1h", "  - wiat: 1h").replace("entity:", "entitty:")
    problems = _problems(tmp_path, journey)
    assert any("steps.0: a step needs one of: wait, send" in p for p in problems)
    assert any(":4:10: entitty: unknown field" in p for p in problems)


def test_entity_must_be_a_property_of_the_trigger(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path, CART_RECOVERY.replace("entity: cart_id", "entity: ticket_id"))
    assert "entity: cart.item_added has no property 'ticket_id'" in problem


def test_every_broken_file_is_reported(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        CART_RECOVERY.replace("wait: 1h", "wait: soon"),
        CART_RECOVERY.replace("id: cart_recovery", "id: other").replace(
            "order.placed,", "order.plaaced,"
        ),
    )
    assert len(problems) == 2
    assert "journey_0.yaml" in problems[0]
    assert "journey_1.yaml" in problems[1]
