"""Conditions: the language is closed and bounded, and what it accepts computes what Python
computes for the same expression."""

from __future__ import annotations

import ast
import time
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import assume, given, settings, strategies as st

from rules.expressions import MAX_SOURCE_CHARS, ConditionError, compile_condition

#: Each name's type is its sample's: a and b numbers, s text, t a set, flag true/false.
TYPES: dict[str, Any] = {
    "a": 1,
    "b": 2.5,
    "s": "x",
    "t": frozenset({"vip"}),
    "flag": True,
    "event": SimpleNamespace(p=1),
}
VALUES = st.fixed_dictionaries(
    {
        "a": st.integers(-5, 5),
        "b": st.floats(-5, 5, allow_nan=False),
        "s": st.sampled_from(["", "x", "gold"]),
        "t": st.frozensets(st.sampled_from(["vip", "x", "gold"])),
        "flag": st.booleans(),
        "event": st.builds(SimpleNamespace, p=st.integers(-3, 3)),
    }
)
LITERALS = st.sampled_from(["0", "3", "2.5", "'x'", "'gold'", "True", "False", "None"])
ATOMS = st.one_of(st.sampled_from(["a", "b", "s", "t", "flag"]), LITERALS, st.just("event.p"))

#: Well-typed expressions, built by type: what the checker must accept.
NUMBERS = st.recursive(
    st.sampled_from(["a", "b", "event.p", "0", "3", "2.5"]),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/"]), inner).map(
            lambda x: f"({x[0]} {x[1]} {x[2]})"
        ),
        inner.map(lambda x: f"(-{x})"),
    ),
    max_leaves=5,
)
TEXTS = st.sampled_from(["s", "'x'", "'gold'", "''"])
ORDER = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
TESTS = st.one_of(
    st.sampled_from(["flag", "True", "False"]),
    st.tuples(NUMBERS, ORDER, NUMBERS).map(lambda x: f"({x[0]} {x[1]} {x[2]})"),
    st.tuples(NUMBERS, ORDER, NUMBERS, ORDER, NUMBERS).map(lambda x: "({} {} {} {} {})".format(*x)),
    st.tuples(TEXTS, ORDER, TEXTS).map(lambda x: f"({x[0]} {x[1]} {x[2]})"),
    st.tuples(TEXTS, st.sampled_from(["in", "not in"]), st.sampled_from(["t", "s"])).map(
        lambda x: f"({x[0]} {x[1]} {x[2]})"
    ),
    st.tuples(NUMBERS, st.sampled_from(["in", "not in"])).map(lambda x: f"({x[0]} {x[1]} (0, 3))"),
    st.tuples(st.sampled_from(["a", "s", "event.p"]), st.sampled_from(["is", "is not"])).map(
        lambda x: f"({x[0]} {x[1]} None)"
    ),
)
CONDITIONS = st.recursive(
    TESTS,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(
            lambda x: f"({x[0]} {x[1]} {x[2]})"
        ),
        st.tuples(inner, inner, inner).map(lambda x: f"({x[0]} or {x[1]} and {x[2]})"),
        inner.map(lambda x: f"(not {x})"),
    ),
    max_leaves=6,
)


def _compound(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    compare = st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "in", "not in", "is", "is not"])
    arith = st.sampled_from(["+", "-", "*", "/"])
    return st.one_of(
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(
            lambda x: f"({x[0]} {x[1]} {x[2]})"
        ),
        inner.map(lambda x: f"(not {x})"),
        inner.map(lambda x: f"(-{x})"),
        st.tuples(inner, compare, inner).map(lambda x: f"({x[0]} {x[1]} {x[2]})"),
        st.tuples(inner, arith, inner).map(lambda x: f"({x[0]} {x[1]} {x[2]})"),
    )


def _python(source: str, values: dict[str, Any]) -> tuple[str, Any]:
    code = compile(ast.parse(source, mode="eval"), "<condition>", "eval")
    try:
        return ("value", eval(code, {"__builtins__": {}}, dict(values)))
    except ArithmeticError as error:
        return ("raised", type(error).__name__)


@settings(max_examples=800, deadline=None)
@given(source=CONDITIONS, values=VALUES)
def test_an_accepted_condition_computes_what_python_computes(
    source: str, values: dict[str, Any]
) -> None:
    """Over values of the declared types (no None), Python itself is the oracle: it raises
    only what arithmetic can raise, and the condition is then false and counted."""
    try:
        condition = compile_condition(source, TYPES)
    except ConditionError as error:
        # A literal `/ 0`, or more parts than allowed, are refused at load: fine here.
        assume("division by zero" not in str(error) and "parts" not in str(error))
        raise
    outcome, expected = _python(source, values)
    assert condition(values) is (outcome == "value" and expected is True)
    assert condition.failures == (outcome == "raised")


@settings(max_examples=500, deadline=None)
@given(
    source=st.one_of(
        CONDITIONS,
        st.recursive(
            st.one_of(ATOMS, st.sampled_from(["x", "s.upper()", "a ** 2", "a // 0", "[1][0]"])),
            _compound,
            max_leaves=8,
        ),
    ),
    values=st.fixed_dictionaries(
        {name: st.none() | st.just(value) for name, value in TYPES.items()}
    ),
)
def test_any_expression_is_refused_with_a_reason_or_runs_without_raising(
    source: str, values: dict[str, Any]
) -> None:
    """Missing values included: an accepted condition is true or false, never an error."""
    try:
        condition = compile_condition(source, TYPES)
    except ConditionError as error:
        refusal = str(error)
        assert refusal.strip()
        return
    assert condition(values) in (True, False)


SAMPLE = {"orders_count": 4, "tier": "silver", "days": 12.5, "tags": frozenset({"vip"})}


def test_a_comparison_with_a_missing_value_is_false_and_only_that_comparison() -> None:
    condition = compile_condition("days >= 30 or orders_count > 10", SAMPLE)
    assert condition({**SAMPLE, "days": None, "orders_count": 11}) is True
    assert condition({**SAMPLE, "days": None, "orders_count": 0}) is False
    assert condition({**SAMPLE, "days": 31.0, "orders_count": 0}) is True
    assert condition.failures == 0  # a missing value is not a failure


def test_arithmetic_with_a_missing_value_stays_missing() -> None:
    condition = compile_condition("days * 2 > 10 or days is None", SAMPLE)
    assert condition({**SAMPLE, "days": None}) is True


def test_tag_membership_and_chained_comparisons_evaluate_per_call() -> None:
    condition = compile_condition("'vip' in tags and 1 <= orders_count < 5", SAMPLE)
    assert condition(SAMPLE) is True
    assert condition({**SAMPLE, "orders_count": 5}) is False
    assert condition({**SAMPLE, "tags": frozenset()}) is False


def test_in_a_list_of_literals() -> None:
    condition = compile_condition("tier in ('gold', 'platinum')", SAMPLE)
    assert condition({**SAMPLE, "tier": "gold"}) is True
    assert condition(SAMPLE) is False


def test_a_division_by_zero_at_run_time_is_false_counted_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    names = {"cart_value": 10.0, "cart_items": 2}
    condition = compile_condition("cart_value / cart_items > 4", names, rule="tag avg_item")
    condition.where = "rules/tags.yaml:7:11"
    empty = {"cart_value": 0.0, "cart_items": 0}
    with caplog.at_level("WARNING", logger="rapport.rules"):
        assert condition(empty) is False
        assert condition(empty) is False
    assert condition(names) is True
    assert condition.failures == 2
    (record,) = caplog.records
    assert "rules/tags.yaml:7:11" in record.getMessage()
    assert "ZeroDivisionError" in record.getMessage()


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("orders_cont >= 3", "unknown name 'orders_cont'; did you mean 'orders_count'?"),
        ("tier >= 3", "cannot order text against a number"),
        ("orders_count +", "not a valid expression"),
        ("orders_count + 1", "must be true or false"),
        ("len(tier) > 2", "calls are not part of the condition language"),
        ("tier.upper() == 'GOLD'", "calls are not part of the condition language"),
        ("tier.__class__ == 1", "attribute access is not part of the condition language"),
        ("9**4000000 > 0", "`\\*\\*` is not part of the condition language"),
        ("tier.ljust(10**9) != ''", "calls are not part of the condition language"),
        ("10**4000000 * 10**4000000 > 1", "`\\*\\*` is not part of the condition language"),
        ("orders_count // 0 > 1", "`//` is not part of the condition language"),
        ("orders_count % 2 == 0", "`%` is not part of the condition language"),
        ("tier.encode('utf-8') == 1", "calls are not part of the condition language"),
        ("tier.ljust(2**40) == ''", "calls are not part of the condition language"),
        ("orders_count / 0 > 1", "division by zero"),
        ("tier * 1000000000 == ''", "arithmetic needs numbers; this is text"),
        ("orders_count > 99999999999999999999", "numbers are at most"),
        ("tags == 1", "comparing a set of texts with a number is never true"),
        ("orders_count and tier == 'x'", "`and` joins true/false tests; this part is a number"),
        ("tier[0] == 's'", "indexing"),
        ("'vip' if tier else 'x'", "is not part of the condition language"),
        ("orders_count < None", "use `is None`"),
        ("orders_count is 3", "only compare with None"),
        ("-" * 400 + "1 > 0", "at most 120 parts"),
        ("days < 1 or " * 30 + "True", "at most 120 parts"),
        ("'" + "x" * 300 + "' == tier", "at most 200 characters"),
    ],
)
def test_bad_conditions_are_rejected_at_load_time_with_a_reason(source: str, reason: str) -> None:
    with pytest.raises(ConditionError, match=reason.replace("(", r"\(").replace("?", r"\?")):
        compile_condition(source, SAMPLE)


def test_a_condition_longer_than_the_limit_is_refused_before_parsing() -> None:
    started = time.perf_counter()
    with pytest.raises(ConditionError, match=f"at most {MAX_SOURCE_CHARS} characters"):
        compile_condition("1 + " * 100_000 + "1 > 0", SAMPLE)
    assert time.perf_counter() - started < 20  # parsing it whole would be slow, not this
