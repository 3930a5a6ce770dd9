"""SMS actions through the Twilio adapter, against a local HTTP receiver that checks the
request the way Twilio documents it (path, basic auth, form fields)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from aiohttp import web

from rules.actions import Action, Message
from streams.delivery import Delivery, Outcome
from streams.settings import DeliverySettings, TwilioAdapter
from tests.servers import free_port

pytestmark = pytest.mark.integration
SID, TOKEN = "AC" + "0" * 32, "token-" + "t" * 26


@dataclass
class FakeTwilio:
    """Answers with ``answers`` in turn (the last for ever); keeps each form it got."""

    answers: list[tuple[int, dict[str, Any]]]
    forms: list[dict[str, str]] = field(default_factory=list)

    async def messages(self, request: web.Request) -> web.Response:
        expected = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.json_response({"code": 20003, "message": "Authenticate"}, status=401)
        if request.match_info["sid"] != SID:
            return web.json_response({"code": 20404, "message": "Not found"}, status=404)
        self.forms.append(dict(await request.post()))  # type: ignore[arg-type]
        status, body = self.answers[min(len(self.forms), len(self.answers)) - 1]
        return web.json_response(body, status=status)


@dataclass
class DeadLetters:
    records: list[tuple[bytes, str, str, int]] = field(default_factory=list)

    async def __call__(self, raw: bytes, reason: str, detail: str, attempts: int) -> None:
        self.records.append((raw, reason, detail, attempts))


def _sms(text: str, address: str | None = "+8613800138000") -> bytes:
    action = Action(
        action_id="a1",
        status="sent",
        kind="send",
        journey_id="cart_recovery",
        step=1,
        arm="main",
        profile_key="c1",
        customer_id="c1",
        entity="k1",
        trigger="e1",
        at=0.0,
        channel="sms",
        needs_consent=True,
        address=address,
        template="cart_reminder",
        message=Message(locale="zh-CN", text=text, segments=1),
    )
    return msgspec.json.encode(action)


def _run(
    twilio: FakeTwilio,
    scenario: Callable[[Delivery, DeadLetters], Awaitable[Any]],
    rate_limits: dict[str, str] | None = None,
) -> tuple[DeadLetters, Any]:
    dead = DeadLetters()

    async def main() -> Any:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", twilio.messages)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        adapter = TwilioAdapter(
            account_sid_env="SID",
            auth_token_env="TOKEN",
            sender="+441234567890",
            base_url=f"http://127.0.0.1:{port}",
            allow_http=True,
        )
        settings = DeliverySettings(
            adapters={"twilio": adapter},
            channels={"sms": "twilio"},
            default_adapter="twilio",
            max_attempts=3,
            rate_limits=rate_limits or {},
        )
        delivery = Delivery(settings, None, environ={"SID": SID, "TOKEN": TOKEN})
        delivery.backoff = (0.01, 0.05)
        try:
            return await scenario(delivery, dead)
        finally:
            await delivery.close()
            await runner.cleanup()

    return dead, asyncio.run(main())


def test_an_sms_is_posted_as_twilio_documents_it() -> None:
    twilio = FakeTwilio([(201, {"sid": "SM1", "status": "queued"})])
    text = "【Rapport商城】您的购物车还在等您 回T退订"

    async def once(delivery: Delivery, dead: DeadLetters) -> Outcome:
        return await delivery.handle(_sms(text), dead)

    dead, outcome = _run(twilio, once)
    assert outcome.status == "delivered"
    assert twilio.forms == [{"To": "+8613800138000", "From": "+441234567890", "Body": text}]
    assert not dead.records


def test_a_rate_limited_sms_is_tried_again_and_an_invalid_number_is_dead_lettered() -> None:
    limited = FakeTwilio([(429, {"code": 20429, "message": "Too Many Requests"}), (201, {})])

    async def once(delivery: Delivery, dead: DeadLetters) -> Outcome:
        return await delivery.handle(_sms("hello"), dead)

    _, outcome = _run(limited, once)
    assert outcome.status == "delivered"
    assert outcome.attempts == 2
    invalid = FakeTwilio([(400, {"code": 21211, "message": "Invalid 'To' Phone Number"})])
    dead, outcome = _run(invalid, once)
    assert outcome.status == "failed"
    assert outcome.attempts == 1
    ((_, reason, detail, _),) = dead.records
    assert reason == "delivery_failed"
    assert "21211" in detail


def test_an_sms_without_a_number_is_dead_lettered_and_never_posted() -> None:
    twilio = FakeTwilio([(201, {})])

    async def once(delivery: Delivery, dead: DeadLetters) -> Outcome:
        return await delivery.handle(_sms("hello", address=None), dead)

    dead, outcome = _run(twilio, once)
    assert outcome.status == "failed"
    assert "keep_contacts" in dead.records[0][2]
    assert twilio.forms == []


def test_an_adapters_rate_limit_spaces_its_tries_and_every_try_is_counted() -> None:
    twilio = FakeTwilio([(201, {})])

    async def fifteen(delivery: Delivery, dead: DeadLetters) -> tuple[float, dict[str, int]]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.gather(*(delivery.handle(_sms(f"m{n}"), dead) for n in range(15)))
        return loop.time() - started, dict(delivery.attempts)

    _, (seconds, attempts) = _run(twilio, fifteen, rate_limits={"twilio": "5/s"})
    assert len(twilio.forms) == 15
    assert attempts == {"twilio": 15}
    # a bucket of 5 per second: the first 5 at once, the other 10 over about 2 seconds
    assert seconds >= 1.5, seconds


def test_a_rate_that_is_not_one_is_refused_with_the_form_to_use() -> None:
    with pytest.raises(ValueError, match="write it as 100/s"):
        DeliverySettings(rate_limits={"log": "fast"})
