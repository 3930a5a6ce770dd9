"""Message templates: checked where they are written, rendered per customer, bounded."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine import Engine, EngineConfig
from rules.actions import Action
from rules.loader import DEFAULT_RULES_DIR, RuleSet, load_rules
from rules.message_context import UnsubscribeLinks, choose_locale
from rules.template_checks import sends_of
from rules.yaml_source import RuleFileError
from state.stores import MemoryProfileStore
from tests.builders import added, at, event

CART_REMINDER = DEFAULT_RULES_DIR / "templates" / "cart_reminder.yaml"


def _rules_with(tmp_path: Path, template: str | None = None, name: str = "cart_reminder") -> Path:
    rules = tmp_path / "rules"
    shutil.copytree(DEFAULT_RULES_DIR, rules)
    if template is not None:
        (rules / "templates" / f"{name}.yaml").write_text(template, encoding="utf-8")
    return rules


def _problems(rules: Path) -> list[str]:
    with pytest.raises(RuleFileError) as caught:
        load_rules(rules)
    return caught.value.problems


def _email(en: str, zh: str | None = None, extra: str = "") -> str:
    """A cart_reminder with only an email message."""
    zh = zh if zh is not None else en
    return (
        "id: cart_reminder\nchannels:\n  email:\n"
        f"    en:\n      subject: Hi\n      text: {en}\n{extra}"
        f"    zh-CN:\n      subject: Hi\n      text: {zh}\n"
    )


def _sends(rules: RuleSet, *events: object) -> list[Action]:
    engine = Engine(MemoryProfileStore(), rules, config=EngineConfig(allowed_lateness_seconds=0))
    outputs: list[object] = []
    for item in events:
        outputs += engine.apply(item)  # type: ignore[arg-type]
    outputs += engine.finish(at(days=3).timestamp())
    return [o for o in outputs if isinstance(o, Action) and o.kind == "send"]


def _consent() -> object:
    return event("consent.updated", when=at(), channel="email", granted=True)


def test_the_shipped_templates_compile_for_every_send_in_both_locales() -> None:
    rules = load_rules(DEFAULT_RULES_DIR)
    assert rules.templates is not None
    for journey in rules.journeys.journeys:
        for _, step, template in sends_of(journey):
            compiled = rules.templates.get(template, step.channel)
            assert compiled is not None, (journey.id, template)
            assert {"en", "zh-CN"} <= set(compiled.locales)


def test_an_unknown_name_is_refused_at_its_line_and_column_with_a_suggestion(
    tmp_path: Path,
) -> None:
    problems = _problems(_rules_with(tmp_path, _email("'Total {{ cart.valeu | money }}'")))
    path = tmp_path / "rules" / "templates" / "cart_reminder.yaml"
    # line 6: the value's quote is column 13, "Total {{ " takes 9 more
    assert any(
        p.startswith(f"{path}:6:23: channels.email.en.text: cart.valeu:") and "'value'" in p
        for p in problems
    ), problems


def test_an_unknown_filter_in_a_block_part_is_refused_where_it_is(tmp_path: Path) -> None:
    text = (
        "id: cart_reminder\nchannels:\n  email:\n    en:\n      subject: Hi\n      text: |\n"
        "        first line\n          {{ cart_value | monay }}\n"
        "    zh-CN: {subject: Hi, text: x}\n"
    )
    problems = _problems(_rules_with(tmp_path, text))
    # line 8 of the file: the block's indentation (8) + "  {{ cart_value | " (18)
    assert any(":8:27: channels.email.en.text: unknown filter 'monay'" in p for p in problems)
    assert any("did you mean 'money'" in p for p in problems)


def test_a_part_the_channel_lacks_and_a_missing_locale_are_refused(tmp_path: Path) -> None:
    text = "id: cart_reminder\nchannels:\n  email:\n    en: {subject: Hi, title: x}\n"
    problems = "\n".join(_problems(_rules_with(tmp_path / "a", text)))
    assert "email messages need a 'text' part" in problems
    assert "email messages have no 'title' part" in problems
    english_only = "id: cart_reminder\nchannels:\n  email:\n    en: {subject: Hi, text: x}\n"
    problems = "\n".join(_problems(_rules_with(tmp_path / "b", english_only)))
    assert "channels.email: no message in zh-CN; policies.yaml (messages) asks" in problems


def test_a_send_whose_template_has_no_message_for_its_channel_is_refused_in_the_journey(
    tmp_path: Path,
) -> None:
    rules = _rules_with(tmp_path)
    (rules / "templates" / "cart_coupon.yaml").unlink()
    problems = _problems(rules)
    journey = rules / "journeys" / "cart_recovery.yaml"
    assert any(
        p.startswith(f"{journey}:") and "no email message for template 'cart_coupon'" in p
        for p in problems
    ), problems


def test_templates_cannot_read_files_or_loop_without_end(tmp_path: Path) -> None:
    include = _problems(_rules_with(tmp_path / "a", _email("'{% include \"secrets\" %}'")))
    assert any("unexpected tag 'include'" in p for p in include), include
    loop = _problems(
        _rules_with(tmp_path / "b", _email("'{% for i in (1..1000000) %}x{% endfor %}'"))
    )
    assert any("loop iteration limit" in p for p in loop), loop


def test_a_template_producing_megabytes_is_stopped_at_its_limit(tmp_path: Path) -> None:
    huge = "'{% for i in (1..900) %}{{ unsubscribe_url }}{{ unsubscribe_url }}{% endfor %}'"
    problems = _problems(_rules_with(tmp_path, _email(huge)))
    assert any("output stream limit" in p for p in problems), problems


def test_a_render_that_fails_at_run_time_suppresses_the_send_with_the_reason(
    tmp_path: Path,
) -> None:
    # Validates (the sample carts hold two of a product), but a cart with 2,000 of one item
    # loops past the limit when the reminder is due.
    loops = "'{% if cart %}{% for i in (1..cart.item_count) %}*{% endfor %}{% endif %}'"
    rules = load_rules(_rules_with(tmp_path, _email(loops, extra="")))
    sends = _sends(rules, _consent(), added("k1", "p1", price=30.0, quantity=2000, when=at(0, 1)))
    assert sends[0].status == "suppressed"
    assert sends[0].reason == "template_error"
    assert sends[0].detail is not None
    assert "loop iteration limit" in sends[0].detail
    assert sends[0].message is None


def test_html_parts_escape_what_customers_and_products_bring(tmp_path: Path) -> None:
    rules = load_rules(DEFAULT_RULES_DIR)
    name = '<script>alert("x")</script>'
    sends = _sends(rules, _consent(), added("k1", "p1", price=30.0, name=name, when=at(0, 1)))
    message = sends[0].message
    assert message is not None
    assert message.html is not None
    assert message.text is not None
    assert "<script>" not in message.html
    assert "&lt;script&gt;" in message.html
    assert name in message.text  # plain text is not HTML: nothing to escape


def test_the_locale_comes_from_the_customer_with_a_language_fallback() -> None:
    rules = load_rules(DEFAULT_RULES_DIR)
    chinese = event("customer.updated", when=at(0, 0, 5), locale="zh-TW")
    sends = _sends(rules, _consent(), chinese, added("k1", "p1", price=30.0, when=at(0, 1)))
    assert sends[0].message is not None
    assert sends[0].message.locale == "zh-CN"
    assert choose_locale({"en": 1, "zh-CN": 1}, "fr-FR", "en") == "en"
    assert choose_locale({"en": 1, "zh-CN": 1}, "ZH_cn", "en") == "zh-CN"


def test_money_and_dates_follow_the_locale_and_the_time_zone() -> None:
    rules = load_rules(DEFAULT_RULES_DIR)
    traits = event("customer.updated", when=at(0, 0, 5), locale="zh-CN", time_zone="Asia/Tokyo")
    sends = _sends(rules, _consent(), traits, added("k1", "p1", price=1234.5, when=at(0, 1)))
    coupon = next(s for s in sends if s.template == "cart_coupon")
    assert coupon.message is not None
    assert coupon.message.text is not None
    assert "£1,234.50" in coupon.message.text
    # valid 48 h from the coupon's send at 2026-03-03 10:00 UTC: 2026-03-05 19:00 in Tokyo
    assert "2026/3/5 19:00" in coupon.message.text


def test_unsubscribe_links_are_signed_per_customer_and_channel() -> None:
    links = UnsubscribeLinks(b"secret")
    signature = links.signature("c1", "email")
    assert links.verify("c1", "email", signature)
    assert not links.verify("c2", "email", signature)
    assert not links.verify("c1", "sms", signature)
    assert not UnsubscribeLinks(b"other").verify("c1", "email", signature)
    sends = _sends(load_rules(DEFAULT_RULES_DIR), _consent(), added("k1", "p1", price=30.0))
    assert sends[0].message is not None
    assert sends[0].message.text is not None
    assert "https://shop.example/unsubscribe?c=c1&ch=email&s=" in sends[0].message.text


def test_a_rules_directory_without_templates_sends_names_only(tmp_path: Path) -> None:
    rules_dir = _rules_with(tmp_path)
    shutil.rmtree(rules_dir / "templates")
    rules = load_rules(rules_dir)
    assert rules.templates is None
    sends = _sends(rules, _consent(), added("k1", "p1", price=30.0))
    assert sends[0].status == "sent"
    assert sends[0].message is None


def _sms_rules(tmp_path: Path, quiet_hours: bool = False) -> RuleSet:
    """The shipped rules with cart recovery's reminder sent by SMS under Chinese operator
    rules, and no quiet hours (so the SMS send window is what holds a send)."""
    rules = _rules_with(tmp_path)
    journey = rules / "journeys" / "cart_recovery.yaml"
    text = journey.read_text(encoding="utf-8")
    journey.write_text(text.replace("channel: email", "channel: sms", 1), encoding="utf-8")
    policies = rules / "policies.yaml"
    text = policies.read_text(encoding="utf-8")
    text = text.replace(
        "    # operator_rules: {signature: Rapport商城, unsubscribe_line: 回T退订}",
        "    operator_rules: {signature: Rapport商城, unsubscribe_line: 回T退订}",
    )
    if not quiet_hours:
        start = text.index("quiet_hours:")
        end = text.index("\n\n", start)
        text = text[:start] + text[end + 2 :]
    policies.write_text(text, encoding="utf-8")
    return load_rules(rules)


def test_chinese_sms_carry_the_signature_and_the_opt_out_line_and_count_segments(
    tmp_path: Path,
) -> None:
    rules = _sms_rules(tmp_path)
    consent = event("consent.updated", when=at(), channel="sms", granted=True)
    chinese = event("customer.updated", when=at(0, 0, 5), locale="zh-CN", time_zone="Asia/Shanghai")
    sends = _sends(rules, consent, chinese, added("k1", "p1", price=30.0, when=at(0, 0, 10)))
    sms = next(s for s in sends if s.channel == "sms")
    assert sms.status == "sent"
    assert sms.message is not None
    assert sms.message.text is not None
    assert sms.message.text.startswith("【Rapport商城】")
    assert sms.message.text.count("退订") == 1  # the template's own line is kept, not doubled
    assert sms.message.segments == (
        1 if len(sms.message.text) <= 70 else -(-len(sms.message.text) // 67)
    )


def test_an_sms_due_outside_the_send_window_waits_for_it_to_open(tmp_path: Path) -> None:
    rules = _sms_rules(tmp_path)
    consent = event("consent.updated", when=at(), channel="sms", granted=True)
    # 13:30 UTC is 21:30 in Shanghai: the reminder an hour later, 22:30, is outside 08:00-22:00
    chinese = event("customer.updated", when=at(0, 0, 5), time_zone="Asia/Shanghai")
    sends = _sends(rules, consent, chinese, added("k1", "p1", price=30.0, when=at(0, 4, 30)))
    first = [s for s in sends if s.channel == "sms"]
    assert first[0].status == "deferred"
    assert first[0].reason == "send_window"
    # 08:00 in Shanghai the next morning is 00:00 UTC
    assert first[0].retry_at == at(1).replace(hour=0).timestamp()
    assert first[1].status == "sent"


def test_the_deployment_key_signs_the_links_and_a_short_one_is_refused() -> None:
    from streams.settings import EngineSettings

    settings = EngineSettings(message_key_env="SHOP_KEY")
    config = settings.engine_config({"SHOP_KEY": "k" * 40})
    assert config.message_key == b"k" * 40
    with pytest.raises(ValueError, match="at least 32 characters"):
        settings.engine_config({"SHOP_KEY": "short"})
    rules = load_rules(DEFAULT_RULES_DIR)
    engine = Engine(MemoryProfileStore(), rules, config=config)
    outputs: list[object] = []
    for item in (_consent(), added("k1", "p1", price=30.0, when=at(0, 1))):
        outputs += engine.apply(item)  # type: ignore[arg-type]
    outputs += engine.finish(at(0, 3).timestamp())
    sent = next(o for o in outputs if isinstance(o, Action) and o.status == "sent")
    assert sent.message is not None
    assert sent.message.unsubscribe is not None
    signature = sent.message.unsubscribe.rsplit("s=", 1)[1]
    assert UnsubscribeLinks(b"k" * 40).verify("c1", "email", signature)
