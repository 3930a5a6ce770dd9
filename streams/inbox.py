"""The in-app inbox (站内信): in-app messages kept per customer in Redis, newest first,
bounded and expiring, and marked read by the client.

Per customer, under ``redis.key_prefix``: ``inbox:<customer>`` (a hash: action id -> the
message as JSON), ``inbox-order:<customer>`` (a sorted set of action ids by send time)
and ``inbox-read:<customer>`` (the ids read). A message is kept ``ttl`` after its send
and only the newest ``max_messages`` are; each write prunes the rest and renews the keys'
expiry, so an abandoned inbox disappears by itself. Storing is keyed by the action id, so
an action delivered twice is one message. An erasure deletes the three keys
(``RedisIO.forget``).

The worker serves it (``streams/web.py``, bearer token): ``GET /inbox/{customer}`` and
``POST /inbox/{customer}/{message id}/read``.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from streams.delivery import DeliveryFailed, decode_action
from streams.redis_io import RedisIO
from streams.settings import InboxAdapter


class InboxMessage(msgspec.Struct, frozen=True, omit_defaults=True):
    id: str
    at: float
    expires_at: float
    locale: str
    title: str | None = None
    body: str | None = None
    link: str | None = None
    journey_id: str | None = None


_MESSAGE = msgspec.json.Decoder(InboxMessage)


def inbox_keys(prefix: str, customer: str) -> tuple[str, str, str]:
    return (
        f"{prefix}inbox:{customer}",
        f"{prefix}inbox-order:{customer}",
        f"{prefix}inbox-read:{customer}",
    )


class Inbox:
    """The inbox store, on a ``RedisIO``'s client."""

    def __init__(self, redis: RedisIO, settings: InboxAdapter) -> None:
        self.redis = redis
        self.settings = settings

    async def put(self, customer: str, message: InboxMessage, now: float) -> None:
        messages, order, read = self.redis.inbox_keys(customer)
        ttl = int(self.settings.ttl_seconds) + 1
        client = self.redis.client
        pipe = client.pipeline(transaction=True)
        pipe.hset(messages, message.id, msgspec.json.encode(message))
        pipe.zadd(order, {message.id: message.at})
        pipe.zrangebyscore(order, "-inf", f"({now - self.settings.ttl_seconds}")
        pipe.zrange(order, 0, -(self.settings.max_messages + 1))
        _, _, expired, excess = await pipe.execute()
        gone = {*expired, *excess}
        pipe = client.pipeline(transaction=True)
        if gone:
            pipe.zrem(order, *gone)
            pipe.hdel(messages, *gone)
            pipe.srem(read, *gone)
        for key in (messages, order, read):
            pipe.expire(key, ttl)
        await pipe.execute()

    async def has(self, customer: str, message_id: str) -> bool:
        messages, _, _ = self.redis.inbox_keys(customer)
        return bool(await self.redis.client.hexists(messages, message_id))

    async def list(self, customer: str, now: float) -> dict[str, Any]:
        """The customer's messages, newest first, each with ``read``; and the unread count."""
        messages, order, read = self.redis.inbox_keys(customer)
        client = self.redis.client
        ids: list[Any] = list(await client.zrevrange(order, 0, self.settings.max_messages - 1))
        if not ids:
            return {"messages": [], "unread": 0}
        pipe = client.pipeline(transaction=False)
        pipe.hmget(messages, ids)
        pipe.smismember(read, ids)
        stored, seen = await pipe.execute()
        listed: list[dict[str, Any]] = []
        for raw, was_read in zip(stored, seen, strict=True):
            if raw is None:
                continue
            message = _MESSAGE.decode(raw)
            if message.expires_at <= now:
                continue
            listed.append({**msgspec.to_builtins(message), "read": bool(was_read)})
        return {"messages": listed, "unread": sum(not m["read"] for m in listed)}

    async def mark_read(self, customer: str, message_id: str) -> bool:
        """Mark one message read; False when the inbox has no such message."""
        messages, _, read = self.redis.inbox_keys(customer)
        client = self.redis.client
        if not await client.hexists(messages, message_id):
            return False
        await client.sadd(read, message_id)
        return True


class InboxSink:
    """The delivery adapter: an in-app action's message into its customer's inbox."""

    def __init__(self, name: str, settings: InboxAdapter, redis: RedisIO | None) -> None:
        if redis is None:
            raise ValueError(
                f"delivery.adapters.{name}: the inbox keeps messages in Redis; set redis.url"
            )
        self.name = name
        self.inbox = Inbox(redis, settings)
        self._last: tuple[str, str] | None = None

    async def deliver(self, action_id: str, body: bytes) -> None:
        action = decode_action(body)
        message = action.message
        if message is None or (message.title is None and message.body is None):
            raise DeliveryFailed(
                "no rendered in-app message: the rules have no templates/ for this send",
                permanent=True,
            )
        customer = action.customer_id or action.profile_key
        kept = InboxMessage(
            id=action.action_id,
            at=action.at,
            expires_at=action.at + self.inbox.settings.ttl_seconds,
            locale=message.locale,
            title=message.title,
            body=message.body,
            link=message.link,
            journey_id=action.journey_id,
        )
        try:
            await self.inbox.put(customer, kept, time.time())
        except OSError as error:
            raise DeliveryFailed(f"Redis: {error}") from None
        self._last = (customer, action.action_id)

    def delivered_before(self, action_id: str) -> bool:
        return False  # storing is keyed by the action id: a second store is the same message

    async def close(self) -> None:
        return None
