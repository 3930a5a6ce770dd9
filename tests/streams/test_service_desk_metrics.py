"""The service desk on /metrics: what a worker's engines counted, under names and labels
the dashboard's Service desk row reads, with bounded labels (no ticket or customer id)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from rules.loader import DEFAULT_RULES_DIR, load_rules
from streams.metrics import FunctionCollector, kpi_metrics
from streams.partitions import PartitionEngines

T0 = 1_767_600_000.0


def _event(kind: str, n: int, at: float, customer: str, **props: Any) -> bytes:
    return orjson.dumps(
        {
            "type": kind,
            "event_id": f"e{n}",
            "customer_id": customer,
            "occurred_at": datetime.fromtimestamp(at, UTC).isoformat(),
            "properties": props,
        }
    )


def test_routed_tickets_first_responses_and_sentiment_are_exposed_by_queue_band_and_segment() -> (
    None
):
    engines = PartitionEngines(load_rules(DEFAULT_RULES_DIR), partitions=1, coupon_shares=1)
    lines = []
    for n in range(40):
        at = T0 + n * 600
        subject = "退款还没到，我要投诉" if n % 2 else "When will my order ship?"
        lines.append(
            _event("support.ticket_opened", n, at, f"c{n % 7}", ticket_id=f"t{n}", subject=subject)
        )
        lines.append(
            _event(
                "support.ticket_replied",
                1000 + n,
                at + 1800,
                f"c{n % 7}",
                ticket_id=f"t{n}",
                author="agent",
            )
        )
    for raw in lines:
        engines.handle(0, raw, "test", T0 + 86_400)
    engines.tick(T0 + 86_400)

    def families() -> Any:
        yield from kpi_metrics(engines)

    registry = CollectorRegistry()
    registry.register(FunctionCollector(families))
    text = generate_latest(registry).decode()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }

    def value(name: str, **labels: str) -> float | None:
        return samples.get((name, tuple(sorted(labels.items()))))

    routed = "rapport_tickets_routed_total"
    assert value(routed, band="very_negative", category="refund", queue="complaints") == 20
    assert value(routed, band="neutral", category="delivery", queue="logistics") == 20
    responses = "rapport_queue_first_responses_total"
    assert value(responses, queue="complaints", sla="met") == 20
    assert value(responses, queue="logistics", sla="met") == 20
    assert (
        value("rapport_texts_read_total", band="very_negative", kind="ticket", language="zh") == 20
    )
    # Buckets below 0: no _sum or _count (OpenMetrics); +Inf is the count.
    assert value("rapport_customer_sentiment_bucket", le="+Inf", segment="none") == 40
    assert value("rapport_customer_sentiment_bucket", le="-0.6", segment="none") == 20
    labels = {v for (_, pairs) in samples for _, v in pairs}
    assert not [v for v in labels if v.startswith(("t", "c")) and v[1:].isdigit()]
    dashboard = orjson.loads(
        (
            Path(__file__).resolve().parents[2] / "config/grafana/dashboards/rapport.json"
        ).read_bytes()
    )
    row = [p for p in dashboard["panels"] if p.get("title") == "Service desk"]
    assert row, "the dashboard has a Service desk row"
