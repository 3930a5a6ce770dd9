"""The worker's Redis: action dedup claims and the profile read model.

Keys (``<p>`` is ``redis.key_prefix``, ``rapport:`` by default):

=============================  =============================================================
``<p>action:<action id>``      ``pending`` once claimed, ``sent`` once the broker has it;
                               expires after ``redis.claim_ttl``
``<p>delivery:<action id>``    the same two states for the delivery stage (``delivering``,
                               ``delivered``); expires after ``redis.claim_ttl``
``<p>claims:<customer id>``    the ids of the customer's actions claimed above (a set), so
                               an erasure can delete them; expires with them
``<p>profile:<profile key>``   a hash of ``state.read_model.READ_MODEL_FIELDS``; renewed on
                               every change, expires after ``redis.profile_ttl``; deleted
                               when the profile is (merged into a customer, erased)
=============================  =============================================================

Actions of a visitor not yet identified are listed under their ``anon:<id>`` key.

While Redis cannot be reached, every call here retries with capped exponential backoff
and never gives up: the caller holds its actions and does not acknowledge its input, so
nothing is dropped and nothing is published twice, and the work catches up once Redis is
back. Each failed attempt is logged with what is held; the outage's length is logged when
it ends.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
    TimeoutError as RedisTimeoutError,
)
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    wait_exponential,
)

from state.profile import Profile
from state.read_model import read_model_fields
from streams.settings import RedisSettings

log = logging.getLogger("rapport.redis")
T = TypeVar("T")

#: What "Redis cannot be reached" looks like to the client.
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
PENDING, SENT = b"pending", b"sent"
DELIVERING, DELIVERED = b"delivering", b"delivered"


class RedisKeys:
    """The key layout of the module docstring's table, under ``redis.key_prefix``; the one
    place both clients (this module's and ``streams/redis_plane.py``'s) take it from."""

    def __init__(self, settings: RedisSettings) -> None:
        prefix = settings.key_prefix
        self._action_prefix = f"{prefix}action:"
        self._delivery_prefix = f"{prefix}delivery:"
        self._profile_prefix = f"{prefix}profile:"
        self._claims_prefix = f"{prefix}claims:"
        self._prefix = prefix

    def inbox_keys(self, customer: str) -> tuple[str, str, str]:
        """The in-app inbox of one customer (``streams/inbox.py``): messages, their order,
        the ones read."""
        prefix = self._prefix
        return (
            f"{prefix}inbox:{customer}",
            f"{prefix}inbox-order:{customer}",
            f"{prefix}inbox-read:{customer}",
        )


class RedisIO(RedisKeys):
    def __init__(self, settings: RedisSettings) -> None:
        super().__init__(settings)
        self.settings = settings
        self.client = aioredis.from_url(
            settings.url,
            socket_timeout=settings.timeout_seconds,
            socket_connect_timeout=settings.timeout_seconds,
        )
        #: What this process last wrote of each profile's read model.
        self.read_model = ReadModelWrites(self._profile_prefix)
        #: When the current outage began (None: Redis answers), and counts for metrics.
        self.down_since: float | None = None
        self.failed_calls = 0
        self.outages = 0

    def profile_key(self, profile_key: str) -> str:
        return self._profile_prefix + profile_key

    # --- action claims ----------------------------------------------------------------------

    async def claim(self, actions: Sequence[tuple[str, str]], holding: str = "") -> list[bool]:
        """Claim each (action id, customer id or profile key) (``SET NX``); True where it
        may be published: newly claimed, or claimed by an attempt that never confirmed (it
        stopped before the broker acked). Each id is listed under its customer."""
        ids = [action_id for action_id, _ in actions]
        owners = [owner for _, owner in actions]
        before = await self._claim(self._action_prefix, ids, PENDING, holding, owners)
        return [value != SENT for value in before]

    async def forget(self, profile_keys: Sequence[str], holding: str = "") -> int:
        """Delete the action and delivery claims of erased customers, their lists and their
        in-app inboxes; return how many keys went."""
        if not profile_keys:
            return 0
        lists = [self._claims_prefix + key for key in profile_keys]
        inboxes = [name for key in profile_keys for name in self.inbox_keys(key)]

        async def call() -> int:
            pipe = self.client.pipeline(transaction=False)
            for name in lists:
                pipe.smembers(name)
            members: list[set[bytes]] = await pipe.execute()
            ids = [as_text(m) for found in members for m in found]
            keys = [p + i for i in ids for p in (self._action_prefix, self._delivery_prefix)]
            deleted: int = await self.client.delete(*keys, *lists, *inboxes)
            return deleted

        return await self._retrying(f"forgetting {len(lists)} customers", holding, call)

    async def confirm(self, action_ids: Sequence[str], holding: str = "") -> None:
        """The broker has these: a later claim of the same id must not publish it again."""
        await self._confirm(self._action_prefix, action_ids, SENT, holding)

    async def claim_delivery(self, action_id: str) -> bytes | None:
        """Claim one delivery. What was there before: None (new), ``DELIVERING`` (an attempt
        stopped before it confirmed: it may or may not have reached the receiver) or
        ``DELIVERED``."""
        (before,) = await self._claim(self._delivery_prefix, [action_id], DELIVERING, "1 action")
        return before

    async def confirm_delivery(self, action_id: str) -> None:
        await self._confirm(self._delivery_prefix, [action_id], DELIVERED, "1 action")

    async def _claim(
        self,
        prefix: str,
        ids: Sequence[str],
        pending: bytes,
        holding: str,
        owners: Sequence[str] = (),
    ) -> list[bytes | None]:
        if not ids:
            return []
        ttl = self.settings.claim_seconds
        lists = sorted({self._claims_prefix + owner for owner in owners})

        async def call() -> list[bytes | None]:
            pipe = self.client.pipeline(transaction=False)
            _claim_commands(pipe, prefix, self._claims_prefix, ids, pending, owners, lists, ttl)
            replies: list[bytes | None] = await pipe.execute()
            return replies[: len(ids)]

        return await self._retrying(f"claiming {len(ids)} ids", holding, call)

    async def _confirm(self, prefix: str, ids: Sequence[str], done: bytes, holding: str) -> None:
        if not ids:
            return
        ttl = self.settings.claim_seconds

        async def call() -> None:
            pipe = self.client.pipeline(transaction=False)
            for action_id in ids:
                pipe.set(prefix + action_id, done, ex=ttl)
            await pipe.execute()

        await self._retrying(f"confirming {len(ids)} ids", holding, call)

    # --- the read model ---------------------------------------------------------------------

    async def write_profiles(
        self, changed: Sequence[tuple[str, Profile | None]], holding: str = ""
    ) -> None:
        """Write each changed profile's read-model hash, or delete it.

        Only the fields that changed since this process last wrote the profile are sent
        (every field, the first time); the hash's expiry is renewed either way. Each
        field's CRC-32 is remembered per profile (72 bytes), not the fields themselves;
        ``forget_written`` drops that memory when partitions move (another worker may
        write their profiles meanwhile)."""
        if not changed:
            return
        ttl = self.settings.profile_seconds
        writes, _ = self.read_model.prepare(changed)

        async def call() -> None:
            pipe = self.client.pipeline(transaction=False)
            _profile_commands(pipe, writes, ttl)
            await pipe.execute()

        await self._retrying(f"writing {len(writes)} profiles", holding, call)

    def forget_written(self) -> None:
        """Write every field of each profile next time (partitions moved)."""
        self.read_model.forget()

    async def consent_of(self, profile_key: str) -> dict[str, bool] | None:
        """The read model's consent of one profile, channel -> granted; None when the
        read model has no such profile (erased, or never written)."""
        key = self.profile_key(profile_key)

        async def call() -> tuple[int, bytes | None]:
            pipe = self.client.pipeline(transaction=False)
            pipe.exists(key)
            pipe.hget(key, "consent")
            exists, consent = await pipe.execute()
            return int(exists), consent

        exists, consent = await self._retrying("reading consent", "1 action", call)
        if not exists:
            return None
        granted: dict[str, bool] = msgspec.json.decode(consent or b"{}")
        return granted

    async def read_profile(self, profile_key: str) -> dict[str, str]:
        """The read-model hash of one profile; empty when there is none."""
        raw = await self.client.hgetall(self.profile_key(profile_key))
        return {as_text(k): as_text(v) for k, v in raw.items()}

    # --- retrying ---------------------------------------------------------------------------

    async def _retrying(self, what: str, holding: str, call: Callable[[], Awaitable[T]]) -> T:
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(UNREACHABLE),
            wait=wait_exponential(multiplier=0.05, min=0.05, max=5.0),
            before_sleep=log_retry(self, what, holding),
            reraise=True,
        )
        result: T = await retrying(call)
        note_reachable(self)
        return result

    async def close(self) -> None:
        await self.client.aclose()


class Outage(Protocol):
    down_since: float | None
    failed_calls: int
    outages: int


#: Read-model writes: (Redis key, fields to set or None to delete), and the digests to
#: remember once they are written.
Prepared = tuple[list[tuple[str, dict[str, str] | None]], dict[str, bytes | None]]


class ReadModelWrites:
    """Which read-model fields to send: those that changed since this process last
    prepared the profile (every field the first time). Each field's CRC-32 is remembered
    per profile (72 bytes), not the fields themselves; ``forget`` drops that memory when
    partitions move (another worker may write their profiles meanwhile).

    The memory moves when a batch is *prepared*, not when it is written: batches are
    prepared while the one before is still being written, and are written in the order
    prepared, so each batch's fields are relative to the one before it. (Relative to the
    last batch written, a field that changed in batch K-1 and changed back in batch K
    would not be sent with K, and Redis would keep K-1's value.)"""

    def __init__(self, key_prefix: str) -> None:
        self.key_prefix = key_prefix
        self._written: dict[str, bytes] = {}

    def prepare(self, changed: Sequence[tuple[str, Profile | None]]) -> Prepared:
        """(Redis key, fields to set or None to delete) per profile, and the digests to
        remember once they are written."""
        writes: list[tuple[str, dict[str, str] | None]] = []
        digests: dict[str, bytes | None] = {}
        for profile_key, profile in changed:
            key = self.key_prefix + profile_key
            if profile is None:
                writes.append((key, None))
                digests[profile_key] = None
                continue
            fields = read_model_fields(profile)
            digest = _digest(fields)
            before = self._written.get(profile_key)
            if before is not None:
                fields = {
                    name: value
                    for i, (name, value) in enumerate(fields.items())
                    if digest[4 * i : 4 * i + 4] != before[4 * i : 4 * i + 4]
                }
            writes.append((key, fields))
            digests[profile_key] = digest
        for profile_key, remembered in digests.items():
            if remembered is None:
                self._written.pop(profile_key, None)
            else:
                self._written[profile_key] = remembered
        return writes, digests

    def forget(self) -> None:
        self._written.clear()

    def __len__(self) -> int:
        return len(self._written)


def _claim_commands(
    pipe: Any,
    prefix: str,
    claims_prefix: str,
    ids: Sequence[str],
    pending: bytes,
    owners: Sequence[str],
    lists: Sequence[str],
    ttl: int,
) -> None:
    for action_id in ids:
        pipe.set(prefix + action_id, pending, nx=True, get=True, ex=ttl)
    for action_id, owner in zip(ids, owners, strict=False):
        pipe.sadd(claims_prefix + owner, action_id)
    for name in lists:
        pipe.expire(name, ttl)


def _profile_commands(pipe: Any, writes: list[tuple[str, dict[str, str] | None]], ttl: int) -> None:
    for key, fields in writes:
        if fields is None:
            pipe.delete(key)
            continue
        if fields:
            pipe.hset(key, mapping=fields)
        pipe.expire(key, ttl)


def log_retry(state_of: Outage, what: str, holding: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        state_of.failed_calls += 1
        if state_of.down_since is None:
            state_of.down_since = time.monotonic()
            state_of.outages += 1
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "redis unreachable while %s (%s); holding %s; attempt %d, retrying in %.1fs",
            what,
            error,
            holding or "nothing",
            state.attempt_number,
            wait,
        )

    return before_sleep


def note_reachable(state_of: Outage) -> None:
    if state_of.down_since is not None:
        log.warning(
            "redis reachable again after %.1fs; catching up", time.monotonic() - state_of.down_since
        )
        state_of.down_since = None


def _digest(fields: dict[str, str]) -> bytes:
    return b"".join(zlib.crc32(value.encode()).to_bytes(4, "little") for value in fields.values())


def holding(actions: int, profiles: int, records: int) -> str:
    return f"{actions} actions, {profiles} profile changes, {records} input records unacked"


def as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
