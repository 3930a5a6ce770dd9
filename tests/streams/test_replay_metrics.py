"""Replay serves /metrics while it runs, and its summary carries the business KPIs."""

from __future__ import annotations

import os
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rules.loader import DEFAULT_RULES_DIR, load_rules
from streams.generator import GeneratorConfig, generate_stream
from streams.replay import ReplayOutputs, ReplaySummary, replay
from streams.settings import load_settings
from tests.servers import free_port

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _replay(path: Path, **options: Any) -> ReplaySummary:
    return replay(
        str(path),
        input_format="contract",
        settings=load_settings(),
        rules=load_rules(DEFAULT_RULES_DIR),
        outputs=ReplayOutputs(),
        now=NOW,
        progress=False,
        **options,
    )


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as reply:
        return str(reply.read().decode())


def _value(text: str, sample: str) -> float:
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{sample} not in the scrape")


def test_replay_serves_metrics_while_it_runs(tmp_path: Path) -> None:
    lines = list(generate_stream(GeneratorConfig(customers=600, days=40, seed=5)))
    assert len(lines) > 20_000
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    port = free_port()
    result: list[ReplaySummary] = []

    def run() -> None:
        result.append(_replay(fifo, metrics_port=port, metrics_host="127.0.0.1"))

    runner = threading.Thread(target=run)
    runner.start()
    with fifo.open("wb") as pipe, ThreadPoolExecutor(1) as pool:
        pipe.write(b"\n".join(lines[:10_000]) + b"\n")
        pipe.flush()
        # The replay now waits for input; a scrape is answered at its next checkpoint
        # (every 8,192 records), which the next lines reach.
        scraped = pool.submit(_scrape, port)
        pipe.write(b"\n".join(lines[10_000:17_000]) + b"\n")
        pipe.flush()
        text = scraped.result(timeout=60)
        assert not result, "the scrape was answered while the replay ran"
        pipe.write(b"\n".join(lines[17_000:]) + b"\n")
    runner.join(timeout=120)
    (summary,) = result
    events = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("rapport_events_total{")
    )
    assert 8_192 <= events <= 17_000
    assert _value(text, 'rapport_funnel_steps_total{step="viewed"}') > 0
    assert _value(text, "rapport_customers") > 0
    assert "rapport_churn_model_ready 0.0" in text
    assert summary.records == len(lines)


def test_the_replay_summary_has_the_kpis(tmp_path: Path) -> None:
    stream = tmp_path / "stream.jsonl"
    stream.write_bytes(
        b"\n".join(generate_stream(GeneratorConfig(customers=300, days=60, seed=8))) + b"\n"
    )
    summary = _replay(stream)
    kpis = summary.kpis
    funnel = kpis["funnel"]
    assert funnel["viewed"] >= funnel["carted"] > 0
    assert funnel["ordered"] > 0
    assert kpis["first_orders"] == kpis["buyers"]
    assert kpis["second_orders"] == kpis["repeat_buyers"]
    assert 0 < kpis["repeat_purchase_rate"] < 1
    assert 1 <= kpis["csat_average"] <= 5
    assert -100 <= kpis["nps"] <= 100
    assert set(kpis["first_response_sla"]) <= {"low", "normal", "high", "urgent"}
    text = summary.render()
    assert "KPIs:" in text
    assert "repeat purchase:" in text
    assert "first response, urgent" in text
