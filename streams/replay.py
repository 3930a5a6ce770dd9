"""The replay runner: files or stdin through the engine in one process, in event time.

The embedded default and the backtest tool. The clock comes from the events; outputs
(profile changes, dead letters, profile snapshots) are JSONL written in a fixed order,
so the same input always gives byte-identical files.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO, Literal

import msgspec
import orjson
from tqdm import tqdm

from churn.model import ChurnLearner
from churn.tracker import ChurnLabel, ChurnTracker
from engine import Engine, Output, Sink
from engine.driver import Driver
from engine.outputs import STREAM_OF, Dispatch, stream_of
from rules.journey_report import JourneyReport
from rules.loader import RuleSet
from rules.reloader import Reloads
from schemas.decode import DeadLetter, Ignored
from schemas.events import EVENT_TYPES
from state.kpis import KpiCounts
from state.population import Population, population
from state.profile import Profile
from state.stores import MemoryProfileStore
from streams.dead_letters import failed_letters
from streams.edge_counts import EdgeCounts
from streams.metrics import (
    MetricsServer,
    OwnerThreadCollector,
    churn_metrics,
    condition_metrics,
    engine_metrics,
    kpi_metrics,
    loyalty_metrics,
)
from streams.settings import Settings
from streams.sources.base import Decoded
from streams.sources.contract import read_contract
from streams.sources.files import CountingReader, OutputError, open_input
from streams.sources.online_retail import read_online_retail
from streams.sources.segment import read_segment

log = logging.getLogger("rapport.replay")

InputFormat = Literal["contract", "segment", "online-retail"]
READERS: dict[str, Callable[[BinaryIO, str, datetime | None, int], Iterator[Decoded]]] = {
    "contract": read_contract,
    "segment": read_segment,
    "online-retail": read_online_retail,
}


@dataclass
class ReplayOutputs:
    changes: Path | None = None
    dead_letters: Path | None = None
    profiles: Path | None = None
    #: Journey actions (sent, suppressed, deferred) and run milestones.
    actions: Path | None = None
    #: Erasure audit records (``state/audit.py``).
    audit: Path | None = None


@dataclass
class ReplaySummary:
    source: str
    records: int = 0
    events_by_type: dict[str, int] = field(default_factory=dict)
    dead_letters_by_reason: dict[str, int] = field(default_factory=dict)
    #: Records of calls Rapport does not model (Segment ``page``, ...), by name.
    ignored_by_name: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    late: int = 0
    merges: int = 0
    erasures: int = 0
    #: Profiles anonymised after the retention period without an event.
    anonymised: int = 0
    changes_by_kind: dict[str, int] = field(default_factory=dict)
    customers: int = 0
    anonymous_profiles: int = 0
    lifecycle: dict[str, int] = field(default_factory=dict)
    tiers: dict[str, int] = field(default_factory=dict)
    tags: dict[str, int] = field(default_factory=dict)
    first_event_at: str | None = None
    last_event_at: str | None = None
    seconds: float = 0.0
    rules_version: str = ""
    rules_reloaded: int = 0
    rules_rejected: int = 0
    #: "rule (file:line)" -> evaluations of its condition that failed and counted as false
    condition_failures: dict[str, int] = field(default_factory=dict)
    journeys: list[dict[str, object]] = field(default_factory=list)
    #: pool -> [codes left, codes in the pool]
    coupon_pools: dict[str, list[int]] = field(default_factory=dict)
    #: The churn model at the end: labels learned and how many churned, rolling ROC AUC
    #: and log loss (None before any scored label), drifts, customers by risk band.
    churn: dict[str, object] = field(default_factory=dict)
    #: Business KPIs (``state/kpis.py``): funnel, repeat purchase, support and ratings.
    kpis: dict[str, Any] = field(default_factory=dict)
    #: The points ledgers at the end (``state/population.py``); empty without a program.
    loyalty: dict[str, Any] = field(default_factory=dict)

    @property
    def events(self) -> int:
        return sum(self.events_by_type.values())

    @property
    def events_per_second(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0

    def deterministic(self) -> dict[str, object]:
        """Everything but timings: equal for equal inputs."""
        data = asdict(self)
        data.pop("seconds")
        return data

    def render(self) -> str:
        def block(title: str, counts: dict[str, int]) -> list[str]:
            if not counts:
                return [f"{title}: none"]
            width = max(len(k) for k in counts)
            return [f"{title}:"] + [f"  {k:<{width}}  {v:>10,}" for k, v in sorted(counts.items())]

        lines = [
            f"Replayed {self.source}: {self.records:,} records in {self.seconds:.1f}s "
            f"({self.events_per_second:,.0f} records/s), rules {self.rules_version}",
            f"Event time: {self.first_event_at or '-'} .. {self.last_event_at or '-'}",
            f"Events applied: {self.events:,}; duplicates skipped: {self.duplicates:,}; "
            f"late: {self.late:,}; identities merged: {self.merges:,}; erasures: {self.erasures:,}; "
            f"anonymised after retention: {self.anonymised:,}",
            f"Profiles: {self.customers:,} customers, {self.anonymous_profiles:,} anonymous",
        ]
        lines += block("Events by type", self.events_by_type)
        lines += block("Dead letters by reason", self.dead_letters_by_reason)
        if self.ignored_by_name:
            lines += block("Ignored (not modelled), by name", self.ignored_by_name)
        lines += block("Profile changes", self.changes_by_kind)
        lines += block("Customers by lifecycle stage", self.lifecycle)
        lines += block("Customers by tier", self.tiers)
        lines += block("Customers by tag", self.tags)
        lines += _render_kpis(self.kpis)
        lines += _render_service_desk(self.kpis.get("service_desk") or {})
        lines += _render_loyalty(self.loyalty)
        lines += _render_journeys(self.journeys)
        for pool, (left, size) in self.coupon_pools.items():
            lines.append(f"Coupon pool {pool}: {left:,} of {size:,} codes left")
        if self.churn:
            c = self.churn
            auc = "n/a" if c["roc_auc"] is None else f"{c['roc_auc']:.3f}"
            if c.get("auc_note"):
                auc += f" ({c['auc_note']})"
            loss = "n/a" if c["log_loss"] is None else f"{c['log_loss']:.3f}"
            lines.append(
                f"Churn model: {c['labels']:,} labels learned ({c['churned']:,} churned), "
                f"version {c['version']:,}, rolling ROC AUC {auc}, log loss {loss}, "
                f"drifts {c['drifts']}"
            )
            if c.get("not_ready"):
                lines.append(f"WARNING: {c['not_ready']}; every customer is unscored")
            lines += block("Customers by churn risk band", c["bands"])  # type: ignore[arg-type]
        if self.condition_failures:
            lines += block("Conditions that failed (counted as false)", self.condition_failures)
        if self.rules_reloaded or self.rules_rejected:
            lines.append(
                f"Rule reloads: {self.rules_reloaded:,} applied, {self.rules_rejected:,} rejected"
            )
        return "\n".join(lines)


def _render_service_desk(desk: dict[str, Any]) -> list[str]:
    """Tickets by category, queue and band; first response by queue; what customers wrote,
    by kind and language, by segment and by month."""
    tickets = desk.get("tickets") or {}
    if not tickets.get("by_queue") and not desk.get("texts"):
        return []

    def counts(row: dict[str, int]) -> str:
        return ", ".join(f"{name} {count:,}" for name, count in row.items()) or "none"

    def mean(value: float | None) -> str:
        return "n/a" if value is None else f"{value:+.2f}"

    lines = [
        "Service desk:",
        f"  tickets by category: {counts(tickets.get('by_category', {}))}",
        f"  tickets by queue: {counts(tickets.get('by_queue', {}))}",
        f"  tickets by sentiment band: {counts(tickets.get('by_band', {}))}",
    ]
    for queue, row in desk.get("first_response_by_queue", {}).items():
        met = "n/a" if row["met_share"] is None else f"{row['met_share']:.1%}"
        lines.append(
            f"  first response, queue {queue}: {met} within SLA of {row['responses']:,}, "
            f"mean {row['mean_hours']:.2f} h"
        )
    texts = desk.get("texts", {})
    if texts:
        lines.append(
            "  texts read (negative share): "
            + ", ".join(f"{k} {v['texts']:,} ({v['negative_share']:.0%})" for k, v in texts.items())
        )
    segments = desk.get("sentiment_by_segment", {})
    if segments:
        lines.append(
            "  customer sentiment by segment: "
            + ", ".join(f"{k} {mean(v['average'])} ({v['texts']:,})" for k, v in segments.items())
        )
    months = desk.get("sentiment_by_month", {})
    if months:
        lines.append(
            "  customer sentiment by month: "
            + ", ".join(f"{k} {mean(v['average'])}" for k, v in months.items())
        )
    return lines


def _render_loyalty(points: dict[str, Any]) -> list[str]:
    if not points:
        return []
    return [
        f"Loyalty points: {points['members']:,} members hold {points['outstanding']:,} points "
        f"(liability {points['liability']:,.2f}) and {points['pending']:,} pending; "
        f"earned {points['earned']:,}, redeemed {points['redeemed']:,} "
        f"({points['redemption_rate']:.1%}), expired {points['expired']:,} "
        f"({points['expiry_rate']:.1%}), taken back {points['clawed_back']:,} "
        f"(short {points['shortfall']:,}); redemptions refused {points['refused']:,}"
    ]


def _render_kpis(kpis: dict[str, Any]) -> list[str]:
    if not kpis:
        return []

    def share(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1%}"

    def number(value: float | None, form: str = ".2f") -> str:
        return "n/a" if value is None else format(value, form)

    funnel, conversion = kpis["funnel"], kpis["conversion"]
    steps = " -> ".join(f"{step} {count:,}" for step, count in funnel.items())
    rates = ", ".join(f"{pair} {share(rate)}" for pair, rate in conversion.items())
    lines = [
        "KPIs:",
        f"  funnel (purchase cycles): {steps}",
        f"  conversion: {rates}",
        f"  repeat purchase: {kpis['repeat_buyers']:,} of {kpis['buyers']:,} buyers "
        f"({share(kpis['repeat_purchase_rate'])}); first orders {kpis['first_orders']:,}, "
        f"second orders {kpis['second_orders']:,}",
        f"  support: {kpis['tickets_opened']:,} tickets, {kpis['complaints']:,} complaints "
        f"({number(kpis['complaints_per_100_orders'])} per 100 orders); "
        f"CSAT {number(kpis['csat_average'])} of {kpis['csat_ratings']:,} ratings; "
        f"NPS {number(kpis['nps'], '+.1f')} of {kpis['nps_ratings']:,} ratings",
    ]
    for priority, row in kpis["first_response_sla"].items():
        lines.append(
            f"  first response, {priority}: {share(row['met_share'])} within SLA of "
            f"{row['responses']:,}, mean {row['mean_hours']:.2f} h"
        )
    for journey, channels in kpis.get("journey_messages", {}).items():
        for channel, row in channels.items():
            lines.append(
                f"  messages of {journey}, {channel}: {row['delivered']:,} delivered, "
                f"opened {share(row['open_rate'])}, clicked {share(row['click_rate'])}, "
                f"{row['bounced']:,} bounced, {row['unsubscribed']:,} unsubscribes"
            )
    for channel, row in kpis.get("messages", {}).items():
        lines.append(
            f"  messages, {channel}: {row['delivered']:,} delivered, {row['bounced']:,} bounced "
            f"({share(row['bounce_rate'])}), opened {share(row['open_rate'])}, clicked "
            f"{share(row['click_rate'])}, {row['complained']:,} complaints, "
            f"{row['unsubscribed']:,} unsubscribes"
        )
    return lines


def _render_journeys(rows: list[dict[str, object]]) -> list[str]:
    if not rows:
        return ["Journeys: none"]
    lines = ["Journeys:"]
    for row in rows:
        suppressed = row["suppressed"]
        assert isinstance(suppressed, dict)
        why = ", ".join(f"{k} {v:,}" for k, v in suppressed.items()) or "none"
        lift = row["lift"]
        lift_text = "n/a" if not isinstance(lift, float) else f"{lift:+.1%}"
        lift_text += _conversion_text(row.get("lift_interval"))
        lines.append(
            f"  {row['journey']}: entered {row['entered']:,}, exited {row['exited']:,}, "
            f"completed {row['completed']:,}, sent {row['sent']:,}, deferred {row['deferred']:,}, "
            f"suppressed ({why}), converted {row['converted']:,} "
            f"(holdout {row['holdout_converted']:,} of {row['holdout_entered']:,}), lift {lift_text}"
        )
        extra = [_coupon_text(row.get("coupons"))]
        if row["holdout_entered"]:
            extra.insert(0, _revenue_text(row.get("revenue_per_customer")))
        arms = row.get("arms")
        treated = [a for a in arms if a != "holdout"] if isinstance(arms, dict) else []
        if isinstance(arms, dict) and len(treated) > 1:  # variants: each against the holdout
            for name in treated:
                arm = arms[name]
                extra.append(
                    f"variant {name}: converted {arm['converted']:,} of {arm['entered']:,}"
                    f"{_conversion_text(arm.get('lift_interval'))}; "
                    f"{_revenue_text(arm.get('revenue_per_customer'))}"
                )
        lines.extend(f"    {text}" for text in extra if text)
    totals = dict.fromkeys(("issued", "redeemed", "discount", "revenue"), 0.0)
    for row in rows:
        coupons = row.get("coupons")
        if isinstance(coupons, dict):
            for key in totals:
                totals[key] += float(coupons[key])
    if totals["issued"]:
        rate = totals["redeemed"] / totals["issued"]
        lines.append(
            f"  all journeys' coupons: {int(totals['issued']):,} issued, "
            f"{int(totals['redeemed']):,} redeemed ({rate:.1%}), discount "
            f"{totals['discount']:,.2f}, revenue of those orders {totals['revenue']:,.2f}"
        )
    return lines


def _conversion_text(interval: object) -> str:
    if not isinstance(interval, dict):
        return ""
    text = (
        f" (conversion {_pp(interval['difference'])}, 95% CI {_pp(interval['low'])}"
        f" to {_pp(interval['high'])}, "
    )
    more = interval["more_customers_needed"]
    if interval["significant"]:
        return text + "significant)"
    if more is None:
        return text + "no difference seen)"
    if isinstance(more, int) and more > 10_000_000:
        return text + "not significant: more than ten million customers at these rates)"
    return text + f"not significant yet: about {more:,} more customers at these rates)"


def _revenue_text(revenue: object) -> str:
    if not isinstance(revenue, dict):
        return "revenue per customer: too few runs for an interval"
    verdict = "significant" if revenue["significant"] else "not significant"
    return (
        f"revenue per customer {revenue['treated']:,.2f} vs holdout {revenue['holdout']:,.2f}:"
        f" {revenue['difference']:+,.2f} (95% CI {revenue['low']:+,.2f} to "
        f"{revenue['high']:+,.2f}, {verdict})"
    )


def _coupon_text(coupons: object) -> str:
    if not isinstance(coupons, dict) or not coupons["issued"]:
        return ""
    rate = coupons["redemption_rate"]
    return (
        f"coupons: {coupons['issued']:,} issued, {coupons['redeemed']:,} redeemed "
        f"({float(rate or 0):.1%}), discount {coupons['discount']:,.2f}, "
        f"revenue of those orders {coupons['revenue']:,.2f}"
    )


def _pp(share: object) -> str:
    """A difference of two rates in percentage points: +0.8 pp."""
    return f"{float(share) * 100:+.1f} pp" if isinstance(share, int | float) else "?"


def _iso(ts: float) -> str | None:
    if ts == float("-inf"):
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat()


_ENCODER = msgspec.json.Encoder()


def profile_json(profile: Profile | None) -> bytes:
    """Canonical JSON: sorted keys, so equal profiles give equal bytes whatever the fill order."""
    return orjson.dumps(
        msgspec.to_builtins(profile), option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
    )


def replay(
    input_name: str,
    *,
    input_format: InputFormat,
    settings: Settings,
    rules: RuleSet,
    outputs: ReplayOutputs,
    now: datetime,
    progress: bool = True,
    reload_rules: Callable[[], RuleSet | None] | None = None,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
) -> ReplaySummary:
    """Run one input through a fresh engine; write outputs; return the summary.

    ``metrics_port``: serve Prometheus ``/metrics`` there while the replay runs (the
    families the worker has for its engines; scrapes are answered between batches)."""
    learner = settings.churn.learner() if settings.churn.enabled else None
    churn = ChurnTracker(settings.churn.config(), learner.scorer) if learner else None
    engine = Engine(
        MemoryProfileStore(),
        rules,
        settings.profile,
        settings.engine.engine_config(),
        churn=churn,
    )
    latest = now.timestamp() + settings.engine.max_clock_skew_seconds
    latest_allowed = datetime.fromtimestamp(latest, UTC)
    summary = ReplaySummary(source=input_name, rules_version=rules.version)
    edge = EdgeCounts()
    report = JourneyReport()
    reloads = Reloads()
    started = time.perf_counter()
    stream, counter, total = open_input(input_name)
    with ExitStack() as stack:
        stack.enter_context(stream)
        collector = None
        if metrics_port is not None:
            collector = _serve_metrics(stack, engine, edge, learner, metrics_port, metrics_host)
        changes_out = _open(stack, outputs.changes)
        dead_out = _open(stack, outputs.dead_letters)
        actions_out = _open(stack, outputs.actions)
        audit_out = _open(stack, outputs.audit)
        profiles_out = _open(stack, outputs.profiles)  # opened now: a bad path fails first

        def write_dead(letters: list[DeadLetter]) -> None:
            if dead_out is not None:
                for letter in letters:
                    dead_out.write(_ENCODER.encode(letter) + b"\n")

        files = {"changes": changes_out, "actions": actions_out, "audit": audit_out}
        sinks: list[Sink] = [edge, FileSink(files), report]
        if learner is not None:
            sinks.append(LearnerSink(learner))
        driver = Driver(engine, sinks)
        bar = stack.enter_context(
            tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                disable=not progress or total is None,
                desc="replay",
                mininterval=0.5,
                leave=False,
            )
        )
        reported = count = failed = 0
        records = READERS[input_format](
            stream, input_name, latest_allowed, settings.engine.max_record_bytes
        )
        for item in records:
            if isinstance(item, DeadLetter):
                edge.count_dead(item.reason)
                if dead_out is not None:
                    dead_out.write(_ENCODER.encode(item) + b"\n")
                if item.reason != "partial":  # its event follows: one record, counted once
                    count += 1
                continue
            count += 1
            if isinstance(item, Ignored):
                edge.count_ignored(item.name)
                continue
            driver.apply(item)  # applies whatever the watermark has passed
            if engine.stats.failed_events != failed:  # an event raised: a bug, set aside
                failed = engine.stats.failed_events
                write_dead(failed_letters(engine, edge))
            if count % 8192 == 0:
                if counter is not None:
                    bar.update(counter.consumed - reported)
                    reported = counter.consumed
                if reload_rules is not None:
                    _reload(engine, reload_rules, reloads)
                if collector is not None and collector.wanted:
                    collector.serve()
        summary.records = count
        # End of input (``engine/driver.py``): every review up to the newest event fires
        # and every profile is brought to that moment (the snapshot time).
        driver.end()
        write_dead(failed_letters(engine, edge))
        if collector is not None:
            collector.close()
        if profiles_out is not None:
            for key in engine.store.sorted_keys():
                profiles_out.write(profile_json(engine.store.get(key)) + b"\n")
    summary.seconds = time.perf_counter() - started
    summary.rules_reloaded, summary.rules_rejected = reloads.reloaded, reloads.rejected
    summary.rules_version = engine.rules.version
    _fill_summary(summary, engine, edge, driver.first_at)
    if learner is not None:
        horizon_days = settings.churn.config().horizon / 86_400
        summary.churn = _churn_summary(engine, learner, horizon_days)
        if summary.churn["not_ready"]:
            log.warning("%s", summary.churn["not_ready"])
    summary.journeys = report.rows()
    return summary


def _open(stack: ExitStack, path: Path | None) -> IO[bytes] | None:
    if path is None:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return stack.enter_context(path.open("wb", buffering=1 << 20))
    except OSError as error:
        raise OutputError(f"{path}: cannot write: {error.strerror or error}") from error


class FileSink:
    """Each output as a JSON line in the file of its stream (``engine/outputs.py``), if
    one is given: profile changes, journey actions and milestones, erasure audit."""

    def __init__(self, files: Mapping[str, IO[bytes] | None]) -> None:
        self._files = {stream: out for stream, out in files.items() if out is not None}
        unknown = set(self._files) - set(STREAM_OF.values())
        if unknown:
            raise ValueError(f"not output streams: {sorted(unknown)}")

    def write(self, output: Output) -> None:
        out = self._files.get(stream_of(output))
        if out is not None:
            out.write(_ENCODER.encode(output) + b"\n")

    def flush(self) -> None:
        for out in self._files.values():
            out.flush()


class LearnerSink(Dispatch):
    """The in-process churn learner: labels are learned as they come out."""

    def __init__(self, learner: ChurnLearner) -> None:
        super().__init__({ChurnLabel: self._learn})
        self.learner = learner

    def _learn(self, label: ChurnLabel) -> None:
        learner = self.learner
        if learner.learn(label.values, label.churned, label.score):
            log.warning(
                "churn model drift detected (ADWIN) at %s, model version %d, rolling ROC AUC %.3f",
                _iso(label.at),
                learner.version,
                learner.health.roc_auc,
            )


def _reload(engine: Engine, reload_rules: Callable[[], RuleSet | None], reloads: Reloads) -> None:
    """Swap in a changed, valid rule set; keep the last good one when the change is invalid."""
    fresh = reloads.take(reload_rules, engine.rules)
    if fresh is not None:
        engine.swap_rules(fresh)


def _churn_summary(engine: Engine, learner: ChurnLearner, horizon_days: float) -> dict[str, object]:
    health = learner.health
    judged = health.labels - health.unscored
    auc_note = health.auc_unknown()
    bands = Counter[str]()
    for key in engine.store.sorted_keys():
        profile = engine.store.get(key)
        if profile is not None and profile.customer_id is not None:
            band = profile.churn.band or ("unscored" if profile.orders.count else "no orders")
            bands[band] += 1
    return {
        "labels": health.labels,
        "churned": health.churned,
        "version": learner.version,
        "roc_auc": round(health.roc_auc, 4) if auc_note is None else None,
        "auc_note": auc_note,
        "log_loss": round(health.mean_log_loss, 4) if judged else None,
        "not_ready": learner.not_ready_reason(horizon_days),
        "drifts": health.drifts,
        "bands": dict(sorted(bands.items())),
    }


def _fill_summary(summary: ReplaySummary, engine: Engine, edge: EdgeCounts, first: float) -> None:
    stats, store = engine.stats, engine.store
    summary.events_by_type = dict(sorted(stats.by_type.items()))
    summary.dead_letters_by_reason = dict(sorted(edge.dead_letters_by_reason.items()))
    summary.ignored_by_name = dict(sorted(edge.ignored_by_name.items()))
    summary.duplicates, summary.late = stats.duplicates, stats.late
    summary.merges, summary.erasures = stats.merges, stats.erasures
    summary.anonymised = stats.anonymised
    summary.changes_by_kind = dict(sorted(edge.changes_by_kind.items()))
    base, tags = Population(), Counter[str]()
    for key in store.sorted_keys():
        profile = store.get(key)
        assert profile is not None
        base.add(profile)
        if profile.customer_id is not None:
            tags.update(profile.tags)
    summary.customers, summary.anonymous_profiles = base.customers, base.visitors
    program = engine.rules.loyalty
    if program is not None:
        summary.loyalty = base.points_summary(program.point_value)
    summary.lifecycle, summary.tiers, summary.tags = dict(base.stages), dict(base.tiers), dict(tags)
    summary.kpis = {
        **engine.kpis.counts.summary(),
        "buyers": base.buyers,
        "repeat_buyers": base.repeat_buyers,
        "repeat_purchase_rate": base.repeat_rate,
    }
    summary.first_event_at = _iso(first) if first != float("inf") else None
    summary.last_event_at = _iso(engine.newest_event_time)
    summary.coupon_pools = {name: list(counts) for name, counts in engine.coupon_pools().items()}
    summary.condition_failures = {
        f"{c.rule} ({c.where})": c.failures for c in engine.rules.conditions() if c.failures
    }


class _ReplayTallies:
    """The replay engine seen as the worker's ``PartitionEngines`` are, for ``/metrics``."""

    def __init__(self, engine: Engine, edge: EdgeCounts) -> None:
        self._engine, self._edge = engine, edge

    @property
    def counts(self) -> EdgeCounts:
        by_type = self._engine.stats.by_type
        self._edge.events_by_class = {EVENT_TYPES[kind]: n for kind, n in by_type.items()}
        return self._edge

    def duplicates(self) -> int:
        return self._engine.stats.duplicates

    def late(self) -> int:
        return self._engine.stats.late

    def profiles(self) -> int:
        return len(self._engine.store)

    def kpis(self) -> KpiCounts:
        return self._engine.kpis.counts

    def population(self) -> Population:
        return population(self._engine.store.profiles())


def _serve_metrics(
    stack: ExitStack,
    engine: Engine,
    edge: EdgeCounts,
    learner: ChurnLearner | None,
    port: int,
    host: str,
) -> OwnerThreadCollector:
    tallies = _ReplayTallies(engine, edge)

    def families() -> Iterator[Any]:
        yield from engine_metrics(tallies)
        yield from kpi_metrics(tallies)
        yield from condition_metrics(engine.rules)
        yield from loyalty_metrics(engine.rules)
        if learner is not None:
            yield from churn_metrics(learner.scorer(), learner)

    collector = OwnerThreadCollector(families)
    server = MetricsServer(collector, port, host)
    stack.callback(server.close)
    stack.callback(collector.close)
    log.info("serving /metrics on %s:%d while the replay runs", host, server.port)
    return collector


def profiles_of(engine: Engine) -> list[bytes]:
    """Every profile's JSON, sorted by key: the comparable final state."""
    return [profile_json(engine.store.get(key)) for key in engine.store.sorted_keys()]


__all__ = ["CountingReader", "InputFormat", "ReplayOutputs", "ReplaySummary", "replay"]
