"""What an engine is configured with, and what it counts."""

from __future__ import annotations

from dataclasses import dataclass, field

from rules.message_context import DEVELOPMENT_KEY


@dataclass(frozen=True)
class EngineConfig:
    #: Events older than the newest event time minus this are counted as late.
    allowed_lateness_seconds: float = 3600.0
    dedup_max_entries: int = 1_000_000
    dedup_window_seconds: float = 86_400.0
    #: Signs the unsubscribe links of rendered messages (``messages.signing_key``).
    message_key: bytes = field(default=DEVELOPMENT_KEY, repr=False)
    #: Score support text for sentiment (``engine/service_desk.py``); off: only scores
    #: that come with the events count.
    score_sentiment: bool = True


@dataclass
class EngineStats:
    """Counters the edge turns into metrics and summaries."""

    processed: int = 0
    duplicates: int = 0
    late: int = 0
    merges: int = 0
    erasures: int = 0
    #: Profiles anonymised after ``privacy.retention_days`` without an event.
    anonymised: int = 0
    reviews: int = 0
    #: Events whose application raised (set aside as failed, see ``Engine.drain_failed``),
    #: and timers whose firing raised (skipped).
    failed_events: int = 0
    failed_timers: int = 0
    #: Identity across partitions: profiles asked for, handed over, taken in, dropped,
    #: and events sent on to the partition that homes their profile.
    handoffs_requested: int = 0
    handoffs_answered: int = 0
    handoffs_taken: int = 0
    handoffs_dropped: int = 0
    forwarded: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
