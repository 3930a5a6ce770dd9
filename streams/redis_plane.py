"""The data plane's Redis: the same action claims and read model as ``RedisIO``
(``streams/redis_io.py``), for the data plane's thread (``streams/checkpoint.py``'s
``Claims``), with a client of its own and one Lua script call per step of a batch."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar, cast

from tenacity import Retrying, retry_if_exception_type, wait_exponential

from state.profile import Profile
from streams.redis_io import (
    PENDING,
    SENT,
    UNREACHABLE,
    Prepared,
    ReadModelWrites,
    RedisKeys,
    as_text,
    log_retry,
    note_reachable,
)
from streams.settings import RedisSettings

T = TypeVar("T")


#: KEYS: n claim keys, then n claims-list keys; ARGV: n, ttl, pending, then n action ids.
#: Returns what each claim key held before (nil when new), as ``SET NX GET`` does.
CLAIM_SCRIPT = """
local n, ttl, pending = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local before = {}
for i = 1, n do
  before[i] = redis.call('SET', KEYS[i], pending, 'NX', 'GET', 'EX', ttl)
  redis.call('SADD', KEYS[n + i], ARGV[3 + i])
  redis.call('EXPIRE', KEYS[n + i], ttl)
end
return before
"""
#: KEYS: claim keys; ARGV: value, ttl.
CONFIRM_SCRIPT = """
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], ARGV[1], 'EX', ARGV[2])
end
return #KEYS
"""
#: KEYS: read-model hashes; ARGV: ttl, then per key a field count (-1: delete the hash)
#: and that many name, value pairs.
PROFILES_SCRIPT = """
local ttl, at = ARGV[1], 2
for i = 1, #KEYS do
  local count = tonumber(ARGV[at])
  at = at + 1
  if count < 0 then
    redis.call('DEL', KEYS[i])
  else
    if count > 0 then
      redis.call('HSET', KEYS[i], unpack(ARGV, at, at + 2 * count - 1))
      at = at + 2 * count
    end
    redis.call('EXPIRE', KEYS[i], ttl)
  end
end
return #KEYS
"""


class PlaneClaims(RedisKeys):
    """The data plane's Redis (``streams/checkpoint.py``'s ``Claims``): the same claims
    and read model as ``RedisIO``, with a client of its own that the plane's thread calls
    directly (no hop to the event loop), retried the same way while Redis is down."""

    def __init__(self, settings: RedisSettings) -> None:
        import redis as sync_redis

        super().__init__(settings)
        self.settings = settings
        self.client = sync_redis.Redis.from_url(
            settings.url,
            socket_timeout=settings.timeout_seconds,
            socket_connect_timeout=settings.timeout_seconds,
        )
        self.read_model = ReadModelWrites(self._profile_prefix)
        # A batch's claims, confirms and read-model writes are one command each: packing
        # thousands of pipelined commands cost more than the engine's work on the batch.
        self._claim_script = self.client.register_script(CLAIM_SCRIPT)
        self._confirm_script = self.client.register_script(CONFIRM_SCRIPT)
        self._profiles_script = self.client.register_script(PROFILES_SCRIPT)
        self.down_since: float | None = None
        self.failed_calls = 0
        self.outages = 0

    def claim(self, owners: Sequence[tuple[str, str]], holding: str) -> list[bool]:
        if not owners:
            return []
        keys = [self._action_prefix + action_id for action_id, _ in owners]
        keys += [self._claims_prefix + owner for _, owner in owners]
        args: list[str | bytes | int] = [len(owners), self.settings.claim_seconds, PENDING]
        args += [action_id for action_id, _ in owners]

        def call() -> list[bool]:
            replies: list[bytes | None] = self._claim_script(keys=keys, args=args)
            return [value != SENT for value in replies]

        return self._retrying(f"claiming {len(owners)} ids", holding, call)

    def prepare(self, changed: Sequence[tuple[str, Profile | None]]) -> object:
        return self.read_model.prepare(changed)

    def write_prepared(self, prepared: object, holding: str) -> None:
        writes, _ = cast(Prepared, prepared)
        if not writes:
            return
        keys = [key for key, _ in writes]
        args: list[str | int] = [self.settings.profile_seconds]
        for _, fields in writes:
            if fields is None:
                args.append(-1)
                continue
            args.append(len(fields))
            for name, value in fields.items():
                args += (name, value)

        def call() -> None:
            self._profiles_script(keys=keys, args=args)

        self._retrying(f"writing {len(writes)} profiles", holding, call)

    def forget(self, profile_keys: Sequence[str], holding: str) -> None:
        if not profile_keys:
            return
        lists = [self._claims_prefix + key for key in profile_keys]
        inboxes = [name for key in profile_keys for name in self.inbox_keys(key)]

        def call() -> None:
            pipe = self.client.pipeline(transaction=False)
            for name in lists:
                pipe.smembers(name)
            members: list[set[bytes]] = pipe.execute()
            ids = [as_text(m) for found in members for m in found]
            keys = [p + i for i in ids for p in (self._action_prefix, self._delivery_prefix)]
            self.client.delete(*keys, *lists, *inboxes)

        self._retrying(f"forgetting {len(lists)} customers", holding, call)

    def confirm(self, action_ids: Sequence[str], holding: str) -> None:
        if not action_ids:
            return
        keys = [self._action_prefix + action_id for action_id in action_ids]
        args: list[bytes | int] = [SENT, self.settings.claim_seconds]

        def call() -> None:
            self._confirm_script(keys=keys, args=args)

        self._retrying(f"confirming {len(action_ids)} ids", holding, call)

    def forget_written(self) -> None:
        self.read_model.forget()

    def _retrying(self, what: str, holding: str, call: Callable[[], T]) -> T:
        retrying = Retrying(
            retry=retry_if_exception_type(UNREACHABLE),
            wait=wait_exponential(multiplier=0.05, min=0.05, max=5.0),
            before_sleep=log_retry(self, what, holding),
            reraise=True,
        )
        result: T = retrying(call)
        note_reachable(self)
        return result

    def close(self) -> None:
        self.client.close()
