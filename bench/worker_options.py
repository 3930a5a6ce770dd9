"""The data-plane options of issue 18, measured on one broker with the same records.

    .venv/bin/python -m bench.worker_options [--customers 900] [--days 30]

Each option only counts each key's records (no engine), so what it measures is the cost
of getting records to the application code:

1. **Faust agent, one record at a time** (``async for``, as the worker read its input
   before issue 18);
2. **Faust batch consumption** (``Stream.take_events(1000, within=0.05)``);
3. **librdkafka batches in a thread** (``Consumer.consume(2000)``, the data plane's loop,
   in this process).

Each is started and warmed up with one record before the clock starts; the clock stops
when it has counted every record. The last line is one JSON object with the figures
(docs/decisions.md, "The worker's data plane").
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

from confluent_kafka import Consumer

from bench.worker_end_to_end import PARTITIONS, produce, timed_app
from streams.generator import GeneratorConfig, generate_stream
from tests.integration.kafka_io import create_topic
from tests.servers import kafka_broker


def faust_rate(bootstrap: str, lines: list[bytes], mode: str, workdir: Path) -> float:
    source, output = f"o{uuid.uuid4().hex[:6]}", f"o{uuid.uuid4().hex[:6]}.done"
    create_topic(bootstrap, source, PARTITIONS)
    create_topic(bootstrap, output, 1)
    script = Path(__file__).parent / "peers" / "faust_app.py"
    command = [sys.executable, str(script), mode, bootstrap, source, output, str(len(lines))]
    command += [str(workdir / f"faust-{mode}"), "worker", "-l", "warn"]
    # The app writes once for the warm-up record and once when it has counted the rest.
    return timed_app(command, workdir / f"faust-{mode}.log", bootstrap, source, output, lines, 2)


def plane_rate(bootstrap: str, lines: list[bytes]) -> float:
    """The data plane's loop: a group consumer's batches, in a thread, into a dict."""
    topic = f"o{uuid.uuid4().hex[:6]}"
    create_topic(bootstrap, topic, PARTITIONS)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"plane-{topic}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "partition.assignment.strategy": "range",
            "session.timeout.ms": 6000,
            "fetch.wait.max.ms": 20,
        }
    )
    counts: Counter[bytes] = Counter()
    seen, finished = [0], [0.0]
    assigned = threading.Event()
    consumer.subscribe([topic], on_assign=lambda c, p: assigned.set())

    def run() -> None:
        deadline = time.monotonic() + 300
        while seen[0] < len(lines) + 1 and time.monotonic() < deadline:
            for message in consumer.consume(2000, 0.02):
                if message.error() is None:
                    counts[message.key() or b""] += 1
                    seen[0] += 1
                    finished[0] = time.perf_counter()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    produce(bootstrap, topic, [b"warm"])
    while seen[0] < 1:
        time.sleep(0.05)
    started = produce(bootstrap, topic, lines)
    thread.join()
    consumer.close()
    return len(lines) / (finished[0] - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=900)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    config = GeneratorConfig(customers=args.customers, days=args.days, seed=5, anonymous_share=0.0)
    lines = list(generate_stream(config))
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        with kafka_broker(workdir / "broker") as broker:
            figures = {
                "records": len(lines),
                "faust_agent_records_per_s": round(
                    faust_rate(broker.address, lines, "agent", workdir)
                ),
                "faust_take_records_per_s": round(
                    faust_rate(broker.address, lines, "take", workdir)
                ),
                "plane_records_per_s": round(plane_rate(broker.address, lines)),
            }
    for name, value in figures.items():
        print(f"{name}: {value:,}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
