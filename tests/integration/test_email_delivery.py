"""Email actions delivered over SMTP to a real mail server on loopback (aiosmtpd), and read
back as the recipient's mail system got them."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import msgspec
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from engine import Engine, EngineConfig
from rules.actions import Action
from rules.loader import DEFAULT_RULES_DIR, load_rules
from state.policy import PrivacyPolicy, ProfilePolicy
from state.stores import MemoryProfileStore
from streams.delivery import Delivery, Outcome
from streams.settings import DeliverySettings, SmtpAdapter
from tests.builders import added, at, event
from tests.servers import free_port

pytestmark = pytest.mark.integration


@dataclass
class Mailbox:
    """An SMTP server's handler: answers RCPT with ``rcpt_answers`` in turn (the last for
    ever) and keeps every message it accepts."""

    rcpt_answers: list[str] = field(default_factory=lambda: ["250 OK"])
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    tries: int = 0

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        self.tries += 1
        answer = self.rcpt_answers[min(self.tries, len(self.rcpt_answers)) - 1]
        if answer.startswith("250"):
            envelope.rcpt_tos.append(address)
        return answer

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.original_content or b""
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


@dataclass
class DeadLetters:
    records: list[tuple[bytes, str, str, int]] = field(default_factory=list)

    async def __call__(self, raw: bytes, reason: str, detail: str, attempts: int) -> None:
        self.records.append((raw, reason, detail, attempts))


def _reminder(locale: str | None = None) -> Action:
    """The cart reminder the shipped rules send c1, addressed (contacts kept)."""
    policy = ProfilePolicy(privacy=PrivacyPolicy(keep_contacts=True))
    engine = Engine(
        MemoryProfileStore(),
        load_rules(DEFAULT_RULES_DIR),
        policy,
        EngineConfig(allowed_lateness_seconds=0),
    )
    traits: dict[str, Any] = {"email": "ada@example.com"}
    if locale is not None:
        traits["locale"] = locale
    outputs: list[object] = []
    for item in (
        event("customer.registered", when=at(), **traits),
        event("consent.updated", when=at(0, 0, 1), channel="email", granted=True),
        added("k1", "p1", price=30.0, quantity=2, name="Trail Runner", when=at(0, 1)),
    ):
        outputs += engine.apply(item)
    outputs += engine.advance(at(0, 3).timestamp())
    sends = [o for o in outputs if isinstance(o, Action) and o.status == "sent"]
    assert sends, outputs
    return sends[0]


def _run(
    mailbox: Mailbox, scenario: Callable[[Delivery, DeadLetters], Awaitable[Any]]
) -> tuple[DeadLetters, Any]:
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    dead = DeadLetters()
    try:
        settings = DeliverySettings(
            adapters={
                "mail": SmtpAdapter(
                    host="127.0.0.1",
                    port=port,
                    security="none",
                    from_address="news@shop.example",
                    from_name="Rapport Shop",
                )
            },
            channels={"email": "mail"},
            default_adapter="mail",
            max_attempts=3,
        )

        async def main() -> Any:
            delivery = Delivery(settings, None, environ={})
            delivery.backoff = (0.01, 0.05)
            try:
                return await scenario(delivery, dead)
            finally:
                await delivery.close()

        return dead, asyncio.run(main())
    finally:
        controller.stop()


def test_a_reminder_arrives_as_a_mime_email_with_unsubscribe_and_a_stable_message_id() -> None:
    action, mailbox = _reminder(), Mailbox()
    raw = msgspec.json.encode(action)

    async def scenario(delivery: Delivery, dead: DeadLetters) -> Outcome:
        return await delivery.handle(raw, dead)

    dead, outcome = _run(mailbox, scenario)
    assert outcome.status == "delivered", outcome
    assert not dead.records
    assert mailbox.envelopes == [("news@shop.example", ["ada@example.com"])]
    (mail,) = mailbox.messages
    assert mail["Message-ID"] == f"<{action.action_id}@shop.example>"
    assert mail["To"] == "ada@example.com"
    assert str(mail["From"]) == "Rapport Shop <news@shop.example>"
    assert mail["Subject"] == "You left 2 items in your cart"
    assert action.message is not None
    assert mail["List-Unsubscribe"].strip() == f"<{action.message.unsubscribe}>"  # may be folded
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail["X-Rapport-Action"] == action.action_id
    text = mail.get_body(preferencelist=("plain",))
    html = mail.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    assert "- Trail Runner x 2: £60.00" in text.get_content()
    assert "<td>Trail Runner</td>" in html.get_content()


def test_a_chinese_customer_gets_the_chinese_mail_encoded_for_transport() -> None:
    action, mailbox = _reminder(locale="zh-CN"), Mailbox()

    async def scenario(delivery: Delivery, dead: DeadLetters) -> Outcome:
        return await delivery.handle(msgspec.json.encode(action), dead)

    _, outcome = _run(mailbox, scenario)
    assert outcome.status == "delivered"
    (mail,) = mailbox.messages
    assert mail["Subject"] == "您的购物车里还有 2 件商品"
    assert mail["Content-Language"] == "zh-CN"
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    assert "跑" not in body.get_content()  # the product's name is English: only text moved
    assert "退订" in body.get_content()


def test_a_greylisted_recipient_is_tried_again_and_a_refused_one_is_dead_lettered() -> None:
    action = _reminder()
    greylisted = Mailbox(rcpt_answers=["451 4.7.1 Try again later", "250 OK"])

    async def once(delivery: Delivery, dead: DeadLetters) -> Outcome:
        return await delivery.handle(msgspec.json.encode(action), dead)

    _, outcome = _run(greylisted, once)
    assert outcome.status == "delivered"
    assert outcome.attempts == 2
    assert len(greylisted.messages) == 1
    refused = Mailbox(rcpt_answers=["550 5.1.1 No such user"])
    dead, outcome = _run(refused, once)
    assert outcome.status == "failed"
    assert outcome.attempts == 1  # a 5xx is final: no retry
    assert refused.messages == []
    ((_, reason, detail, attempts),) = dead.records
    assert reason == "delivery_failed"
    assert "550" in detail
    assert attempts == 1


def test_an_action_without_an_address_is_dead_lettered_saying_what_to_turn_on() -> None:
    action = msgspec.structs.replace(_reminder(), address=None)

    async def once(delivery: Delivery, dead: DeadLetters) -> Outcome:
        return await delivery.handle(msgspec.json.encode(action), dead)

    mailbox = Mailbox()
    dead, outcome = _run(mailbox, once)
    assert outcome.status == "failed"
    assert "keep_contacts" in dead.records[0][2]
    assert mailbox.messages == []


def test_a_plain_smtp_server_off_loopback_is_refused_in_the_settings() -> None:
    with pytest.raises(ValueError, match="unencrypted"):
        SmtpAdapter(host="mail.example.com", security="none", from_address="a@shop.example")
