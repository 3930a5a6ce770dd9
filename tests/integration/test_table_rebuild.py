"""A partition's local table brought up to its changelog's end when it is assigned
(``streams/plane.py``'s ``rebuild``), against a real broker."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer

from streams.rebuild import rebuild
from streams.table_stores import PartitionTable
from tests.integration.kafka_io import create_topic
from tests.servers import Server

pytestmark = pytest.mark.integration
WRITES = [(b"0:p:c1", b"one"), (b"0:p:c2", b"two"), (b"0:p:c1", None), (b"0:m", b"meta")]


def _changelog(broker: Server) -> str:
    """A one-partition changelog holding ``WRITES`` at offsets 0–3, each in a batch of its
    own (as the worker writes each partition's last record)."""
    topic = f"c{uuid.uuid4().hex[:8]}-profiles-changelog"
    create_topic(broker.address, topic, 1)
    producer = Producer({"bootstrap.servers": broker.address, "acks": "all"})
    for key, value in WRITES:
        producer.produce(topic, value, key, partition=0)
        producer.flush(30)
    return topic


def test_a_table_reads_only_the_changelog_written_after_the_offset_it_holds(
    broker: Server, tmp_path: Path
) -> None:
    topic = _changelog(broker)
    table = PartitionTable(tmp_path / "profiles-0.db")
    table.apply([(b"0:p:c1", b"one")], offset=0)  # what the worker had stored before
    read = rebuild({"bootstrap.servers": broker.address}, topic, {0: table})
    assert read == 3
    assert dict(table.items()) == {b"0:p:c2": b"two", b"0:m": b"meta"}
    assert table.offset == 3


def test_a_table_that_claims_more_than_the_changelog_holds_is_rebuilt_not_refused(
    broker: Server, tmp_path: Path
) -> None:
    """A worker's disk from before the changelog was made again (or a write cut short by
    kill -9 on a broker that lost it): the table is emptied and read from the start."""
    topic = _changelog(broker)
    table = PartitionTable(tmp_path / "profiles-0.db")
    table.apply([(b"0:p:gone", b"stale")], offset=41)
    read = rebuild({"bootstrap.servers": broker.address}, topic, {0: table})
    assert read == 4
    assert dict(table.items()) == {b"0:p:c2": b"two", b"0:m": b"meta"}
    assert table.offset == 3


def test_a_table_ahead_of_an_end_the_broker_reports_too_low_is_kept(
    broker: Server, tmp_path: Path
) -> None:
    """Tansu reports a partition's end as its last batch's first offset + 1: after a
    write of several records in one batch (a stop cut the lone last write short), the end
    looks lower than the table. The table's record is still there, so the table stands."""
    topic = f"c{uuid.uuid4().hex[:8]}-profiles-changelog"
    create_topic(broker.address, topic, 1)
    producer = Producer({"bootstrap.servers": broker.address, "acks": "all", "linger.ms": 200})
    for key, value in WRITES:
        producer.produce(topic, value, key, partition=0)
    producer.flush(30)  # one batch: offsets 0-3
    table = PartitionTable(tmp_path / "profiles-0.db")
    table.apply([(b"0:p:c2", b"two"), (b"0:m", b"meta")], offset=3)
    read = rebuild({"bootstrap.servers": broker.address}, topic, {0: table})
    assert read == 0
    assert dict(table.items()) == {b"0:p:c2": b"two", b"0:m": b"meta"}
    assert table.offset == 3
