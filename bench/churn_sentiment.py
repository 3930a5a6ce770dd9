"""Does what customers write help the churn model? ROC AUC with the sentiment features
and without them, on the same labels, in one run.

Usage: python -m bench.churn_sentiment [--customers N] [--days D] [--seed S] [--warm-up W]

The stream is the demo's (5,000 customers, 180 days: twice the churn horizon). One run of
the engine with churn tracking gives every label the stream holds (a snapshot's feature
values and whether the customer churned). Then the shipped model (``churn/model.py``) is
taught those labels in their order twice, each label scored before it is learned
(progressive validation): once as they are, once with 0 for ``sentiment_average`` and
``sentiment_recent``. AUC is over the labels after the first ``--warm-up``. The
generator assumes that customers who are going to drift away write in a worse mood more
often (``streams/generator_text.py``): the gain measures what the model makes of that
signal, not that a real shop has it. The last line is one JSON object.
"""

from __future__ import annotations

import argparse

import orjson
from sklearn.metrics import roc_auc_score

from bench.demo_events import decoded_events
from churn.features import FEATURES
from churn.model import ChurnLearner
from streams.churn_backtest import evaluate
from streams.generator import GeneratorConfig
from streams.settings import load_settings

SENTIMENT = (FEATURES.index("sentiment_average"), FEATURES.index("sentiment_recent"))


def progressive_auc(
    labels: list[tuple[list[float], bool]], masked: bool, warm_up: int, learning_rate: float
) -> float:
    learner = ChurnLearner(min_labels=1, learning_rate=learning_rate)
    truth, scores = [], []
    for number, (values, churned) in enumerate(labels):
        if masked:
            values = [0.0 if i in SENTIMENT else v for i, v in enumerate(values)]
        score = learner.scorer().score(values)
        if number >= warm_up and score is not None:
            truth.append(churned)
            scores.append(score)
        learner.learn(values, churned, score)
    return float(roc_auc_score(truth, scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--warm-up", type=int, default=1000)
    args = parser.parse_args()
    config = GeneratorConfig(customers=args.customers, days=args.days, seed=args.seed)
    events = decoded_events(config)
    settings = load_settings()
    result = evaluate(events, settings.churn.config(), settings.churn.learner())
    labels = [(list(label.values), label.churned) for label in result.labels]
    with_texts = sum(1 for values, _ in labels if values[SENTIMENT[1]] != 0.0)
    rate = settings.churn.learning_rate
    with_sentiment = progressive_auc(labels, False, args.warm_up, rate)
    without = progressive_auc(labels, True, args.warm_up, rate)
    print(f"{len(labels):,} labels, {with_texts:,} of customers who had written something")
    print(f"churn ROC AUC with sentiment features:    {with_sentiment:.4f}")
    print(f"churn ROC AUC without sentiment features: {without:.4f}")
    print(
        orjson.dumps(
            {
                "bench": "churn_sentiment",
                "customers": args.customers,
                "days": args.days,
                "labels": len(labels),
                "labels_with_text": with_texts,
                "roc_auc_with_sentiment": round(with_sentiment, 4),
                "roc_auc_without_sentiment": round(without, 4),
                "auc_gain": round(with_sentiment - without, 4),
            }
        ).decode()
    )


if __name__ == "__main__":
    main()
