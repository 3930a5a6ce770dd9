"""Loading a rules directory into a compiled, versioned rule set.

A directory holds ``tags.yaml``, ``policies.yaml``, one file per journey in
``journeys/``, one file per message template in ``templates/`` and the points program in
``loyalty.yaml``, the service desk's ticket routing in ``routing.yaml`` with the answers it
suggests in ``solutions.yaml``. Every problem found is reported with ``file:line:col``; nothing
half-loaded is ever returned.

>>> from pathlib import Path
>>> rules = load_rules(Path(__file__).parent)
>>> "sneaker_fan" in rules.tags.ids, "cart_recovery" in rules.journeys.by_id
(True, True)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from rules.expressions import Condition
from rules.journey_compiler import compile_journey
from rules.journey_runtime import JourneyRuntime
from rules.journey_spec import STEP_KINDS, TRIGGER_KINDS, JourneySpec, PoliciesSpec
from rules.journey_steps import AwardPoints, Journey, JourneyError
from rules.loyalty_spec import LOYALTY_FILE, LoyaltySpec, compile_loyalty
from rules.message_render import Renderer
from rules.policy_compiler import Policies, compile_policies
from rules.routing import Routing, RoutingError, compile_routing
from rules.routing_spec import ROUTING_FILE, SOLUTIONS_FILE, RoutingSpec, SolutionsSpec
from rules.tags import TagFile, TagSet, TagSpecError
from rules.template_checks import check_sends, check_templates
from rules.template_compiler import TEMPLATES_DIR, MessageTemplates, load_templates
from rules.yaml_source import RuleFileError, YamlDocument, load_yaml_file, located_errors
from state.loyalty import LoyaltyProgram

DEFAULT_RULES_DIR = Path(__file__).parent
TAGS_FILE = "tags.yaml"
POLICIES_FILE = "policies.yaml"
JOURNEYS_DIR = "journeys"


@dataclass(frozen=True)
class RuleSet:
    """A loaded, validated rule directory: the tags, the journeys (with the policies) and
    a digest of the files, which every output's rules version names.

    >>> rules = load_rules(DEFAULT_RULES_DIR)
    >>> len(rules.journeys.journeys), "cart_abandoner" in rules.tags.ids, len(rules.version)
    (12, True, 12)
    >>> RuleSet.empty().journeys.journeys
    ()
    """

    tags: TagSet
    #: Short digest of the rule files' content: which rules produced an output.
    version: str
    source: str
    journeys: JourneyRuntime = field(default_factory=lambda: JourneyRuntime((), Policies.default()))
    #: The message templates; None: the directory has no ``templates/`` (sends name a
    #: template and carry no message).
    templates: MessageTemplates | None = None
    #: The points program; None: the directory has no ``loyalty.yaml`` (no ledger).
    loyalty: LoyaltyProgram | None = None
    #: Ticket routing; None: the directory has no ``routing.yaml`` (tickets are scored
    #: for sentiment but keep the category, queue and priority they came with).
    routing: Routing | None = None

    @classmethod
    def empty(cls) -> RuleSet:
        return cls(TagSet(), "empty", "(none)")

    def conditions(self) -> list[Condition]:
        """Every compiled condition, tags' first: their failures are counted on them."""
        found = [tag.condition for tag in self.tags.conditions]
        for journey in self.journeys.journeys:
            found += journey.conditions()
        if self.routing is not None:
            found += [rule.when for rule in self.routing.rules]
        return found


def load_rules(directory: Path) -> RuleSet:
    """Compile every rule file in ``directory``; raise ``RuleFileError`` listing all problems."""
    if not directory.is_dir():
        raise RuleFileError([f"{directory}: not a directory of rule files"])
    digest = hashlib.sha256()
    problems: list[str] = []
    tags = TagSet()
    tags_path = directory / TAGS_FILE
    if tags_path.exists():
        digest.update(tags_path.read_bytes())
        try:
            tags = _load_tags(tags_path)
        except RuleFileError as error:
            problems.extend(error.problems)
    policies = Policies.default()
    policies_failed = False
    policies_path = directory / POLICIES_FILE
    if policies_path.exists():
        digest.update(policies_path.read_bytes())
        try:
            policies = _load_policies(policies_path)
        except RuleFileError as error:
            problems.extend(error.problems)
            policies_failed = True
        for name, codes in sorted(policies.coupon_pools.items()):
            digest.update(name.encode() + b"\0" + "\n".join(codes).encode() + b"\0")
    journeys: list[Journey] = []
    docs: dict[str, YamlDocument] = {}
    seen: dict[str, Path] = {}
    journey_files = sorted((directory / JOURNEYS_DIR).glob("*.yaml"))
    if policies_failed and journey_files:
        # Journeys name channels, templates and pools of the policies: checking them
        # against defaults would only report mistakes that are not there.
        problems.append(
            f"{directory / JOURNEYS_DIR}: {len(journey_files)} journey file(s) not checked "
            f"until {POLICIES_FILE} loads"
        )
        journey_files = []
    for path in journey_files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
        try:
            loaded = _load_journey(path, policies, frozenset(tags.ids))
        except RuleFileError as error:
            problems.extend(error.problems)
            continue
        if loaded is None:
            continue
        journey, doc = loaded
        if journey.id in seen:
            problems.append(
                f"{path}:1:1: id: duplicate journey id {journey.id!r} (also in {seen[journey.id]})"
            )
            continue
        seen[journey.id] = path
        docs[journey.id] = doc
        journeys.append(journey)
    templates, renderer = None, None
    for path in sorted((directory / TEMPLATES_DIR).glob("*.yaml")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    try:
        templates = load_templates(directory)
    except RuleFileError as error:
        problems.extend(error.problems)
    if templates is not None and not policies_failed:
        problems.extend(check_templates(templates, policies))
        journeys, found = check_sends(journeys, docs, templates, policies)
        problems.extend(found)
        renderer = Renderer(templates, policies.messages, policies.operator_rules)
    loyalty = None
    loyalty_path = directory / LOYALTY_FILE
    if loyalty_path.exists():
        digest.update(loyalty_path.read_bytes())
        try:
            loyalty = _load_loyalty(loyalty_path)
        except RuleFileError as error:
            problems.extend(error.problems)
    if loyalty is None and not problems:
        problems.extend(_points_without_program(journeys, docs))
    routing = None
    if (directory / ROUTING_FILE).exists():
        for name in (ROUTING_FILE, SOLUTIONS_FILE):
            if (directory / name).exists():
                digest.update(name.encode() + b"\0" + (directory / name).read_bytes())
        try:
            routing = _load_routing(directory)
        except RuleFileError as error:
            problems.extend(error.problems)
    if problems:
        raise RuleFileError(problems)
    return RuleSet(
        tags=tags,
        version=digest.hexdigest()[:12],
        source=str(directory),
        journeys=JourneyRuntime(tuple(journeys), policies, renderer, loyalty),
        templates=templates,
        loyalty=loyalty,
        routing=routing,
    )


def _points_without_program(journeys: list[Journey], docs: dict[str, YamlDocument]) -> list[str]:
    """A ``points`` step with no loyalty.yaml to give from: an error at the step."""
    return [
        f"{docs[journey.id].locate(['steps', index])}: steps.{index}.points: a points step "
        f"needs a points program ({LOYALTY_FILE} in the rules folder)"
        for journey in journeys
        for index, step in enumerate(journey.steps)
        if isinstance(step, AwardPoints)
    ]


def _load_routing(directory: Path) -> Routing:
    solutions = None
    solutions_path = directory / SOLUTIONS_FILE
    if solutions_path.exists():
        solutions_doc = load_yaml_file(solutions_path)
        try:
            solutions = SolutionsSpec.model_validate(solutions_doc.data or {})
        except ValidationError as error:
            raise RuleFileError(located_errors(solutions_doc, error)) from error
    doc = load_yaml_file(directory / ROUTING_FILE)
    try:
        spec = RoutingSpec.model_validate(doc.data or {})
    except ValidationError as error:
        raise RuleFileError(located_errors(doc, error)) from error
    try:
        routing = compile_routing(spec, solutions)
    except RoutingError as error:
        raise RuleFileError([_located(doc, error.loc, str(error))]) from error
    _place([rule.when for rule in routing.rules], doc)
    return routing


def _load_loyalty(path: Path) -> LoyaltyProgram:
    doc = load_yaml_file(path)
    try:
        spec = LoyaltySpec.model_validate(doc.data or {})
    except ValidationError as error:
        raise RuleFileError(located_errors(doc, error)) from error
    return compile_loyalty(spec)


def _load_tags(path: Path) -> TagSet:
    doc = load_yaml_file(path)
    try:
        spec = TagFile.model_validate(doc.data or {})
    except ValidationError as error:
        raise RuleFileError(located_errors(doc, error)) from error
    try:
        tags = TagSet.from_specs(spec.tags)
    except TagSpecError as error:
        raise RuleFileError([_located(doc, error.loc, str(error))]) from error
    _place([tag.condition for tag in tags.conditions], doc)
    return tags


def _load_policies(path: Path) -> Policies:
    doc = load_yaml_file(path)
    try:
        spec = PoliciesSpec.model_validate(doc.data or {})
    except ValidationError as error:
        raise RuleFileError(located_errors(doc, error)) from error
    try:
        return compile_policies(spec, base=path.parent)
    except JourneyError as error:
        raise RuleFileError([_located(doc, error.loc, str(error))]) from error


def _load_journey(
    path: Path, policies: Policies, defined_tags: frozenset[str]
) -> tuple[Journey, YamlDocument] | None:
    """The journey in ``path`` and its file, or None when it is switched off
    (``enabled: false``)."""
    doc = load_yaml_file(path)
    try:
        spec = JourneySpec.model_validate(doc.data or {})
    except ValidationError as error:
        raise RuleFileError(
            located_errors(
                doc, error, union_tags=(*STEP_KINDS, *TRIGGER_KINDS), union_fields=("trigger",)
            )
        ) from error
    if not spec.enabled:
        return None
    try:
        journey = compile_journey(spec, policies, defined_tags)
    except JourneyError as error:
        raise RuleFileError([_located(doc, error.loc, str(error))]) from error
    _place(journey.conditions(), doc)
    return journey, doc


def _place(conditions: list[Condition], doc: YamlDocument) -> None:
    """Give each condition its ``file:line:col``, for the message when it fails."""
    for condition in conditions:
        condition.where = doc.locate(condition.loc)


def _located(doc: YamlDocument, loc: tuple[str | int, ...], message: str) -> str:
    return f"{doc.locate(loc)}: {'.'.join(map(str, loc))}: {message}"
