"""The Redis read model written in batches: a profile written again sends only the
fields that changed, and whole hashes again once partitions have moved."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis import Redis

from state.profile import Profile
from streams.redis_io import RedisIO
from streams.settings import RedisSettings
from tests.servers import Server

pytestmark = pytest.mark.integration


def test_a_profile_written_again_sends_only_what_changed_until_partitions_move(
    redis: Server,
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    direct = Redis(host="127.0.0.1", port=redis.port, decode_responses=True)
    key = f"{prefix}profile:c1"

    async def scenario() -> None:
        io = RedisIO(RedisSettings(url=f"redis://{redis.address}/0", key_prefix=prefix))
        try:
            profile = Profile(key="c1", customer_id="c1", tier="gold")
            await io.write_profiles([("c1", profile)])
            assert direct.hget(key, "tier") == "gold"
            direct.hdel(key, "tier")  # a field this process believes is there
            profile.lifecycle = "active"
            await io.write_profiles([("c1", profile)])
            assert direct.hget(key, "lifecycle") == "active"
            assert direct.hget(key, "tier") is None, "an unchanged field was sent again"
            assert direct.ttl(key) > 0
            io.forget_written()  # partitions moved: the next write is whole
            await io.write_profiles([("c1", profile)])
            assert direct.hget(key, "tier") == "gold"
            await io.write_profiles([("c1", None)])
            assert direct.exists(key) == 0
        finally:
            await io.close()

    asyncio.run(scenario())
