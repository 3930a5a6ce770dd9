"""The in-app inbox (站内信) on a real Redis: kept per customer, newest first, bounded,
expiring, marked read, one message per action however often it is delivered, and gone
with an erasure."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import pytest

from rules.actions import Action, Message
from state.profile import Profile, Stamped
from streams.delivery import Delivery
from streams.inbox import Inbox
from streams.redis_io import RedisIO
from streams.settings import DeliverySettings, InboxAdapter, RedisSettings
from tests.servers import Server

pytestmark = pytest.mark.integration


def _in_app(action_id: str, at: float, customer: str = "c1") -> bytes:
    action = Action(
        action_id=action_id,
        status="sent",
        kind="send",
        journey_id="vip_welcome",
        step=1,
        arm="main",
        profile_key=customer,
        customer_id=customer,
        entity=None,
        trigger="e1",
        at=at,
        channel="in_app",
        needs_consent=True,
        template="vip_welcome",
        message=Message(locale="zh-CN", title="欢迎", body=f"消息 {action_id}", link="/vip"),
    )
    return msgspec.json.encode(action)


def _run(redis: Server, adapter: InboxAdapter, scenario: Callable[..., Awaitable[Any]]) -> Any:
    async def main() -> Any:
        settings = RedisSettings(
            url=f"redis://{redis.address}/0", key_prefix=f"t{uuid.uuid4().hex[:8]}:"
        )
        claims = RedisIO(settings)
        customers = []
        for key in ("c1", "c2"):
            profile = Profile(key=key, customer_id=key)
            profile.consent["in_app"] = Stamped(True, 1.0, f"consent-{key}")
            customers.append((key, profile))
        await claims.write_profiles(customers)
        delivery = Delivery(
            DeliverySettings(adapters={"inbox": adapter}, default_adapter="inbox"), claims, {}
        )

        async def dead(raw: bytes, reason: str, detail: str, attempts: int) -> None:
            raise AssertionError(f"dead-lettered: {reason} {detail}")

        try:
            return await scenario(delivery, Inbox(claims, adapter), claims, dead)
        finally:
            await delivery.close()
            await claims.close()

    return asyncio.run(main())


def test_the_inbox_keeps_the_newest_messages_once_each_and_marks_them_read(
    redis: Server,
) -> None:
    now = time.time()

    async def scenario(delivery: Delivery, inbox: Inbox, claims: RedisIO, dead: Any) -> Any:
        for n in range(3):
            outcome = await delivery.handle(_in_app(f"a{n}", now - 60 + n), dead)
            assert outcome.status == "delivered"
        again = await delivery.handle(_in_app("a2", now - 58), dead)  # redelivered
        assert again.status in ("delivered", "duplicate")
        listed = await inbox.list("c1", now)
        assert await inbox.mark_read("c1", "a1")
        assert not await inbox.mark_read("c1", "a0")  # pruned: only the newest two are kept
        return listed, await inbox.list("c1", now)

    before, after = _run(redis, InboxAdapter(max_messages=2), scenario)
    assert [m["id"] for m in before["messages"]] == ["a2", "a1"]
    assert before["unread"] == 2
    assert before["messages"][0]["body"] == "消息 a2"
    assert [m["read"] for m in after["messages"]] == [False, True]
    assert after["unread"] == 1


def test_messages_expire_after_their_ttl(redis: Server) -> None:
    now = time.time()

    async def scenario(delivery: Delivery, inbox: Inbox, claims: RedisIO, dead: Any) -> Any:
        await delivery.handle(_in_app("old", now - 7200), dead)
        await delivery.handle(_in_app("new", now - 60), dead)
        return await inbox.list("c1", now)

    listed = _run(redis, InboxAdapter(ttl="1h"), scenario)
    assert [m["id"] for m in listed["messages"]] == ["new"]


def test_an_erasure_removes_the_customers_inbox(redis: Server) -> None:
    now = time.time()

    async def scenario(delivery: Delivery, inbox: Inbox, claims: RedisIO, dead: Any) -> Any:
        await delivery.handle(_in_app("a1", now), dead)
        await delivery.handle(_in_app("b1", now, customer="c2"), dead)
        await inbox.mark_read("c1", "a1")
        await claims.forget(["c1"])
        found = await claims.client.keys(f"{claims.settings.key_prefix}inbox*")
        keys = [k.decode() if isinstance(k, bytes) else str(k) for k in found]
        return await inbox.list("c1", now), await inbox.list("c2", now), keys

    gone, kept, keys = _run(redis, InboxAdapter(), scenario)
    assert gone == {"messages": [], "unread": 0}
    assert [m["id"] for m in kept["messages"]] == ["b1"]
    assert all(k.endswith(":c2") for k in keys), keys
