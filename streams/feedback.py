"""Delivery feedback coming in: the signed receiver behind ``POST /feedback``.

Mail and SMS providers (or the shop's own relay of their webhooks) post what became of
a message as contract events of the ``message.*`` family, one JSON object per line:
``message.delivered``, ``message.bounced`` (``bounce: hard|soft``), ``message.complained``,
``message.opened``, ``message.clicked``, ``message.unsubscribed``. Each request is signed
as Rapport signs its own webhooks (``streams/delivery.py``): headers ``Idempotency-Key``,
``X-Rapport-Timestamp`` (Unix seconds, at most 5 minutes from the worker's clock) and
``X-Rapport-Signature: v2=<hex HMAC-SHA256 of "<timestamp>.<key>.<body>">`` under the
secret in ``worker.feedback_secret_env``. A request is taken whole or not at all: one
line that is not a valid message event refuses it (400, with each line's problem), so
the sender can fix and resend it; accepted events go to the events topic, keyed like
every event, and reach their profile as any other event does.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

from schemas.decode import DeadLetter, PartialEvent, decode_event
from schemas.events import EVENT_TYPES
from streams.delivery import TIMESTAMP_TOLERANCE_SECONDS, signature

#: The event kinds the receiver takes.
FEEDBACK_KINDS = frozenset(tag for tag in EVENT_TYPES if tag.startswith("message."))
#: A request body larger than this is refused (a provider batches a few hundred events).
MAX_FEEDBACK_BYTES = 1 << 20


class FeedbackRefused(Exception):
    def __init__(self, status: int, detail: str, problems: list[str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.problems = problems or []


@dataclass(frozen=True)
class FeedbackRecord:
    """One accepted event: its partition key and its line, as received."""

    key: bytes
    value: bytes


def verify(
    body: bytes,
    timestamp: str | None,
    idempotency_key: str | None,
    signed: str | None,
    secret: bytes,
    now: float,
) -> None:
    """Raise ``FeedbackRefused`` (401) unless the request is signed with ``secret``."""
    if not timestamp or not idempotency_key or not signed:
        raise FeedbackRefused(
            401, "sign the request: Idempotency-Key, X-Rapport-Timestamp, X-Rapport-Signature"
        )
    try:
        moment = float(timestamp)
    except ValueError:
        raise FeedbackRefused(
            401, f"X-Rapport-Timestamp {timestamp[:20]!r} is not a number"
        ) from None
    if abs(now - moment) > TIMESTAMP_TOLERANCE_SECONDS:
        raise FeedbackRefused(401, "X-Rapport-Timestamp is more than 5 minutes off")
    expected = signature(secret, timestamp, idempotency_key, body)
    if not hmac.compare_digest(expected.encode(), signed.encode()):
        raise FeedbackRefused(401, "X-Rapport-Signature does not match the body")


def feedback_records(body: bytes, now: float, max_skew_seconds: float) -> list[FeedbackRecord]:
    """The events of a verified body; ``FeedbackRefused`` (400) naming every bad line."""
    if len(body) > MAX_FEEDBACK_BYTES:
        raise FeedbackRefused(413, f"at most {MAX_FEEDBACK_BYTES:,} bytes per request")
    latest = datetime.fromtimestamp(now + max_skew_seconds, UTC)
    records: list[FeedbackRecord] = []
    problems: list[str] = []
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        item = decode_event(line, source="feedback", position=number, latest_allowed=latest)
        if isinstance(item, PartialEvent):
            item = item.event
        if isinstance(item, DeadLetter):
            problems.append(f"line {number}: {item.reason}: {item.detail}")
            continue
        kind = type(item).__struct_config__.tag
        if kind not in FEEDBACK_KINDS:
            allowed = ", ".join(sorted(FEEDBACK_KINDS))
            problems.append(f"line {number}: {kind} is not delivery feedback (send {allowed})")
            continue
        records.append(FeedbackRecord(item.profile_key.encode(), line.strip()))
    if problems:
        raise FeedbackRefused(400, f"{len(problems)} line(s) refused; nothing taken", problems)
    if not records:
        raise FeedbackRefused(400, "no events in the body (one JSON object per line)")
    return records
