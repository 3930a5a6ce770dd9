"""JSON Schemas of the rule files, for editors (autocomplete, inline mistakes) and CI.

Generated from the pydantic models that validate the files, so they cannot disagree.
A file opts in with a first-line comment, e.g.
``# yaml-language-server: $schema=../schema/journey.schema.json``.

>>> sorted(render_rule_schemas())
['cases.schema.json', 'journey.schema.json', 'loyalty.schema.json', 'policies.schema.json', 'routing.schema.json', 'solutions.schema.json', 'tags.schema.json', 'template.schema.json']
"""

from __future__ import annotations

from pathlib import Path

import orjson
from pydantic import BaseModel

from rules.journey_spec import JourneySpec, PoliciesSpec
from rules.loyalty_spec import LoyaltySpec
from rules.routing_spec import RoutingSpec, SolutionsSpec
from rules.rule_cases import CaseFile
from rules.tags import TagFile
from rules.template_compiler import TemplateSpec

RULE_SCHEMA_DIR = Path(__file__).parent / "schema"
_MODELS: dict[str, type[BaseModel]] = {
    "tags.schema.json": TagFile,
    "journey.schema.json": JourneySpec,
    "policies.schema.json": PoliciesSpec,
    "cases.schema.json": CaseFile,
    "template.schema.json": TemplateSpec,
    "loyalty.schema.json": LoyaltySpec,
    "routing.schema.json": RoutingSpec,
    "solutions.schema.json": SolutionsSpec,
}


def render_rule_schemas() -> dict[str, bytes]:
    files = {}
    for name, model in _MODELS.items():
        schema = model.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        files[name] = (
            orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        )
    return files
