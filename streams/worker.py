"""``rapport worker``: the engines on Kafka, wired from the settings.

Two parts share the process (docs/decisions.md, "The worker's data plane"):

- the **data plane** (``streams/plane.py``) reads the events and identity topics with
  librdkafka in batches, applies them with the partitions' engines and commits them
  through ``streams/checkpoint.py``, in a thread of its own;
- the **Faust application** hosts what is not per input record: the web server, the
  delivery stage (the actions topic, read in batches with aiokafka), the churn learner
  and its models, rule reloads, and which worker owns which partition (``agents/``,
  registered by the CLI).

The topics are listed in ``streams/topics.py``. Nothing here imports ``agents/`` or the
web pages: they depend on this wiring, not the reverse.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import Counter
from typing import Any

import faust
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from churn.tracker import ChurnTracker
from rules.loader import RuleSet
from rules.reloader import Reloads, RulesWatcher
from streams.churn_io import ChurnIO, bootstrap_servers
from streams.delivery import Delivery
from streams.offsets import TopicPartition
from streams.partitions import PartitionEngines, partition_of
from streams.plane import DataPlane
from streams.redis_io import RedisIO
from streams.redis_plane import PlaneClaims
from streams.settings import Settings
from streams.topics import TopicNames

log = logging.getLogger("rapport.worker")


class Worker:
    """The Faust app, the data plane and the engines, wired from the settings.

    Delivery: an input offset is committed only after its event is applied, the outputs
    that applying it produced are acknowledged by the broker, and the profiles it changed
    are in the changelog (``streams/checkpoint.py``). A crash therefore replays input
    whose effects may be partly stored; profiles remember their recent event ids, so
    nothing is applied twice, and outputs come again with the same ids (the Redis claims
    drop them; consumers dedup by action id).
    """

    def __init__(self, settings: Settings, rules: RuleSet) -> None:
        self.settings = settings
        worker = settings.worker
        self.names = TopicNames.with_prefix(worker.topic_prefix, worker.app_id)
        worker.data_dir.mkdir(parents=True, exist_ok=True)
        self.bootstrap = bootstrap_servers(worker.broker)
        self.app = faust.App(
            worker.app_id,
            broker=worker.broker,
            store="memory://",
            topic_partitions=1,
            web_port=worker.web_port or 6066,  # unused when 0: the web server is off
            web_enabled=worker.web_port != 0,
            web_bind=worker.web_bind,
            web_host=worker.advertised_host,
            datadir=str(worker.data_dir / "faust"),
            consumer_auto_offset_reset="earliest",
            producer_acks=-1,
            broker_session_timeout=worker.session_seconds,
            broker_heartbeat_interval=max(worker.session_seconds / 10, 0.5),
            broker_rebalance_timeout=worker.rebalance_seconds,
        )
        raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
        self.actions = self.app.topic(self.names.actions, **raw)
        self.action_dead_letters = self.app.topic(self.names.action_dead_letters, **raw)
        #: The churn model: labels to one learner, its model to every worker.
        churn = settings.churn
        self.churn = ChurnIO(churn.learner) if churn.enabled else None
        self.churn_labels = self.app.topic(
            self.names.churn_labels, partitions=1, internal=True, **raw
        )
        self.churn_models = self.app.topic(
            self.names.churn_models, partitions=1, internal=True, compacting=True, **raw
        )
        if settings.engine.message_key_env is None and rules.templates is not None:
            log.warning(
                "engine.message_key_env is not set: unsubscribe links are signed with the "
                "development key, which anyone can read in the source; set it before "
                "messages reach customers"
            )
        self.engines = PartitionEngines(
            rules,
            settings.profile,
            settings.engine.engine_config(),
            settings.engine.max_clock_skew_seconds,
            coupon_shares=worker.partitions,
            partitions=worker.partitions,
            churn=(
                ChurnTracker(churn.config(), self.churn.scorer) if self.churn is not None else None
            ),
            input_format=worker.input_format,
            max_record_bytes=settings.engine.max_record_bytes,
        )
        self.watcher = RulesWatcher(settings.rules_dir, rules)
        #: Rule changes swapped in, and changes refused (the last good rules stayed).
        #: Rule changes swapped in and refused (``rules/reloader.py``).
        self.reloads = Reloads()
        #: Action claims and the read model; None when ``redis.url`` is empty.
        self.redis = RedisIO(settings.redis) if settings.redis.url else None
        if self.redis is None:
            log.warning("redis.url is empty: no action dedup claims, no read model")
        self.delivery = (
            Delivery(settings.delivery, self.redis) if settings.delivery.enabled else None
        )
        #: Delivery feedback events taken by ``POST /feedback``.
        self.feedback_received = 0
        #: Records the Faust side's producer refused (the data plane counts its own).
        self.broker_errors: Counter[str] = Counter()
        #: Partition -> web address of the worker that owns it (``agents/owners.py``).
        self.owners: dict[int, str] = {}
        self.plane: DataPlane | None = None
        #: The data plane's own Redis client (claims and read model), once it starts.
        self.plane_redis: PlaneClaims | None = None

    def start_plane(self, loop: asyncio.AbstractEventLoop, on_failure: Any) -> DataPlane:
        """Create the topics that are missing, then start reading the input."""
        worker = self.settings.worker
        self.ensure_topics()
        session_ms = int(worker.session_seconds * 1000)
        consumer = {
            "bootstrap.servers": self.bootstrap,
            "group.id": f"{worker.app_id}-events",
            "session.timeout.ms": session_ms,
            "heartbeat.interval.ms": max(session_ms // 10, 500),
            "max.poll.interval.ms": max(300_000, session_ms),
            "fetch.wait.max.ms": 20,
            "log_level": 4,
        }
        producer = {
            "bootstrap.servers": self.bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 2,
            "message.timeout.ms": 0,  # never give up on a record: wait out broker outages
            "queue.buffering.max.messages": 1_000_000,
            "partitioner": "murmur2_random",
            "log_level": 4,
        }
        claims = PlaneClaims(self.settings.redis) if self.redis is not None else None
        self.plane_redis = claims
        owner_url = str(self.app.conf.canonical_url) if worker.web_port else None
        self.plane = DataPlane(
            self.names,
            self.engines,
            consumer,
            producer,
            claims,
            worker.data_dir,
            worker.store,
            wall_clock=worker.clock == "wall",
            owner_url=owner_url,
            on_failure=on_failure,
        )
        self.plane.start()
        return self.plane

    def ensure_topics(self) -> None:
        """The worker's topics, made when missing: the input and identity topics and the
        changelog with ``partitions``; the single-learner topics with one."""
        names, partitions = self.names, self.settings.worker.partitions
        compacted = {"cleanup.policy": "compact"}
        wanted = [
            NewTopic(names.events, partitions),
            NewTopic(names.identity, partitions),
            NewTopic(names.changelog, partitions, config=compacted),
            NewTopic(names.owners, 1, config=compacted),
            NewTopic(names.churn_labels, 1),
            NewTopic(names.churn_models, 1, config=compacted),
            NewTopic(names.dead_letters, partitions),
            NewTopic(names.actions, partitions),
            NewTopic(names.action_dead_letters, 1),
            NewTopic(names.changes, partitions),
            NewTopic(names.audit, 1),
        ]
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 4})
        existing = admin.list_topics(timeout=30).topics
        missing = [topic for topic in wanted if topic.topic not in existing]
        if not missing:
            return
        for name, future in admin.create_topics(missing, operation_timeout=30).items():
            try:
                future.result()
            except KafkaException as error:
                if error.args[0].name() != "TOPIC_ALREADY_EXISTS":
                    raise
            log.info("topic %s created", name)
        for topic in (names.events, names.identity):
            found = admin.list_topics(topic, timeout=30).topics[topic].partitions
            if len(found) != partitions:
                raise ValueError(
                    f"topic {topic} has {len(found)} partitions, worker.partitions is "
                    f"{partitions}: they must be equal (partition n of events and identity "
                    "meet on one worker)"
                )

    @property
    def ready(self) -> bool:
        """The data plane has its partitions and has rebuilt them: lookups may be served."""
        plane = self.plane
        return plane is not None and plane.ready

    def owns(self, partition: int) -> bool:
        plane = self.plane
        return plane is not None and plane.ready and partition in plane.assigned

    def assigned_partitions(self) -> list[int]:
        plane = self.plane
        return [] if plane is None else sorted(plane.assigned)

    def partition_of(self, key: str) -> int:
        """The input partition of ``key``, as Kafka's murmur2 partitioner puts it."""
        return partition_of(key, self.settings.worker.partitions)

    @property
    def skipped_actions(self) -> int:
        plane = self.plane
        return 0 if plane is None else plane.checkpoint.skipped_actions

    def produce_errors(self) -> int:
        plane = self.plane
        if plane is None:
            return self.broker_errors["produce"]
        return self.broker_errors["produce"] + plane.outbox.errors + plane.changelog_outbox.errors

    async def produce(
        self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None
    ) -> Any:
        """One record through the Faust side's producer (churn models); the broker's ack."""
        try:
            sent = await self.app.producer.send(topic, key, value, partition, None, None)
            return await sent
        except Exception:
            self.broker_errors["produce"] += 1
            raise

    async def dead_letter_action(self, raw: bytes, reason: str, detail: str, attempts: int) -> None:
        """An action the delivery stage gave up on, unchanged, with why in its headers."""
        headers = {
            "rapport-reason": reason.encode(),
            "rapport-detail": detail.encode(),
            "rapport-attempts": str(attempts).encode(),
        }
        sent = await self.action_dead_letters.send(value=raw, headers=headers)
        await sent

    def consumer_lag(self) -> dict[TopicPartition, int]:
        plane = self.plane
        return {} if plane is None else plane.consumer_lag()

    def state_bytes(self) -> int:
        """Bytes the local table stores take on disk under ``data_dir`` (0 in memory)."""
        if self.settings.worker.store != "rocksdb":
            return 0
        total = 0
        for folder, _, files in os.walk(self.settings.worker.data_dir):
            for name in files:
                with contextlib.suppress(OSError):  # a file compacted away meanwhile
                    total += os.stat(os.path.join(folder, name)).st_size
        return total
