"""One worker end to end on a local broker, against the broker itself, a Quix Streams app
and the engine's replay of the same records.

    make bench-worker      # = build/bench-peers (Quix Streams) + python -m bench.worker_end_to_end

Starts a Tansu broker and Redis on free loopback ports (as the integration tests do), then
in one run, with the same generated records:

1. **Broker**: a producer and, in a thread of its own, a batch consumer (librdkafka's
   ``consume`` of up to 10,000 records) reading the topic; first produce to last read.
2. **Quix Streams** (the peer a user could pick instead): a trivial stateful app (each
   key's count in its RocksDB state, written to an output topic), run from its own
   virtualenv (``build/bench-peers``: it pins confluent-kafka and pydantic below Rapport's);
   started and warmed up before the clock starts; the clock stops when the output topic
   has a record for every input record.
3. **Replay**: the engines of the worker's partitions over the same records in one
   process, as ``tests/integration/test_worker.py`` computes what the worker must give.
4. **Worker**: one ``rapport worker`` (shipped rules, Redis claims and read model, the
   delivery stage to a log file), ready before the clock starts; the clock stops when the
   actions topic holds every action the engines give for that input.
5. **Event → action latency**: a second worker on the wall clock with a journey that sends
   at once on ``cart.item_added``; events produced at a steady rate (1,000/s by default)
   with the current time; latency is the action record's broker timestamp minus its
   trigger record's; the broker's own produce→consume latency at the same rate.

The last line is one JSON object with the figures; docs/performance.md records them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import msgspec
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from rules.loader import DEFAULT_RULES_DIR
from streams.generator import GeneratorConfig, generate_stream
from streams.settings import load_settings
from tests.integration.kafka_io import create_topic, read_topic, routing_key
from tests.integration.test_worker import _oracle, partitioned
from tests.integration.worker_process import WorkerProcess, worker_env
from tests.rules.journey_builders import rules_dir
from tests.servers import free_port, kafka_broker, redis_server

PARTITIONS = 4
#: The Quix Streams peer's virtualenv (``make bench-worker`` makes it).
PEERS = Path(os.environ.get("RAPPORT_BENCH_PEERS", "build/bench-peers"))
#: The engine's allowed lateness in the latency run: a send is due at its trigger's event
#: time and goes out once the watermark (newest event time less this) passes it.
LATENESS = 1
PING = """
id: ping
trigger: {event: cart.item_added}
steps:
  - send: {channel: email, template: hello}
"""


def produce(bootstrap: str, topic: str, lines: list[bytes], rate: float = 0.0) -> float:
    """Produce ``lines`` (at ``rate`` per second when given); the time the first went out."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 5,
            "acks": "all",
            "partitioner": "murmur2_random",
        }
    )
    started = time.perf_counter()
    for number, line in enumerate(lines):
        if rate:
            delay = started + number / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        producer.produce(topic, key=routing_key(line), value=line)
        producer.poll(0)
    producer.flush(60)
    return started


class Reader:
    """Reads a topic from the beginning (assigned partitions) and keeps what it needs."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": "bench", "enable.auto.commit": False}
        )
        deadline = time.monotonic() + 60
        while True:
            meta = self.consumer.list_topics(topic, timeout=10).topics.get(topic)
            if meta is not None and meta.partitions:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"topic {topic} never appeared")
            time.sleep(0.2)
        self.consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions])

    def read(self, until: int, timeout: float, keep: list[tuple[int, bytes]]) -> float:
        """Read until ``keep`` has ``until`` records; return when the last one was read."""
        deadline = time.monotonic() + timeout
        last = time.perf_counter()
        while len(keep) < until and time.monotonic() < deadline:
            message = self.consumer.poll(0.1)
            if message is None or message.error() is not None:
                continue
            keep.append((message.timestamp()[1], message.value() or b""))
            last = time.perf_counter()
        return last

    def close(self) -> None:
        self.consumer.close()


def wait_ready(port: int, worker: WorkerProcess, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not worker.exited:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"worker not ready:\n{worker.log()[-3000:]}")


def start_worker(
    bootstrap: str, redis: str, prefix: str, workdir: Path, name: str, **settings: str
) -> WorkerProcess:
    """A worker on ``prefix``'s topics with its web server on a free port, once ready."""
    port = free_port()
    env = worker_env(
        bootstrap,
        redis,
        prefix,
        PARTITIONS,
        worker__web_port=str(port),
        worker__web_host="127.0.0.1",
        worker__data_dir=str(workdir / f"{name}-data"),
        **settings,
    )
    worker = WorkerProcess(workdir, env, name=name)
    try:
        wait_ready(port, worker)
    except RuntimeError:
        worker.stop()
        raise
    return worker


class Drain(threading.Thread):
    """Reads ``count`` records of ``topic`` in batches, in a thread of its own: ``finished``
    is when the last one was read (``perf_counter``), ``read`` how many it read."""

    def __init__(self, bootstrap: str, topic: str, count: int, timeout: float = 300) -> None:
        super().__init__(daemon=True)
        self.reader = Reader(bootstrap, topic)
        self.count, self.timeout = count, timeout
        self.read, self.finished = 0, 0.0
        self.start()

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout
        while self.read < self.count and time.monotonic() < deadline:
            batch = self.reader.consumer.consume(10_000, 0.1)
            good = sum(1 for m in batch if m.error() is None)
            if good:
                self.read += good
                self.finished = time.perf_counter()
        self.reader.close()


def broker_baseline(bootstrap: str, lines: list[bytes]) -> float:
    """A producer, and a batch consumer in a thread of its own: first produce to last read."""
    topic = f"raw{uuid.uuid4().hex[:6]}"
    create_topic(bootstrap, topic, PARTITIONS)
    reading = Drain(bootstrap, topic, len(lines))
    started = produce(bootstrap, topic, lines)
    reading.join()
    assert reading.read == len(lines), f"read {reading.read} of {len(lines)}"
    return len(lines) / (reading.finished - started)


def quix_throughput(bootstrap: str, lines: list[bytes], workdir: Path) -> float:
    """The Quix Streams peer, warmed up with one record, then timed on ``lines``."""
    python = PEERS / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"{python} is missing: run `make bench-worker` (it makes it)")
    source, output = f"q{uuid.uuid4().hex[:6]}", f"q{uuid.uuid4().hex[:6]}.out"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    # Quix reads the input topic's retention; Tansu reports none unless it is set.
    week = {"retention.ms": str(7 * 86_400_000)}
    for future in admin.create_topics(
        [NewTopic(source, PARTITIONS, config=week), NewTopic(output, PARTITIONS, config=week)]
    ).values():
        future.result()
    command = [str(python), str(Path(__file__).parent / "peers" / "quix_app.py"), bootstrap]
    command += [source, output, str(workdir / "quix-state")]
    # The app writes a record per input record; the drain reads the warm-up one too.
    return timed_app(
        command, workdir / "quix.log", bootstrap, source, output, lines, len(lines) + 1
    )


def timed_app(
    command: list[str],
    log_path: Path,
    bootstrap: str,
    source: str,
    output: str,
    lines: list[bytes],
    outputs: int,
) -> float:
    """Start the app ``command``, warm it up with one record (until it writes to
    ``output``), then time ``lines`` from the first produced until ``output`` holds
    ``outputs`` records; the app's log goes to ``log_path``."""
    with log_path.open("wb") as log:
        app = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            warm = Drain(bootstrap, output, 1, timeout=180)
            produce(bootstrap, source, [b'{"warm": true}'])
            warm.join()
            assert warm.read == 1, f"the app never answered:\n{log_path.read_text()[-2000:]}"
            reading = Drain(bootstrap, output, outputs, timeout=600)
            started = produce(bootstrap, source, lines)
            reading.join()
            assert reading.read == outputs, f"the app wrote {reading.read} of {outputs} records"
            return len(lines) / (reading.finished - started)
        finally:
            app.terminate()
            app.wait(30)


def replay_throughput(bootstrap: str, lines: list[bytes]) -> float:
    """The engines of the worker's partitions over the same records, in one process."""
    topic = f"r{uuid.uuid4().hex[:6]}"
    create_topic(bootstrap, topic, PARTITIONS)
    produce(bootstrap, topic, lines)
    records = read_topic(bootstrap, topic, until=lambda r: len(r) == len(lines), settle=0)
    settings = load_settings(worker={"clock": "events"})
    started = time.perf_counter()
    partitioned(records, PARTITIONS, settings)
    return len(lines) / (time.perf_counter() - started)


def worker_throughput(
    bootstrap: str, redis: str, lines: list[bytes], workdir: Path, **settings: str
) -> tuple[float, int]:
    prefix = f"b{uuid.uuid4().hex[:6]}."
    create_topic(bootstrap, f"{prefix}events", PARTITIONS)
    # What the engines give for this input, per partition as the worker sees it: produce
    # once to a scratch topic with the same partitioner and partition count.
    scratch = f"{prefix}scratch"
    create_topic(bootstrap, scratch, PARTITIONS)
    produce(bootstrap, scratch, lines)
    records = read_topic(bootstrap, scratch, until=lambda r: len(r) == len(lines), settle=0)
    want = sum(_oracle(records, PARTITIONS).actions.values())
    worker = start_worker(
        bootstrap, redis, prefix, workdir, "throughput", worker__clock="events", **settings
    )
    reader = None
    try:
        reader = Reader(bootstrap, f"{prefix}actions")
        started = produce(bootstrap, f"{prefix}events", lines)
        seen: list[tuple[int, bytes]] = []
        finished = reader.read(want, 600, seen)
    finally:
        if reader is not None:
            reader.close()
        worker.stop()
    assert len(seen) == want, f"{len(seen)} of {want} actions:\n{worker.log()[-3000:]}"
    return len(lines) / (finished - started), want


def latency(
    bootstrap: str, redis: str, workdir: Path, rate: float, seconds: float
) -> tuple[list[float], list[float]]:
    """Event → action latency through the worker, and produce → consume through the broker
    alone, both in milliseconds, at the same steady rate."""
    directory = rules_dir(
        workdir, [PING], policies="channels: {email: {templates: [hello], needs_consent: false}}\n"
    )
    prefix = f"l{uuid.uuid4().hex[:6]}."
    create_topic(bootstrap, f"{prefix}events", PARTITIONS)
    worker = start_worker(
        bootstrap,
        redis,
        prefix,
        workdir,
        "latency",
        rules_dir=str(directory),
        engine__allowed_lateness=f"{LATENESS}s",
        worker__clock="wall",
    )
    count = int(rate * seconds)
    try:
        events = Reader(bootstrap, f"{prefix}events")
        actions = Reader(bootstrap, f"{prefix}actions")
        producer = Producer(
            {"bootstrap.servers": bootstrap, "linger.ms": 0, "partitioner": "murmur2_random"}
        )
        started = time.perf_counter()
        for number in range(count):
            delay = started + number / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            line = _cart_event(number, time.time())  # stamped as it goes out
            producer.produce(f"{prefix}events", key=f"c{number}".encode(), value=line)
            producer.poll(0)
        producer.flush(30)
        got_events: list[tuple[int, bytes]] = []
        got_actions: list[tuple[int, bytes]] = []
        events.read(count, 60, got_events)
        actions.read(count * 3, 20, got_actions)  # each send comes with milestones
        events.close()
        actions.close()
    finally:
        worker.stop()
    produced_at = {json.loads(v)["event_id"]: ts for ts, v in got_events}
    worker_ms = []
    for ts, value in got_actions:
        record = msgspec.json.decode(value)
        if record.get("record") == "action" and record.get("trigger") in produced_at:
            worker_ms.append(float(ts - produced_at[record["trigger"]]))
    return worker_ms, broker_latency(bootstrap, f"{prefix}raw", rate, count)


def broker_latency(bootstrap: str, topic: str, rate: float, count: int) -> list[float]:
    """Produce → consume latency of the broker alone, in ms, at ``rate`` records/s."""
    create_topic(bootstrap, topic, PARTITIONS)
    reader = Reader(bootstrap, topic)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
    sent: dict[str, float] = {}
    latencies: list[float] = []

    def take(wait: float) -> None:
        message = reader.consumer.poll(wait)
        if message is not None and message.error() is None:
            key = (message.key() or b"").decode()
            latencies.append((time.perf_counter() - sent[key]) * 1000)

    started = time.perf_counter()
    for number in range(count):
        line = _cart_event(number, time.time())
        while time.perf_counter() < started + number / rate:
            take(0.001)
        sent[str(number)] = time.perf_counter()
        producer.produce(topic, key=str(number).encode(), value=line)
        producer.poll(0)
    producer.flush(30)
    deadline = time.monotonic() + 30
    while len(latencies) < count and time.monotonic() < deadline:
        take(0.01)
    reader.close()
    return latencies


def _cart_event(number: int, moment: float) -> bytes:
    millis = int(moment * 1000) % 1000
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment)) + f".{millis:03}Z"
    return json.dumps(
        {
            "type": "cart.item_added",
            "event_id": f"e{number}",
            "customer_id": f"c{number}",
            "occurred_at": stamp,
            "properties": {"cart_id": f"k{number}", "product_id": "p1", "price": 30},
        }
    ).encode()


def churn_cost() -> None:
    """The worker's rate with the churn model on (it hosts the learner) and off."""
    config = GeneratorConfig(customers=400, days=120, seed=5, anonymous_share=0.0)
    lines = list(generate_stream(config))
    rates: dict[str, list[float]] = {"true": [], "false": []}
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        with kafka_broker(workdir / "broker") as broker, redis_server(workdir / "redis") as redis:
            for _ in range(2):
                for enabled in rates:
                    rate, _ = worker_throughput(
                        broker.address, redis.address, lines, workdir, churn__enabled=enabled
                    )
                    rates[enabled].append(rate)
    on, off = statistics.fmean(rates["true"]), statistics.fmean(rates["false"])
    figures = {
        "events": len(lines),
        "churn_on_events_per_s": [round(r) for r in rates["true"]],
        "churn_off_events_per_s": [round(r) for r in rates["false"]],
        "churn_cost": round(1 - on / off, 3),
    }
    print(json.dumps(figures))


def rendering_cost(pairs: int) -> None:
    """The worker's rate with the shipped templates (each send rendered) and with the same
    rules without them, alternating: on the worker's time per event, not the bare engine's."""
    config = GeneratorConfig(customers=400, days=120, seed=5, anonymous_share=0.0)
    lines = list(generate_stream(config))
    rates: dict[str, list[float]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        plain = workdir / "rules-without-templates"
        shutil.copytree(DEFAULT_RULES_DIR, plain)
        shutil.rmtree(plain / "templates")
        with kafka_broker(workdir / "broker") as broker, redis_server(workdir / "redis") as redis:
            for pair in range(pairs):
                # Swap which goes first each pair: the broker's log grows run after run.
                order = [("off", plain), ("on", DEFAULT_RULES_DIR)]
                for mode, directory in order[:: -1 if pair % 2 else 1]:
                    rate, _ = worker_throughput(
                        broker.address, redis.address, lines, workdir, rules_dir=str(directory)
                    )
                    rates[mode].append(rate)
    on, off = max(rates["on"]), max(rates["off"])
    pair_costs = sorted(round(1 - a / b, 3) for a, b in zip(rates["on"], rates["off"], strict=True))
    figures = {
        "events": len(lines),
        "rendering_on_events_per_s": [round(r) for r in rates["on"]],
        "rendering_off_events_per_s": [round(r) for r in rates["off"]],
        "worker_rendering_cost": round(1 - on / off, 3),
        "worker_rendering_cost_per_pair": pair_costs,
    }
    print(
        f"worker with templates {on:,.0f} events/s, without {off:,.0f} (best of {pairs}): "
        f"rendering costs {1 - on / off:.1%}; per pair {pair_costs}"
    )
    print(json.dumps(figures))


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=900)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rate", type=float, default=1000.0, help="events/s for latency")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument(
        "--churn-cost",
        action="store_true",
        help="only measure the worker with churn on and off, twice each, on a 120-day "
        "stream of 400 customers (labels come at the 90-day horizon)",
    )
    parser.add_argument(
        "--rendering-cost",
        type=int,
        metavar="PAIRS",
        default=0,
        help="only measure the worker with the shipped templates and without, PAIRS times "
        "each, alternating, on the churn-cost stream",
    )
    args = parser.parse_args()
    if args.churn_cost:
        churn_cost()
        return
    if args.rendering_cost:
        rendering_cost(args.rendering_cost)
        return
    config = GeneratorConfig(customers=args.customers, days=args.days, seed=5, anonymous_share=0.0)
    lines = list(generate_stream(config))
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        with kafka_broker(workdir / "broker") as broker, redis_server(workdir / "redis") as redis:
            raw_rate = broker_baseline(broker.address, lines)
            quix_rate = quix_throughput(broker.address, lines, workdir)
            replay_rate = replay_throughput(broker.address, lines)
            rate, actions = worker_throughput(broker.address, redis.address, lines, workdir)
            worker_ms, broker_ms = latency(
                broker.address, redis.address, workdir, args.rate, args.seconds
            )
    overhead = [ms - LATENESS * 1000 for ms in worker_ms]
    figures = {
        "events": len(lines),
        "actions": actions,
        "broker_records_per_s": round(raw_rate),
        "quix_records_per_s": round(quix_rate),
        "replay_events_per_s": round(replay_rate),
        "worker_events_per_s": round(rate),
        "worker_to_quix": round(rate / quix_rate, 3),
        "worker_to_replay": round(rate / replay_rate, 3),
        "latency_rate_per_s": args.rate,
        "latency_actions": len(worker_ms),
        "latency_p50_ms": round(_percentile(worker_ms, 0.5), 1),
        "latency_p99_ms": round(_percentile(worker_ms, 0.99), 1),
        "allowed_lateness_ms": LATENESS * 1000,
        "latency_p99_less_lateness_ms": round(_percentile(overhead, 0.99), 1),
        "latency_mean_less_lateness_ms": round(statistics.fmean(overhead), 1),
        "broker_latency_p50_ms": round(_percentile(broker_ms, 0.5), 1),
        "broker_latency_p99_ms": round(_percentile(broker_ms, 0.99), 1),
    }
    figures["latency_to_broker"] = round(
        figures["latency_p99_less_lateness_ms"] / max(figures["broker_latency_p99_ms"], 0.1), 2
    )
    print(
        f"events: {len(lines):,} ({args.customers} customers, {args.days} days), actions {actions:,}"
    )
    print(f"broker produce→consume: {raw_rate:,.0f} records/s")
    print(f"quix streams, stateful: {quix_rate:,.0f} records/s")
    print(f"replay (engines only):  {replay_rate:,.0f} events/s")
    print(
        f"worker end to end:      {rate:,.0f} events/s  (to quix {rate / quix_rate:.2f}, "
        f"to replay {rate / replay_rate:.2f})"
    )
    print(
        f"latency at {args.rate:.0f} events/s, {len(worker_ms)} actions: p50 "
        f"{figures['latency_p50_ms']} ms, p99 {figures['latency_p99_ms']} ms; less the "
        f"{LATENESS}s lateness p99 {figures['latency_p99_less_lateness_ms']} ms; broker alone "
        f"p99 {figures['broker_latency_p99_ms']} ms"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
