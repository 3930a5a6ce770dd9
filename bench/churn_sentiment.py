"""Does what customers write help the churn model? Rolling ROC AUC with the sentiment
features and without them, on the same stream, in one run.

Usage: python -m bench.churn_sentiment [--customers N] [--days D] [--seed S]

The stream is the demo's (5,000 customers, 180 days: twice the churn horizon), the
model the shipped settings' (``churn:`` in config/defaults.yaml). "Without" reads
0 for ``sentiment_average`` and ``sentiment_recent`` in every snapshot, so the model
learns without them; everything else is equal. The generator assumes that customers who
are going to drift away write in a worse mood more often (``streams/generator_text.py``):
the gain measures what the model makes of that signal, not that the signal exists in a
real shop. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime

import orjson

import churn.tracker as tracker
from churn.features import FEATURES
from schemas.decode import DeadLetter, PartialEvent, decode_event
from schemas.events import Event
from state.profile import Profile
from streams.churn_backtest import evaluate
from streams.generator import GeneratorConfig, generate_stream
from streams.settings import load_settings

LATEST = datetime(2030, 1, 1, tzinfo=UTC)
SENTIMENT = [FEATURES.index("sentiment_average"), FEATURES.index("sentiment_recent")]


def _masked(original: Callable[..., list[float]]) -> Callable[..., list[float]]:
    def features(profile: Profile, at: float, *args: object, **kwargs: object) -> list[float]:
        values = original(profile, at, *args, **kwargs)
        for index in SENTIMENT:
            values[index] = 0.0
        return values

    return features


def auc(events: list[Event], masked: bool) -> dict[str, float | int]:
    original = getattr(tracker, "features")  # noqa: B009  (the name the tracker calls)
    if masked:
        setattr(tracker, "features", _masked(original))  # noqa: B010
    try:
        settings = load_settings()
        result = evaluate(events, settings.churn.config(), settings.churn.learner())
    finally:
        setattr(tracker, "features", original)  # noqa: B010
    judged = result.judged["all"]
    value: float = judged.auc.get()  # type: ignore[no-untyped-call]
    return {"roc_auc": round(value, 4), "labels": len(result.labels)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    config = GeneratorConfig(customers=args.customers, days=args.days, seed=args.seed)
    events: list[Event] = []
    for number, line in enumerate(generate_stream(config), start=1):
        item = decode_event(line, source="bench", position=number, latest_allowed=LATEST)
        if isinstance(item, PartialEvent):
            item = item.event
        if not isinstance(item, DeadLetter):
            events.append(item)
    with_text = auc(events, masked=False)
    without = auc(events, masked=True)
    print(f"churn ROC AUC with sentiment features:    {with_text['roc_auc']:.4f}")
    print(f"churn ROC AUC without sentiment features: {without['roc_auc']:.4f}")
    print(
        orjson.dumps(
            {
                "bench": "churn_sentiment",
                "customers": args.customers,
                "days": args.days,
                "with_sentiment": with_text,
                "without_sentiment": without,
                "auc_gain": round(float(with_text["roc_auc"]) - float(without["roc_auc"]), 4),
            }
        ).decode()
    )


if __name__ == "__main__":
    main()
