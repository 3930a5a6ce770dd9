"""The workers' HTTP endpoints: health, readiness, rules version, metrics, routed lookups."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rules.loader import load_rules
from state.profile import Profile
from state.read_model import read_model_fields
from streams.generator import GeneratorConfig, generate_stream
from streams.settings import load_settings
from tests.integration.kafka_io import create_topic, produce
from tests.integration.test_worker import _run_to_the_end
from tests.integration.worker_process import WorkerProcess, worker_env
from tests.servers import Server, free_port

PARTITIONS = 4


def _get(port: int, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as reply:
            body = reply.read()
            status = reply.status
    except urllib.error.HTTPError as error:
        body, status = error.read(), error.code
    if path == "/metrics":
        return status, body.decode()
    return status, json.loads(body)


def _wait_ready(port: int, worker: WorkerProcess, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not worker.exited:
        try:
            if _get(port, "/ready")[0] == 200:
                return
        except OSError:
            pass  # not listening yet
        time.sleep(0.3)
    raise AssertionError(f"not ready after {timeout}s:\n{worker.log()[-3000:]}")


@pytest.mark.integration
def test_any_worker_answers_a_profile_lookup_by_asking_the_owner(
    broker: Server, redis: Server, tmp_path: Path
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    create_topic(broker.address, f"{prefix}events", PARTITIONS)
    config = GeneratorConfig(customers=60, days=14, seed=11, anonymous_share=0.0)
    produced = produce(broker.address, f"{prefix}events", generate_stream(config))
    ports = [free_port(), free_port()]
    workers = [
        WorkerProcess(
            tmp_path,
            worker_env(
                broker.address,
                redis.address,
                prefix,
                PARTITIONS,
                worker__clock="events",
                worker__web_port=str(port),
                worker__web_host="127.0.0.1",
            ),
            name=f"w{port}",
        )
        for port in ports
    ]
    try:
        for port, worker in zip(ports, workers, strict=True):
            _wait_ready(port, worker)
        want, _ = _run_to_the_end(broker, prefix, produced, workers[0])
        for port, worker in zip(ports, workers, strict=True):
            _wait_ready(port, worker)  # a rebalance may have run meanwhile
        owned = {port: _get(port, "/ready")[1]["partitions"] for port in ports}
        assert sorted(owned[ports[0]] + owned[ports[1]]) == list(range(PARTITIONS)), owned

        decoder = msgspec.json.Decoder(Profile)
        customers = sorted(key for key in want.profiles if not key.startswith("anon:"))
        seen = set()
        for key in customers[:12]:
            expected = msgspec.json.decode(want.profiles[key])
            answers = [_get(port, f"/profiles/{key}") for port in ports]
            for status, body in answers:
                assert status == 200, body
                assert body["profile"] == expected
                assert body["read_model"] == read_model_fields(decoder.decode(want.profiles[key]))
            seen.add(answers[0][1]["partition"])
        # Both workers own some of the keys asked for: half the answers were forwarded.
        assert seen & set(owned[ports[0]]), (seen, owned)
        assert seen & set(owned[ports[1]]), (seen, owned)

        assert _get(ports[1], "/profiles/nobody-at-all")[0] == 404
        assert _get(ports[0], "/health") == (200, {"status": "alive"})
        version = load_rules(load_settings().rules_dir).version
        assert _get(ports[1], "/rules") == (200, {"version": version})
        status, text = _get(ports[0], "/metrics")
        samples = {
            sample.name: sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }
        assert status == 200
        assert samples["rapport_worker_ready"] == 1.0
        assert samples["rapport_partitions_assigned"] == len(owned[ports[0]])
        assert samples["rapport_redis_up"] == 1.0
        assert samples["rapport_rules_reload_failures_total"] == 0.0
        events_read = sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "rapport_events_total"
        )
        assert events_read > 0, "the worker counted no events"
    finally:
        for worker in workers:
            worker.stop()
