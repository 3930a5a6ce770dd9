from pathlib import Path

import pytest

from engine import Engine
from rules.loader import DEFAULT_RULES_DIR, load_rules
from rules.yaml_source import RuleFileError
from state.stores import MemoryProfileStore
from tests.builders import IMMEDIATE, at, changes_of, event, viewed


def _engine() -> Engine:
    return Engine(MemoryProfileStore(), load_rules(DEFAULT_RULES_DIR), config=IMMEDIATE)


def test_third_sneaker_view_in_thirty_days_adds_sneaker_fan() -> None:
    engine = _engine()
    changes = [
        c
        for day in (0, 10, 20)
        for c in changes_of(engine.apply(viewed(category="sneakers", when=at(day))))
    ]
    assert [(c.kind, c.after) for c in changes] == [("tag_added", "sneaker_fan")]
    assert changes[0].at == at(20).timestamp()


def test_views_spread_over_more_than_thirty_days_do_not_add_sneaker_fan() -> None:
    engine = _engine()
    changes = [
        c
        for day in (0, 20, 40)
        for c in changes_of(engine.apply(viewed(category="sneakers", when=at(day))))
    ]
    assert changes == []


def test_sneaker_fan_lapses_when_the_window_slides_past_the_views() -> None:
    engine = _engine()
    for day in (0, 1, 2):
        engine.apply(viewed(category="sneakers", when=at(day)))
    changes = changes_of(engine.advance(at(40).timestamp()))
    assert [(c.kind, c.before) for c in changes if c.kind == "tag_removed"] == [
        ("tag_removed", "sneaker_fan")
    ]


def test_condition_tag_follows_the_profile() -> None:
    engine = _engine()
    added = changes_of(engine.apply(event("support.satisfaction_rated", csat=1, when=at(0))))
    assert ("tag_added", "unhappy_customer") in [(c.kind, c.after) for c in added]
    removed = changes_of(engine.apply(event("support.satisfaction_rated", csat=5, when=at(1))))
    removed += changes_of(engine.apply(event("support.satisfaction_rated", csat=5, when=at(2))))
    assert ("tag_removed", "unhappy_customer") in [(c.kind, c.before) for c in removed]


def _problems(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "tags.yaml").write_text(text)
    with pytest.raises(RuleFileError) as caught:
        load_rules(tmp_path)
    return caught.value.problems


def test_unknown_event_type_is_reported_with_file_and_line(tmp_path: Path) -> None:
    (problem,) = _problems(
        tmp_path,
        "tags:\n  - id: x\n    activity:\n      event: product.seen\n"
        "      at_least: 2\n      within: 7d\n",
    )
    assert problem.startswith(f"{tmp_path}/tags.yaml:4:14:")
    assert "unknown event type 'product.seen'" in problem


def test_misspelt_profile_field_is_reported_with_a_suggestion(tmp_path: Path) -> None:
    (problem,) = _problems(
        tmp_path, "tags:\n  - id: x\n    when: orders_cont > 2\n    on: [order.placed]\n"
    )
    assert ":3:11:" in problem
    assert "did you mean 'orders_count'" in problem


def test_type_error_in_a_condition_is_reported(tmp_path: Path) -> None:
    (problem,) = _problems(
        tmp_path, "tags:\n  - id: x\n    when: cart_value >= 'x'\n    on: [order.placed]\n"
    )
    assert "cannot order a number against text" in problem


def test_bad_duration_and_unknown_field_are_reported(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        "tags:\n  - id: x\n    colour: red\n    when: tier == 'gold'\n    on: [order.placed]\n",
    )
    assert problems == [
        f"{tmp_path}/tags.yaml:3:13: tags.0.colour: unknown field (check the spelling; see docs/rules.md)"
    ]


def test_bad_yaml_is_reported_with_its_position(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path, "tags:\n  - id: [unclosed\n")
    assert problem.startswith(f"{tmp_path}/tags.yaml:")
    assert "not valid YAML" in problem


def test_a_control_character_in_a_rule_file_is_refused_with_its_line_and_column(
    tmp_path: Path,
) -> None:
    (tmp_path / "tags.yaml").write_text("tags:\n  - id: vip\x1f\n")
    with pytest.raises(RuleFileError) as caught:
        load_rules(tmp_path)
    (problem,) = caught.value.problems
    assert (
        problem == f"{tmp_path / 'tags.yaml'}:2:12: not valid YAML: character #x001f is not allowed"
    )


def test_a_rule_file_that_is_not_utf8_is_refused_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "tags.yaml").write_bytes(b"tags: []\n# caf\xe9\n")
    with pytest.raises(RuleFileError) as caught:
        load_rules(tmp_path)
    (problem,) = caught.value.problems
    assert problem.startswith(f"{tmp_path / 'tags.yaml'}: not UTF-8 text (byte 14")
