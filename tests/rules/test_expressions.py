"""Conditions: the closures built from a checked expression compute what simpleeval computes."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import simpleeval
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.expressions import ConditionError, _lower, compile_condition

NAMES = ("a", "b", "s", "t", "flag")
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(-5, 5, allow_nan=False),
    st.sampled_from(["", "x", "gold"]),
)
VALUES = st.fixed_dictionaries(
    {
        "a": SCALARS,
        "b": SCALARS,
        "s": SCALARS,
        "t": st.frozensets(st.sampled_from(["vip", "x", "gold"])),
        "flag": st.booleans(),
        "ev": st.builds(SimpleNamespace, p=SCALARS),
    }
)
LITERALS = st.sampled_from(["0", "3", "2.5", "'x'", "'gold'", "True", "False", "None"])
ATOMS = st.one_of(st.sampled_from(NAMES), LITERALS, st.just("ev.p"))


def _compound(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    compare = st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "in", "not in", "is", "is not"])
    arith = st.sampled_from(["+", "-", "*", "/", "%"])
    return st.one_of(
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(
            lambda x: f"({x[0]} {x[1]} {x[2]})"
        ),
        st.tuples(inner, inner, inner).map(lambda x: f"({x[0]} and {x[1]} and {x[2]})"),
        st.tuples(inner, inner, inner).map(lambda x: f"({x[0]} or {x[1]} or {x[2]})"),
        inner.map(lambda x: f"(not {x})"),
        inner.map(lambda x: f"(-{x})"),
        st.tuples(inner, compare, inner).map(lambda x: f"({x[0]} {x[1]} {x[2]})"),
        st.tuples(inner, compare, inner, compare, inner).map(
            lambda x: "({} {} {} {} {})".format(*x)
        ),
        st.tuples(inner, arith, inner).map(lambda x: f"({x[0]} {x[1]} {x[2]})"),
        st.tuples(inner, inner, inner).map(lambda x: f"({x[0]} if {x[1]} else {x[2]})"),
    )


EXPRESSIONS = st.recursive(ATOMS, _compound, max_leaves=8)


def _outcome(run: Any) -> tuple[str, Any]:
    try:
        return ("value", run())
    except Exception as error:  # the kind of failure must match too
        return ("raised", type(error).__name__)


@settings(max_examples=600, deadline=None)
@given(source=EXPRESSIONS, values=VALUES)
def test_closures_compute_what_simpleeval_computes(source: str, values: dict[str, Any]) -> None:
    evaluator = simpleeval.SimpleEval(names=values, functions={})
    tree = evaluator.parse(source)
    program = _lower(tree, evaluator, source)
    expected = _outcome(lambda: evaluator.eval(source, previously_parsed=tree))
    assert _outcome(lambda: program(values)) == expected


SAMPLE = {"orders_count": 4, "tier": "silver", "days": 12.5, "tags": frozenset({"vip"})}


def test_a_comparison_with_a_missing_value_is_false_not_an_error() -> None:
    condition = compile_condition("days >= 30 or orders_count > 10", SAMPLE)
    assert condition({**SAMPLE, "days": None, "orders_count": 11}) is False
    assert condition({**SAMPLE, "days": 31.0, "orders_count": 0}) is True


def test_tag_membership_and_chained_comparisons_evaluate_per_call() -> None:
    condition = compile_condition("'vip' in tags and 1 <= orders_count < 5", SAMPLE)
    assert condition(SAMPLE) is True
    assert condition({**SAMPLE, "orders_count": 5}) is False
    assert condition({**SAMPLE, "tags": frozenset()}) is False


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("orders_cont >= 3", "unknown name 'orders_cont'; did you mean 'orders_count'?"),
        ("tier >= 3", "type error"),
        ("orders_count +", "not a valid expression"),
        ("orders_count + 1", "must be true or false"),
        ("len(tier) > 2", "unknown name 'len'"),
        ("tier.__class__ == 1", "__attributes"),
    ],
)
def test_bad_conditions_are_rejected_at_load_time_with_a_reason(source: str, reason: str) -> None:
    with pytest.raises(ConditionError, match=reason.replace("(", r"\(").replace("?", r"\?")):
        compile_condition(source, SAMPLE)
