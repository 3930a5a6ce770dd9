"""Coupon pools: each pre-issued code goes out once, an empty pool suppresses with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules.coupon_pools import CouponLedger
from rules.loader import load_rules
from rules.yaml_source import RuleFileError
from tests.builders import at, ordered
from tests.rules.journey_builders import consent, journey_engine, rules_dir, sends

THANKS = """
id: thanks
trigger: {event: order.placed}
steps:
  - send:
      channel: email
      template: hello
      coupon: {percent: 10, valid_for: 7d, pool: spring}
"""
POOL_POLICIES = """
channels:
  email: {templates: [hello]}
coupon_pools:
  spring: {file: coupons/spring.txt}
"""


def _rules(
    tmp_path: Path, codes: str, journey: str = THANKS, policies: str = POOL_POLICIES
) -> Path:
    directory = rules_dir(tmp_path, [journey], policies=policies)
    (directory / "coupons").mkdir(exist_ok=True)
    (directory / "coupons" / "spring.txt").write_text(codes)
    return directory


def test_codes_go_out_in_file_order_and_an_empty_pool_suppresses_the_send(tmp_path: Path) -> None:
    engine = journey_engine(_rules(tmp_path, "# spring sale\nSPRING-A1\n\nSPRING-B2  # second\n"))
    outputs = []
    for number, customer in enumerate(("c1", "c2", "c3")):
        outputs += engine.apply(consent(customer=customer, when=at(0)))
        outputs += engine.apply(ordered(f"o{number}", customer=customer, when=at(1, number)))
    outputs += engine.finish(at(2).timestamp())
    actions = sends(outputs, status=None)
    assert [(a.profile_key, a.status, a.reason) for a in actions] == [
        ("c1", "sent", None),
        ("c2", "sent", None),
        ("c3", "suppressed", "coupon_pool_empty"),
    ]
    assert [(a.coupon.code, a.coupon.pool) for a in actions[:2] if a.coupon] == [
        ("SPRING-A1", "spring"),
        ("SPRING-B2", "spring"),
    ]
    assert actions[2].coupon is None
    assert engine.coupon_pools() == {"spring": (0, 2)}


def test_a_reloaded_pool_goes_on_after_the_codes_already_handed_out(tmp_path: Path) -> None:
    directory = _rules(tmp_path, "SPRING-A1\nSPRING-B2\n")
    engine = journey_engine(directory)
    first = engine.apply(consent(when=at(0))) + engine.apply(ordered("o1", when=at(1)))
    (directory / "coupons" / "spring.txt").write_text("SPRING-A1\nSPRING-B2\nSPRING-C3\n")
    engine.swap_rules(load_rules(directory))
    second = engine.apply(consent(customer="c2", when=at(2)))
    second += engine.apply(ordered("o2", customer="c2", when=at(2, 1)))
    codes = [a.coupon.code for a in sends(first + second) if a.coupon]
    assert codes == ["SPRING-A1", "SPRING-B2"]
    assert engine.coupon_pools() == {"spring": (1, 3)}


def test_the_ledger_never_hands_out_a_code_twice_across_reloads() -> None:
    ledger = CouponLedger()
    assert ledger.claim("p", ("AAAA", "BBBB")) == "AAAA"
    reloaded = ("BBBB", "AAAA", "CCCC")  # reordered and topped up
    assert [ledger.claim("p", reloaded) for _ in range(3)] == ["BBBB", "CCCC", None]


def _problems(tmp_path: Path, codes: str, **kw: str) -> list[str]:
    with pytest.raises(RuleFileError) as caught:
        load_rules(_rules(tmp_path, codes, **kw))
    problems = caught.value.problems
    if len(problems) == 2:  # a broken policies.yaml holds back the journey checks
        assert problems[1].endswith("1 journey file(s) not checked until policies.yaml loads")
        return problems[:1]
    return problems


def test_a_duplicate_code_is_named_with_both_lines(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path, "SPRING-A1\nSPRING-B2\nSPRING-A1\n")
    assert "policies.yaml:5:" in problem
    assert "coupons/spring.txt:3: duplicate code 'SPRING-A1' (first on line 1)" in problem


def test_a_malformed_code_is_named_with_its_line(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path, "SPRING-A1\nspring sale\n")
    assert "coupons/spring.txt:2: 'spring sale' is not a coupon code" in problem


def test_a_missing_pool_file_is_named(tmp_path: Path) -> None:
    policies = POOL_POLICIES.replace("coupons/spring.txt", "coupons/sping.txt")
    (problem,) = _problems(tmp_path, "SPRING-A1\n", policies=policies)
    assert "coupon_pools.spring.file: no such coupon file:" in problem
    assert problem.endswith("coupons/sping.txt")


def test_a_pool_file_outside_the_rules_directory_is_refused(tmp_path: Path) -> None:
    policies = POOL_POLICIES.replace("coupons/spring.txt", "../spring.txt")
    (problem,) = _problems(tmp_path, "SPRING-A1\n", policies=policies)
    assert "'../spring.txt' is outside the rules directory" in problem


def test_a_code_in_two_pools_is_refused(tmp_path: Path) -> None:
    policies = POOL_POLICIES + "  summer: {file: coupons/spring.txt}\n"
    (problem,) = _problems(tmp_path, "SPRING-A1\n", policies=policies)
    assert "coupon_pools.summer.file: code 'SPRING-A1' is also in pool 'spring'" in problem


def test_an_unknown_pool_in_a_journey_is_named_with_a_suggestion(tmp_path: Path) -> None:
    (problem,) = _problems(
        tmp_path, "SPRING-A1\n", journey=THANKS.replace("pool: spring", "pool: sprnig")
    )
    assert (
        "steps.0.send.coupon.pool: unknown coupon pool 'sprnig'; did you mean 'spring'?" in problem
    )
