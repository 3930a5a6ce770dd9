"""JSON Schema files for producers, generated from the models (never edited by hand).

>>> files = render_schemas()
>>> "order.placed.json" in files and "events.json" in files
True
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import orjson

from schemas.events import EVENT_TYPES, Event

SCHEMA_DIR = Path(__file__).parent / "jsonschema"


def render_schemas() -> dict[str, bytes]:
    """File name → bytes: one schema per event type and ``events.json`` for the union."""
    files = {}
    for kind, cls in sorted(EVENT_TYPES.items()):
        schema = msgspec.json.schema(cls)
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["title"] = kind
        files[f"{kind}.json"] = (
            orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        )
    union = msgspec.json.schema(Event)
    union["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    union["title"] = "Rapport event"
    files["events.json"] = (
        orjson.dumps(union, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    )
    return files
