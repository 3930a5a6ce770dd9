"""``rapport worker``: the Faust application that runs the engine on Kafka.

The app owns the topics and the per-partition engines; the agents in ``agents/`` feed
records in and publish what comes out. Topic names take the configured prefix:

=====================  ==========================================================
``<prefix>events``     input, keyed by customer id (or anonymous id)
``<prefix>events.dlq`` input records that are not valid events, reason in headers
``<prefix>actions``    journey actions and run milestones, keyed by profile key
``<prefix>changes``    profile changes (tier, lifecycle, tags, ...), keyed by profile key
=====================  ==========================================================
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import faust
import msgspec

from rules.engine import Output
from rules.loader import RuleSet
from rules.reloader import RulesWatcher
from schemas.decode import DeadLetter
from state.changes import ProfileChange
from streams.partitions import PartitionEngines
from streams.settings import Settings

log = logging.getLogger("rapport.worker")
_ENCODER = msgspec.json.Encoder()


@dataclass(frozen=True)
class TopicNames:
    events: str
    dead_letters: str
    actions: str
    changes: str

    @classmethod
    def with_prefix(cls, prefix: str) -> TopicNames:
        return cls(
            events=f"{prefix}events",
            dead_letters=f"{prefix}events.dlq",
            actions=f"{prefix}actions",
            changes=f"{prefix}changes",
        )


class Worker:
    """The Faust app, its topics and the engines, wired once from the settings."""

    def __init__(self, settings: Settings, rules: RuleSet) -> None:
        self.settings = settings
        worker = settings.worker
        self.names = TopicNames.with_prefix(worker.topic_prefix)
        worker.data_dir.mkdir(parents=True, exist_ok=True)
        self.app = faust.App(
            worker.app_id,
            broker=worker.broker,
            store="memory://",
            topic_partitions=worker.partitions,
            web_port=worker.web_port or 6066,  # unused when 0: the web server is off
            web_enabled=worker.web_port != 0,
            datadir=str(worker.data_dir),
            consumer_auto_offset_reset="earliest",
            producer_acks=-1,
        )
        self.engines = PartitionEngines(
            rules,
            settings.profile,
            settings.engine.engine_config(),
            settings.engine.max_clock_skew_seconds,
        )
        self.watcher = RulesWatcher(settings.rules_dir, rules)
        raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
        self.events = self.app.topic(self.names.events, partitions=worker.partitions, **raw)
        self.dead_letters = self.app.topic(self.names.dead_letters, **raw)
        self.actions = self.app.topic(self.names.actions, **raw)
        self.changes = self.app.topic(self.names.changes, **raw)

        from agents import register  # the agents need the app; the app does not need them

        register(self)

    async def publish(self, outputs: list[Output]) -> None:
        """Send profile changes and journey records to their topics, keyed by profile key."""
        for item in outputs:
            topic = self.changes if isinstance(item, ProfileChange) else self.actions
            await topic.send(key=item.profile_key.encode(), value=_ENCODER.encode(item))

    async def dead_letter(self, raw: bytes, key: bytes | None, letter: DeadLetter) -> None:
        """Forward an invalid record unchanged, with why it was refused in its headers."""
        headers = {
            "rapport-reason": letter.reason.encode(),
            "rapport-detail": letter.detail.encode(),
            "rapport-source": letter.source.encode(),
        }
        if letter.field is not None:
            headers["rapport-field"] = letter.field.encode()
        await self.dead_letters.send(key=key, value=raw, headers=headers)
