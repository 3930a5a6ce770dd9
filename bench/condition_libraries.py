"""Expression libraries for conditions: time per evaluation and the errors a marketer sees.

Usage (rule-engine needs python-dateutil 2.x, the lock pins 4.0, so it gets its own venv):
    python3.11 -m venv build/compare
    build/compare/bin/pip install simpleeval==1.0.8 msgspec rule-engine==5.1.0 cel-python==0.5.0
    PYTHONPATH=. build/compare/bin/python bench/condition_libraries.py

Every library evaluates the same shipped conditions on the same values in one run; times
are reported as a ratio to Rapport's conditions (rules/expressions.py: a closed language,
checked at load time, run as closures). The last line is one JSON object.
Libraries that are not installed are skipped with a note.
"""

from __future__ import annotations

import importlib
import json
import timeit
from collections.abc import Callable
from typing import Any

from rules.expressions import ConditionError, compile_condition
from rules.profile_view import SAMPLE_VIEW

#: (label, Python-syntax source, CEL source, values where it runs to the end)
CONDITIONS: list[tuple[str, str, str]] = [
    (
        "browse_abandonment trigger",
        "cart_items == 0 and is_known and views_30d >= 3",
        "cart_items == 0 && is_known && views_30d >= 3",
    ),
    (
        "at_risk_big_spender tag",
        "net_revenue >= 500 and lifecycle == 'at_risk' and rfm_frequency >= 3",
        "net_revenue >= 500.0 && lifecycle == 'at_risk' && rfm_frequency >= 3",
    ),
]
VALUES: dict[str, Any] = {
    **SAMPLE_VIEW,
    "cart_items": 0,
    "views_30d": 5,
    "net_revenue": 900.0,
    "lifecycle": "at_risk",
}
#: The issue's example of a type error, and a misspelt name.
BAD = ['cart_value >= "x"', "cart_vlaue >= 3"]

Evaluator = Callable[[], Any]


def rapport(source: str, _: str) -> Evaluator:
    condition = compile_condition(source, SAMPLE_VIEW)
    return lambda: condition(VALUES)


def simpleeval_walk(source: str, _: str) -> Evaluator:
    simpleeval: Any = importlib.import_module("simpleeval")
    evaluator = simpleeval.SimpleEval(names=VALUES, functions={})
    tree = evaluator.parse(source)
    return lambda: evaluator.eval(source, previously_parsed=tree)


def rule_engine(source: str, _: str) -> Evaluator:
    module: Any = importlib.import_module("rule_engine")
    rule = module.Rule(source.replace("'", '"'))
    return lambda: rule.matches(VALUES)


def cel_python(_: str, source: str) -> Evaluator:
    celpy: Any = importlib.import_module("celpy")
    environment = celpy.Environment()
    program = environment.program(environment.compile(source))
    activation = {
        name: celpy.json_to_cel(value) for name, value in VALUES.items() if name != "tags"
    }
    return lambda: program.evaluate(activation)


LIBRARIES: list[tuple[str, Callable[[str, str], Evaluator]]] = [
    ("rapport (checked language, closures)", rapport),
    ("simpleeval, walking the tree", simpleeval_walk),
    ("rule-engine", rule_engine),
    ("cel-python", cel_python),
]


def _per_call_us(run: Evaluator) -> float:
    number, _ = timeit.Timer(run).autorange()
    return min(timeit.repeat(run, number=number, repeat=5)) / number * 1e6


def speed() -> dict[str, dict[str, float]]:
    figures: dict[str, dict[str, float]] = {}
    for label, source, cel in CONDITIONS:
        print(f"\n{label}: {source}")
        baseline: float | None = None
        for name, build in LIBRARIES:
            try:
                run = build(source, cel)
            except ModuleNotFoundError as missing:
                print(f"  {name:42} skipped ({missing.name} not installed)")
                continue
            assert bool(run()), f"{name} must find the condition true"
            micro = _per_call_us(run)
            baseline = baseline or micro
            print(f"  {name:42} {micro:8.2f} µs   {micro / baseline:6.1f}x")
            figures.setdefault(label, {})[name] = round(micro, 3)
    return figures


def errors() -> None:
    print("\nErrors a marketer sees at load time:")
    for source in BAD:
        print(f"\n  {source}")
        try:
            compile_condition(source, SAMPLE_VIEW)
        except ConditionError as error:
            print(f"    rapport     : {error}")
        try:
            module: Any = importlib.import_module("rule_engine")
            types = {"cart_value": module.DataType.FLOAT}
            context = module.Context(type_resolver=module.type_resolver_from_dict(types))
            module.Rule(source, context=context)
            print("    rule-engine : accepted")
        except ModuleNotFoundError:
            pass
        except Exception as error:
            print(f"    rule-engine : {type(error).__name__}: {error}")
        try:
            celpy: Any = importlib.import_module("celpy")
            environment = celpy.Environment()
            environment.compile(source)
            print("    cel-python  : accepted at compile time; fails only when evaluated")
        except ModuleNotFoundError:
            pass
        except Exception as error:
            print(f"    cel-python  : {type(error).__name__}: {str(error)[:100]}")


if __name__ == "__main__":
    measured = speed()
    errors()
    print(json.dumps({"bench": "condition_libraries", "us_per_evaluation": measured}))
