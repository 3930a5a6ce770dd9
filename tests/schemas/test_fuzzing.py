"""Fuzzing the edges that read outside input (issue 7): the event decoder, the Segment
adapter and the rule loader. No input may raise; every rejection says why.

Inputs are random bytes, random JSON, and valid records with one field replaced by a
random value or removed (the mutations that reach past the first checks).
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings, strategies as st
from ruamel.yaml import YAML

from rules.loader import DEFAULT_RULES_DIR, RuleSet, load_rules
from rules.yaml_source import RuleFileError
from schemas.decode import DEAD_LETTER_REASONS, DeadLetter, Ignored, PartialEvent, decode_event
from schemas.events import Event
from schemas.limits import DEFAULT_MAX_RECORD_BYTES
from schemas.segment import decode_segment
from streams.generator import GeneratorConfig, generate_stream
from streams.sources.segment import read_segment

LATEST = datetime(2027, 1, 1, tzinfo=UTC)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)

#: One valid record of every event kind, from the generator.
VALID: list[dict[str, Any]] = []
for _line in generate_stream(GeneratorConfig(customers=40, days=20, seed=3)):
    _record = orjson.loads(_line)
    if _record["type"] not in {r["type"] for r in VALID}:
        VALID.append(_record)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside nested dicts and lists."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, records: list[dict[str, Any]]) -> dict[str, Any]:
    """A valid record with one value replaced by a random one, or removed."""
    record = orjson.loads(orjson.dumps(draw(st.sampled_from(records))))
    path = draw(st.sampled_from(_paths(record)))
    parent = record
    for step in path[:-1]:
        parent = parent[step]
    if draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(json_values)
    return record  # type: ignore[no-any-return]


def _check_letter(letter: DeadLetter, raw: bytes) -> None:
    assert letter.reason in DEAD_LETTER_REASONS
    assert letter.detail.strip()
    kept = letter.raw.encode() if letter.raw_encoding == "utf-8" else base64.b64decode(letter.raw)
    assert kept == raw  # nothing lost: the record is kept whole


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()  # stdlib: integers beyond 64 bits too


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_decode_to_an_event_or_a_dead_letter_with_a_reason(raw: bytes) -> None:
    result = decode_event(raw, source="fuzz", latest_allowed=LATEST)
    if isinstance(result, DeadLetter):
        _check_letter(result, raw)
    else:
        assert isinstance(result, Event)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_any_json_decodes_to_an_event_or_a_dead_letter_with_a_reason(value: Any) -> None:
    raw = _dumps(value)
    result = decode_event(raw, source="fuzz", latest_allowed=LATEST)
    assert isinstance(result, DeadLetter)  # no random value is a whole valid event
    _check_letter(result, raw)


@settings(max_examples=600, deadline=None)
@given(mutated(VALID))
def test_a_valid_event_with_one_field_broken_is_accepted_or_refused_with_a_reason(
    record: dict[str, Any],
) -> None:
    raw = _dumps(record)
    result = decode_event(raw, source="fuzz", latest_allowed=LATEST)
    if isinstance(result, DeadLetter):
        _check_letter(result, raw)


SEGMENT: list[dict[str, Any]] = [
    {
        "type": "track",
        "event": name,
        "messageId": "m1",
        "userId": "u1",
        "anonymousId": "a1",
        "timestamp": "2026-02-01T09:00:00Z",
        "properties": properties,
    }
    for name, properties in [
        ("Product Viewed", {"product_id": "p1", "category": "shoes", "price": 40}),
        ("Product Added", {"cart_id": "k1", "product_id": "p1", "quantity": 2, "price": 40}),
        ("Checkout Started", {"cart_id": "k1", "value": 80}),
        (
            "Order Completed",
            {"order_id": "o1", "total": 80, "products": [{"product_id": "p1", "price": 40}]},
        ),
        ("Order Refunded", {"order_id": "o1", "total": 40}),
    ]
] + [
    {
        "type": "identify",
        "messageId": "m2",
        "userId": "u1",
        "anonymousId": "a1",
        "timestamp": "2026-02-01T09:00:00Z",
        "traits": {"email": "a@example.com", "first_name": "Ana"},
    }
]


@settings(max_examples=500, deadline=None)
@given(st.lists(mutated(SEGMENT) | json_values, min_size=1, max_size=5))
def test_any_segment_line_maps_to_events_or_dead_letters_with_a_reason(values: list[Any]) -> None:
    lines = [_dumps(value) for value in values]
    stream = io.BytesIO(b"\n".join(lines) + b"\n")
    results = list(read_segment(stream, "fuzz", LATEST, DEFAULT_MAX_RECORD_BYTES))
    for result in results:
        if isinstance(result, DeadLetter):
            assert result.reason in DEAD_LETTER_REASONS
            assert result.detail.strip()
            assert 1 <= result.position <= len(lines)
        elif not isinstance(result, Ignored):
            assert isinstance(result, Event)


_JOURNEYS = sorted((DEFAULT_RULES_DIR / "journeys").glob("*.yaml"))


@st.composite
def broken_journey(draw: st.DrawFn) -> tuple[str, str]:
    """(file name, text): a shipped journey with one value replaced or removed, or noise."""
    path = draw(st.sampled_from(_JOURNEYS))
    if draw(st.integers(0, 4)) == 0:
        return path.name, draw(st.text(max_size=200))
    document = YAML(typ="safe").load(path.read_text())
    target = draw(st.sampled_from(_paths(document)))
    parent = document
    for step in target[:-1]:
        parent = parent[step]
    if draw(st.booleans()) and isinstance(parent, dict):
        del parent[target[-1]]
    else:
        parent[target[-1]] = draw(json_values)
    out = io.StringIO()
    YAML(typ="safe").dump(document, out)
    return path.name, out.getvalue()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(broken_journey())
def test_a_broken_journey_file_loads_or_is_refused_naming_the_file(case: tuple[str, str]) -> None:
    name, text = case
    with tempfile.TemporaryDirectory() as folder:
        rules = Path(folder) / "rules"
        shutil.copytree(DEFAULT_RULES_DIR, rules)
        (rules / "journeys" / name).write_text(text)
        loaded = _load(rules)
    if isinstance(loaded, RuleFileError):
        assert loaded.problems
        assert all(problem.strip() for problem in loaded.problems)
        assert any(name in problem for problem in loaded.problems), loaded.problems
    else:
        assert isinstance(loaded, RuleSet)


def _load(rules: Path) -> RuleSet | RuleFileError:
    try:
        return load_rules(rules)
    except RuleFileError as error:
        return error


def _string_values(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    return [path for path in _paths(value) if isinstance(_at(value, path), str)]


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


_MARK = "\u2063fuzz\u2063"  # a marker no generated record contains


@st.composite
def hostile_inside(draw: st.DrawFn) -> bytes:
    """A valid record with arbitrary bytes spliced inside one of its string values, and
    nesting of random depth (up to well past every limit) in a property Rapport does not
    read: what gets past a first check on the record's shape."""
    record = orjson.loads(orjson.dumps(draw(st.sampled_from(VALID))))
    path = draw(st.sampled_from(_string_values(record)))
    parent = _at(record, path[:-1])
    parent[path[-1]] = parent[path[-1]][: draw(st.integers(0, 8))] + _MARK
    depth = draw(st.integers(0, 1500))
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"k":', b"}")]))
    nested = opener * depth + draw(st.sampled_from([b"1", b'"x"', b"null"])) + closer * depth
    raw = orjson.dumps(record).replace(_MARK.encode(), draw(st.binary(max_size=24)))
    return raw[:-2] + b',"unread":' + nested + b"}}" if raw.endswith(b"}}") else raw


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_inside())
def test_bytes_inside_values_and_nesting_inside_unknown_properties_never_raise(
    raw: bytes,
) -> None:
    result = decode_event(raw, source="fuzz", latest_allowed=LATEST)
    if isinstance(result, PartialEvent):
        assert result.dropped.reason == "partial"
    elif isinstance(result, DeadLetter):
        _check_letter(result, raw)
    else:
        assert isinstance(result, Event)
    lines = decode_segment(raw, source="fuzz", position=1, latest_allowed=LATEST)
    assert all(isinstance(item, DeadLetter | Ignored | PartialEvent | Event) for item in lines)
