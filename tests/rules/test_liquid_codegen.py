"""The compiled templates give python-liquid's output: the interpreter is the oracle, on
every shipped template, on the language's corners and on generated templates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from liquid import Environment

from rules.loader import DEFAULT_RULES_DIR, load_rules
from rules.message_context import DEVELOPMENT_LINKS, MessageNames
from rules.message_render import CompiledPart
from rules.template_checks import sample_profile
from rules.template_env import FILTERS, template_environment
from state.profile import Profile, Stamped

HTML = template_environment(html=True)
TEXT = template_environment(html=False)


def _outcome(part: CompiledPart, names: Mapping[str, Any]) -> tuple[str, str]:
    try:
        return ("text", part.render(names))
    except Exception as error:
        return (type(error).__name__, str(error))


def _both(env: Environment, source: str, names: Mapping[str, Any]) -> tuple[CompiledPart, Any, Any]:
    template = env.from_string(source)
    compiled = CompiledPart(template, FILTERS.values())
    interpreted = CompiledPart(template, FILTERS.values(), compile=False)
    return compiled, _outcome(compiled, names), _outcome(interpreted, names)


NAMES: dict[str, Any] = {
    "a": "Tom & <Jerry>",
    "n": 3,
    "f": 2.5,
    "t": True,
    "no": False,
    "z": None,
    "s": "a,b,c",
    "e": [],
    "nums": [3, 1, 2],
    "items": [
        {"name": "Shoe <b>", "quantity": 2, "price": 19.99, "tags": ["x", "y"]},
        {"name": None, "quantity": 1, "price": 5.0, "tags": []},
    ],
    "d": {"x": "ex", "y": 0, "size": 7, "inner": {"deep": "bottom"}},
    "locale": "en",
    "currency": "GBP",
    "time_zone": "Europe/London",
}

CORNERS = [
    "plain text only",
    "{{ a }}|{{ n }}|{{ f }}|{{ t }}|{{ no }}|{{ z }}|{{ nums }}|{{ e }}|{{ d.inner.deep }}",
    "{{ items.size }} {{ items.first.name }} {{ items.last.price }} {{ d.size }} {{ s.size }}",
    "{{ items[0].name }} {{ items[1].quantity }} {{ nums[5] }} {{ s[0] }}",
    "{{ a | upcase }} {{ a | append: ' & co' }} {{ 'x<y' | prepend: a }} {{ a | escape }}",
    "{{ s | split: ',' | join: '+' }} {{ nums | sort | first }} {{ f | times: 2 | round: 1 }}",
    "{{ items.first.name | default: 'none' }} {{ z | default: 'nil' }} {{ no | default: 'f', allow_false: true }}",
    "{{ f | money }} {{ n | percent }} {{ 0 | datetime: 'short' }} {{ 86400 | local_date: 'long' }}",
    "{% if t %}yes{% else %}no{% endif %}{% unless z %}-u{% endunless %}",
    "{% if z %}1{% elsif no %}2{% elsif n > 2 %}3{% else %}4{% endif %}",
    "{% unless t %}1{% elsif n == 3 %}2{% else %}3{% endunless %}",
    "{% if n == 3.0 and f < 3 or z %}a{% endif %}{% if t and no %}b{% endif %}{% if 1 == true %}c{% endif %}",
    "{% if s contains 'b' %}s{% endif %}{% if nums contains 2 %}n{% endif %}{% if z contains 1 %}z{% endif %}",
    "{% if a != 'x' %}ne{% endif %}{% if n >= 3 %}ge{% endif %}{% if n <= 2 %}le{% endif %}",
    "{% if e == empty %}empty{% endif %}{% if a == blank %}blank{% endif %}",
    "{% for i in items %}[{{ i.name }}:{{ i.quantity | times: i.price }}]{% endfor %}",
    "{% for i in e %}x{% else %}nothing{% endfor %}",
    "{% for i in items %}{% for i in i.tags %}{{ i }}{% endfor %};{% endfor %}{{ i }}",
    "{% for i in items %}{{ forloop.index }}/{{ forloop.length }}{% endfor %}",
    "{% for i in nums limit: 2 %}{{ i }}{% endfor %}{% for i in nums reversed %}{{ i }}{% endfor %}",
    "{% for k in d %}{{ k }}{% endfor %}|{% for c in s %}{{ c }}{% endfor %}|{% for r in (1..3) %}{{ r }}{% endfor %}",
    "{% for i in nums %}{% if i == 1 %}{% break %}{% endif %}{{ i }}{% endfor %}",
    "{% assign x = a | downcase %}{{ x }}{% capture y %}{{ n }}!{% endcapture %}{{ y }}",
    "{% case n %}{% when 3 %}three{% else %}other{% endcase %}",
    "{%- if t -%}   trimmed   {%- endif -%}  {{- a -}}  ",
    "{% if t %}   \n   {% endif %}x{% for i in nums %}  {% endfor %}y",
    "{% comment %}hidden {{ a }}{% endcomment %}shown{% raw %}{{ a }}{% endraw %}",
    "{% echo a | upcase %}{{ 'lit' }}{{ 1.50 }}{{ nil }}{{ true }}",
    "{{ missing }}",
    "{{ d.missing }}",
    "{{ z.x }}",
    "{{ a | no_such_filter }}",
    "{{ a | plus: 1 }}",
    "{% if a < 3 %}x{% endif %}",
    "{{ a | money }}",
    "{% for i in n %}x{% endfor %}",
]


@pytest.mark.parametrize("env", [TEXT, HTML], ids=["text", "html"])
@pytest.mark.parametrize("source", CORNERS)
def test_a_corner_of_the_language_renders_as_the_interpreter_renders_it(
    env: Environment, source: str
) -> None:
    _, compiled, interpreted = _both(env, source, NAMES)
    assert compiled == interpreted


def test_the_common_statements_are_compiled_and_the_rest_interpreted() -> None:
    compiled = [_both(TEXT, source, NAMES)[0].compiled for source in CORNERS]
    by_source = dict(zip(CORNERS, compiled, strict=True))
    assert by_source[
        "{% for i in items %}[{{ i.name }}:{{ i.quantity | times: i.price }}]{% endfor %}"
    ]
    assert by_source["{% if z %}1{% elsif no %}2{% elsif n > 2 %}3{% else %}4{% endif %}"]
    assert not by_source["{% for i in items %}{{ forloop.index }}/{{ forloop.length }}{% endfor %}"]
    assert not by_source["{% case n %}{% when 3 %}three{% else %}other{% endcase %}"]


def test_a_render_the_compiled_path_cannot_decide_is_handed_to_the_interpreter() -> None:
    part, compiled, interpreted = _both(TEXT, "{{ d.missing }}", NAMES)
    assert part.compiled
    assert part.fallbacks == 1
    assert compiled == interpreted
    assert compiled[0] != "text"


def test_the_loop_limit_counts_nested_loops_as_the_interpreter_does() -> None:
    names = {"rows": [list(range(40))] * 40}  # 40 x 40 = 1,600 iterations > 1,000
    part, compiled, interpreted = _both(
        TEXT, "{% for r in rows %}{% for c in r %}.{% endfor %}{% endfor %}", names
    )
    assert part.compiled
    assert compiled == interpreted
    assert "loop iteration limit" in compiled[1]
    within = {"rows": [list(range(30))] * 30}
    assert _both(TEXT, "{% for r in rows %}{% for c in r %}.{% endfor %}{% endfor %}", within)[
        1
    ] == (
        "text",
        "." * 900,
    )


def test_output_over_the_limit_is_stopped_during_the_loop_not_after() -> None:
    body = "x" * 5_000
    names = {"items": list(range(1_000))}  # 5 MB if nothing stopped it
    part, compiled, interpreted = _both(TEXT, f"{{% for i in items %}}{body}{{% endfor %}}", names)
    assert part.compiled
    assert compiled == interpreted
    assert compiled[0] == "OutputStreamLimitError"


#: What the shipped sends put in their payloads.
PAYLOAD = {"cart_id": "k1", "cart_value": 71.5, "category": "shoes & socks", "order_id": "o1"}
PAYLOAD |= {"ticket_id": "t1", "priority": "high", "topic": "delivery", "tier": "gold"}
PAYLOAD |= {"net_revenue": 1200.0, "days_since_last_order": 47}
PAYLOAD |= {"next_tier": "gold", "spend_to_next_tier": 120.0}
PAYLOAD |= {"queue": "refunds", "sentiment": -0.72, "language": "zh-CN", "csat": 2}


def _shipped_names(profile: Profile, locale: str, channel: str) -> Mapping[str, Any]:
    rules = load_rules(DEFAULT_RULES_DIR)
    assert rules.journeys.mover.renderer is not None
    return MessageNames(
        profile,
        entity_kind="cart_id",
        entity=next(iter(profile.carts), None),
        channel=channel,
        journey_id="j",
        payload=PAYLOAD,
        event={"cart_id": "k1", "points": 300, "expires_at": 1_800_000_000.0},
        coupon={"code": "C-1", "percent": 10, "amount": None, "valid_until": 1_800_000_000.0},
        locale=locale,
        settings=rules.journeys.mover.renderer.settings,
        links=DEVELOPMENT_LINKS,
    )


def test_every_shipped_template_is_compiled_and_renders_as_the_interpreter_does() -> None:
    rules = load_rules(DEFAULT_RULES_DIR)
    assert rules.templates is not None
    awkward = sample_profile()
    awkward.traits["first_name"] = Stamped('<Zoë> & "Co"', 0.0, "test")
    profiles = [sample_profile(), awkward, Profile(key="c", customer_id="c")]
    checked = 0
    for (template, channel), compiled in rules.templates.by_key.items():
        for locale, parts in compiled.locales.items():
            for name, part in parts.items():
                fast = CompiledPart(part, FILTERS.values())
                slow = CompiledPart(part, FILTERS.values(), compile=False)
                assert fast.compiled, f"{template} {channel} {locale} {name} is interpreted"
                for profile in profiles:
                    names = _shipped_names(profile, locale, channel)
                    assert _outcome(fast, names) == _outcome(slow, names), (template, name)
                assert fast.fallbacks == 0, f"{template} {channel} {locale} {name} fell back"
                checked += 1
    assert checked > 50


# -- generated templates ------------------------------------------------------------------

PATHS = [
    "a",
    "n",
    "f",
    "t",
    "no",
    "z",
    "s",
    "e",
    "nums",
    "items",
    "d.x",
    "d.y",
    "d.size",
    "items.first.name",
    "items.size",
    "items[0].price",
    "s.size",
    "d.inner.deep",
    "missing",
    "z.x",
    "nums.last",
]
LITERALS = ["1", "2.5", "'b'", "'<&>'", "true", "false", "nil", "empty"]
FILTER_CALLS = [
    "upcase",
    "size",
    "default: 'x'",
    "plus: 1",
    "append: '<&>'",
    "join: ','",
    "first",
    "round: 1",
    "money",
    "escape",
    "strip",
    "times: 2",
    "downcase",
    "default: 0, allow_false: true",
    "split: ','",
    "percent",
]
OPERATORS = ["==", "!=", "<", ">", "<=", ">=", "contains"]
TEXTS = ["x", " ", "\n", "<p>", "&amp;", "é"]


def _expressions() -> st.SearchStrategy[str]:
    atom = st.sampled_from(PATHS + LITERALS)
    return st.tuples(atom, st.lists(st.sampled_from(FILTER_CALLS), max_size=2)).map(
        lambda pair: " | ".join([pair[0], *pair[1]])
    )


def _conditions() -> st.SearchStrategy[str]:
    atom = st.sampled_from(PATHS + LITERALS)
    comparison = st.tuples(atom, st.sampled_from(OPERATORS), atom).map(" ".join)
    simple = st.one_of(atom, comparison)
    return st.one_of(
        simple,
        st.tuples(simple, st.sampled_from(["and", "or"]), simple).map(" ".join),
    )


def _templates() -> st.SearchStrategy[str]:
    leaf = st.one_of(
        st.sampled_from(TEXTS),
        _expressions().map(lambda e: "{{ " + e + " }}"),
        st.sampled_from(["{{ i }}", "{{ i.name }}", "{{ i | size }}"]),
    )

    def blocks(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        body = st.lists(children, max_size=3).map("".join)
        conditional = st.tuples(
            st.sampled_from(["if", "unless"]),
            _conditions(),
            body,
            st.lists(st.tuples(_conditions(), body), max_size=1),
            st.one_of(st.none(), body),
        ).map(
            lambda parts: (
                "{% "
                + parts[0]
                + " "
                + parts[1]
                + " %}"
                + parts[2]
                + "".join("{% elsif " + c + " %}" + b for c, b in parts[3])
                + ("" if parts[4] is None else "{% else %}" + parts[4])
                + "{% end"
                + parts[0]
                + " %}"
            )
        )
        loop = st.tuples(
            st.sampled_from(["items", "nums", "e", "d", "s", "n", "items.first.tags", "z"]),
            body,
            st.one_of(st.none(), body),
        ).map(
            lambda parts: (
                "{% for i in "
                + parts[0]
                + " %}"
                + parts[1]
                + ("" if parts[2] is None else "{% else %}" + parts[2])
                + "{% endfor %}"
            )
        )
        return st.one_of(conditional, loop)

    return st.lists(st.recursive(leaf, blocks, max_leaves=12), min_size=1, max_size=3).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=_templates(), html=st.booleans())
def test_a_generated_template_renders_as_the_interpreter_renders_it(
    source: str, html: bool
) -> None:
    env = HTML if html else TEXT
    try:
        env.from_string(source)
    except Exception:
        return
    _, compiled, interpreted = _both(env, source, NAMES)
    assert compiled == interpreted, source


def test_nothing_a_template_holds_becomes_code() -> None:
    hostile = '"); __import__("os").system("echo owned") #'
    names = {"d": {hostile: "v", "k": hostile}, "items": [hostile]}
    source = (
        f"{hostile}{{{{ d['{hostile}'] }}}}{{{{ '{hostile}' | append: d.k }}}}"
        "{% for owned_name in items %}{{ owned_name | default: 'x', allow_false: true }}{% endfor %}"
    )
    part, compiled, interpreted = _both(TEXT, source, names)
    assert part.compiled
    assert compiled == interpreted
    assert part.source is not None
    assert "os" not in part.source.replace("pos", "")
    assert "owned" not in part.source
    assert "allow_false" not in part.source  # a keyword's name is a constant too


def test_a_part_too_deep_for_python_is_left_to_the_interpreter() -> None:
    names: dict[str, Any] = {"d": {}}
    deep = "d" + ".k" * 400
    part, compiled, interpreted = _both(TEXT, "{{ " + deep + " }}", names)
    assert not part.compiled
    assert compiled == interpreted
