"""The delivery stage against a real HTTP receiver on loopback and a real Redis."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web

from state.profile import Profile, Stamped
from streams.delivery import Delivery, Outcome
from streams.redis_io import DELIVERING, RedisIO
from streams.settings import DeliverySettings, LogAdapter, RedisSettings, WebhookAdapter
from tests.servers import Server, free_port

SECRET = "test-secret-" + "s" * 32
pytestmark = pytest.mark.integration


def _action(
    action_id: str,
    status: str = "sent",
    channel: str = "email",
    profile_key: str = "c1",
    needs_consent: bool = True,
) -> bytes:
    return msgspec.json.encode(
        {
            "record": "action",
            "action_id": action_id,
            "status": status,
            "kind": "send",
            "channel": channel,
            "needs_consent": needs_consent,
            "journey_id": "cart_recovery",
            "profile_key": profile_key,
        }
    )


def _customer(key: str, **consent: bool) -> Profile:
    profile = Profile(key=key, customer_id=key)
    for channel, granted in consent.items():
        profile.consent[channel] = Stamped(granted, 1.0, f"consent-{channel}")
    return profile


@dataclass
class Receiver:
    """Answers with ``answers`` in turn (the last one for ever) and keeps what it got."""

    answers: list[int]
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.got.append((dict(request.headers), body))
        status = self.answers[min(len(self.got), len(self.answers)) - 1]
        return web.Response(status=status, text="ok" if status < 300 else "no")


@dataclass
class DeadLetters:
    records: list[tuple[bytes, str, str, int]] = field(default_factory=list)

    async def __call__(self, raw: bytes, reason: str, detail: str, attempts: int) -> None:
        self.records.append((raw, reason, detail, attempts))


Scenario = Callable[[Delivery, DeadLetters], Awaitable[Any]]


def _run(
    redis: Server | None, tmp_path: Path, answers: list[int], scenario: Scenario
) -> tuple[Receiver, DeadLetters, Any]:
    """Start a receiver, build a Delivery routing email to it and sms to a log file, run."""
    receiver, dead = Receiver(answers), DeadLetters()

    async def main() -> Any:
        app = web.Application()
        app.router.add_post("/hook", receiver.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        settings = DeliverySettings(
            adapters={
                "crm": WebhookAdapter(
                    url=f"http://127.0.0.1:{port}/hook", secret_env="HOOK", allow_http=True
                ),
                "file": LogAdapter(path=str(tmp_path / "sent.jsonl")),
            },
            channels={"email": "crm"},
            default_adapter="file",
            max_attempts=3,
        )
        claims = None
        if redis is not None:
            prefix = f"t{uuid.uuid4().hex[:8]}:"
            claims = RedisIO(RedisSettings(url=f"redis://{redis.address}/0", key_prefix=prefix))
            # c1 is in the read model, consenting to both channels the tests use.
            await claims.write_profiles([("c1", _customer("c1", email=True, sms=True))])
        delivery = Delivery(settings, claims, environ={"HOOK": SECRET})
        delivery.backoff = (0.01, 0.05)
        try:
            return await scenario(delivery, dead)
        finally:
            await delivery.close()
            if claims is not None:
                await claims.close()
            await runner.cleanup()

    return receiver, dead, asyncio.run(main())


def test_a_webhook_gets_the_action_signed_with_its_id_as_idempotency_key(
    redis: Server, tmp_path: Path
) -> None:
    async def scenario(delivery: Delivery, dead: DeadLetters) -> Outcome:
        return await delivery.handle(_action("a1"), dead)

    receiver, dead, outcome = _run(redis, tmp_path, [200], scenario)
    assert (outcome.status, outcome.attempts, dead.records) == ("delivered", 1, [])
    [(headers, body)] = receiver.got
    assert body == _action("a1")
    assert headers["Idempotency-Key"] == "a1"
    signed = headers["X-Rapport-Timestamp"].encode() + b".a1." + body
    expected = hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    assert headers["X-Rapport-Signature"] == f"v2={expected}"
    assert verify(headers, body, SECRET.encode(), now=time.time())
    forged = {**headers, "Idempotency-Key": "a1-again"}  # the same request under a new key
    assert not verify(forged, body, SECRET.encode(), now=time.time())
    assert not verify(headers, body, SECRET.encode(), now=time.time() + 3600)  # too old


def verify(headers: dict[str, str], body: bytes, secret: bytes, now: float) -> bool:
    """A receiver's check, as docs/operations.md writes it (kept in step with it)."""
    timestamp = headers["X-Rapport-Timestamp"]
    if abs(now - int(timestamp)) > 300:
        return False
    signed = f"{timestamp}.{headers['Idempotency-Key']}.".encode() + body
    expected = "v2=" + hmac.new(secret, signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-Rapport-Signature"])


def test_a_webhook_that_redirects_is_not_followed_and_the_action_dead_lettered(
    redis: Server, tmp_path: Path
) -> None:
    async def scenario(delivery: Delivery, dead: DeadLetters) -> Outcome:
        return await delivery.handle(_action("a9"), dead)

    receiver, dead, outcome = _run(redis, tmp_path, [307], scenario)
    assert (outcome.status, outcome.attempts, len(receiver.got)) == ("failed", 1, 1)
    ((_, _, detail, _),) = dead.records
    assert "redirects are not followed" in detail


def test_a_plain_http_webhook_is_refused_unless_allowed() -> None:
    with pytest.raises(ValueError, match="use https://, or set allow_http"):
        WebhookAdapter(url="http://crm.example/hook", secret_env="CRM_KEY")
    assert WebhookAdapter(url="http://127.0.0.1/hook", secret_env="K", allow_http=True).allow_http


def test_a_short_webhook_secret_is_refused_at_start() -> None:
    settings = DeliverySettings(
        adapters={"crm": WebhookAdapter(url="https://crm.example/hook", secret_env="CRM_KEY")},
        default_adapter="crm",
    )
    with pytest.raises(ValueError, match="at least 32 are needed"):
        Delivery(settings, None, environ={"CRM_KEY": "short"})


def test_a_webhook_that_fails_for_a_while_is_tried_again_until_it_answers(
    redis: Server, tmp_path: Path
) -> None:
    async def scenario(delivery: Delivery, dead: DeadLetters) -> Outcome:
        return await delivery.handle(_action("a2"), dead)

    receiver, dead, outcome = _run(redis, tmp_path, [503, 429, 200], scenario)
    assert (outcome.status, outcome.attempts, len(receiver.got), dead.records) == (
        "delivered",
        3,
        3,
        [],
    )


def test_a_webhook_that_keeps_failing_sends_the_action_to_the_dead_letters_after_n_tries(
    redis: Server, tmp_path: Path
) -> None:
    async def scenario(delivery: Delivery, dead: DeadLetters) -> tuple[Outcome, Outcome]:
        first = await delivery.handle(_action("a3"), dead)
        return first, await delivery.handle(_action("a3"), dead)  # read again: not retried

    receiver, dead, (first, again) = _run(redis, tmp_path, [500], scenario)
    assert (first.status, first.attempts, len(receiver.got)) == ("failed", 3, 3)
    [(raw, reason, detail, attempts)] = dead.records
    assert (raw, reason, attempts) == (_action("a3"), "delivery_failed", 3)
    assert detail.startswith("HTTP 500")
    assert again.status == "duplicate"


def test_a_refusal_is_not_tried_again(redis: Server, tmp_path: Path) -> None:
    async def scenario(delivery: Delivery, dead: DeadLetters) -> Outcome:
        return await delivery.handle(_action("a4"), dead)

    receiver, dead, outcome = _run(redis, tmp_path, [400], scenario)
    assert (outcome.status, outcome.attempts, len(receiver.got)) == ("failed", 1, 1)
    assert dead.records[0][2].startswith("HTTP 400")


def test_an_action_read_twice_is_delivered_once(redis: Server, tmp_path: Path) -> None:
    async def scenario(delivery: Delivery, dead: DeadLetters) -> list[str]:
        outcomes = [await delivery.handle(_action("a5"), dead) for _ in range(3)]
        outcomes += [await delivery.handle(_action("s5", channel="sms"), dead) for _ in range(2)]
        return [o.status for o in outcomes]

    receiver, _, statuses = _run(redis, tmp_path, [200], scenario)
    assert statuses == ["delivered", "duplicate", "duplicate", "delivered", "duplicate"]
    assert len(receiver.got) == 1
    assert (tmp_path / "sent.jsonl").read_bytes() == _action("s5", channel="sms") + b"\n"


def test_an_attempt_cut_short_after_the_log_write_is_not_written_again(
    redis: Server, tmp_path: Path
) -> None:
    async def scenario(delivery: Delivery, dead: DeadLetters) -> list[str]:
        assert delivery.claims is not None
        # A worker claimed both, wrote only the first to the file, and died.
        for action_id in ("w1", "w2"):
            assert await delivery.claims.claim_delivery(action_id) is None
        (tmp_path / "sent.jsonl").write_bytes(_action("w1", channel="sms") + b"\n")
        assert await delivery.claims.claim_delivery("w1") == DELIVERING
        outcomes = [await delivery.handle(_action(i, channel="sms"), dead) for i in ("w1", "w2")]
        return [o.status for o in outcomes]

    _, _, statuses = _run(redis, tmp_path, [200], scenario)
    assert statuses == ["duplicate", "delivered"]
    lines = (tmp_path / "sent.jsonl").read_bytes().splitlines()
    assert [msgspec.json.decode(line)["action_id"] for line in lines] == ["w1", "w2"]


def test_milestones_and_actions_not_sent_are_not_delivered(tmp_path: Path) -> None:
    async def scenario(delivery: Delivery, dead: DeadLetters) -> list[str]:
        records = [
            _action("x1", status="suppressed"),
            _action("x2", status="deferred"),
            b'{"record":"milestone","milestone_id":"m1"}',
        ]
        return [(await delivery.handle(r, dead)).status for r in records]

    receiver, dead, statuses = _run(None, tmp_path, [200], scenario)
    assert (statuses, receiver.got, dead.records) == (["skipped"] * 3, [], [])


def test_a_webhook_without_its_secret_is_refused_at_start() -> None:
    settings = DeliverySettings(
        adapters={"crm": WebhookAdapter(url="https://crm.example/hook", secret_env="CRM_KEY")},
        default_adapter="crm",
    )
    with pytest.raises(ValueError, match=r"delivery\.adapters\.crm\.secret_env.*CRM_KEY"):
        Delivery(settings, None, environ={})


def test_a_channel_routed_to_an_unknown_adapter_is_refused_with_the_names_known() -> None:
    with pytest.raises(ValueError, match=r"channels\.sms: no adapter named 'twilio'.*\['log'\]"):
        DeliverySettings(channels={"sms": "twilio"})


def test_an_action_whose_consent_was_withdrawn_meanwhile_is_withheld(
    redis: Server, tmp_path: Path
) -> None:
    async def scenario(delivery: Delivery, dead: DeadLetters) -> list[Outcome]:
        assert delivery.claims is not None
        # The journey sent both; the customer unsubscribed from email before delivery.
        await delivery.claims.write_profiles([("c1", _customer("c1", email=False, sms=True))])
        outcomes = [await delivery.handle(_action("u1"), dead)]
        outcomes.append(await delivery.handle(_action("u2", channel="sms"), dead))
        # A service message that needs no consent still goes.
        outcomes.append(await delivery.handle(_action("u3", needs_consent=False), dead))
        return outcomes

    receiver, dead, outcomes = _run(redis, tmp_path, [200], scenario)
    assert [(o.status, o.detail) for o in outcomes] == [
        ("withheld", "no_consent"),
        ("delivered", ""),
        ("delivered", ""),
    ]
    assert [headers["Idempotency-Key"] for headers, _ in receiver.got] == ["u3"]
    assert dead.records == []


def test_an_action_of_an_erased_customer_is_withheld(redis: Server, tmp_path: Path) -> None:
    async def scenario(delivery: Delivery, dead: DeadLetters) -> list[Outcome]:
        assert delivery.claims is not None
        await delivery.claims.write_profiles([("c1", None)])  # erased after the send
        return [
            await delivery.handle(_action("g1"), dead),
            await delivery.handle(_action("g2", needs_consent=False), dead),
        ]

    receiver, _, outcomes = _run(redis, tmp_path, [200], scenario)
    assert [(o.status, o.detail) for o in outcomes] == [("withheld", "no_profile")] * 2
    assert receiver.got == []
    assert not (tmp_path / "sent.jsonl").exists()


def test_forgetting_a_customer_deletes_its_action_and_delivery_claims(redis: Server) -> None:
    async def main() -> tuple[list[bool], list[bool], list[bytes | str]]:
        prefix = f"t{uuid.uuid4().hex[:8]}:"
        claims = RedisIO(RedisSettings(url=f"redis://{redis.address}/0", key_prefix=prefix))
        try:
            await claims.claim([("a1", "c1"), ("a2", "c1"), ("b1", "c2")])
            await claims.confirm(["a1", "a2", "b1"])
            await claims.claim_delivery("a1")
            await claims.claim_delivery("b1")
            await claims.forget(["c1"])
            again = await claims.claim([("a1", "c1"), ("b1", "c2")])
            await claims.forget(["c1", "c2"])
            after = await claims.claim([("a1", "c1"), ("b1", "c2")])
            await claims.forget(["c1", "c2"])
            left: list[bytes | str] = await claims.client.keys(prefix + "*")
            return again, after, left
        finally:
            await claims.close()

    again, after, left = asyncio.run(main())
    assert again == [True, False]  # c1's claims went, c2's stayed
    assert after == [True, True]
    assert left == []
