"""What ``score_text`` promises beyond accuracy: languages, bounds, terms and negation,
and the same score for the same text in every process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sentiment import MAX_SCORED_CHARS, detect_language, score_text
from sentiment.lexicon import find_terms

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "named", "expected"),
    [
        ("退款还没到，我要投诉", None, "zh"),
        ("iPhone 屏幕碎了", None, "zh"),
        ("My order never arrived", None, "en"),
        ("Where is my order?", "zh-CN", "zh"),
        ("anything", "en_GB", "en"),
        ("Bonjour", "fr", None),
        ("配送が遅いです", None, None),
        ("배송이 늦어요", None, None),
    ],
)
def test_the_language_is_the_named_one_else_the_texts_script(
    text: str, named: str | None, expected: str | None
) -> None:
    assert detect_language(text, named) == expected


def test_unsupported_or_empty_text_gets_no_score() -> None:
    assert score_text("   ") is None
    assert score_text("Très bien", "fr-FR") is None


def test_a_complaint_is_strongly_negative_and_praise_positive_in_both_languages() -> None:
    for text in ("退款还没到，我要投诉", "I was charged twice and nobody answers. Furious."):
        found = score_text(text)
        assert found is not None
        assert found.score <= -0.6, text
    for text in ("物流很快，质量非常好，好评", "Arrived early, well packed, works perfectly."):
        found = score_text(text)
        assert found is not None
        assert found.score >= 0.6, text


def test_terms_are_reported_and_a_negated_term_turns_around() -> None:
    assert find_terms("没有投诉", "zh").weight > 0
    assert find_terms("不满意", "zh").terms == ("不满意",)  # read whole, not as 不 + 满意
    assert find_terms("it is not broken", "en").terms == ("not:broken",)
    assert find_terms("no complaints at all", "en").terms == ("no complaints",)


def test_only_the_first_max_scored_chars_are_read() -> None:
    opening = "质量很好，" * (MAX_SCORED_CHARS // 5)
    assert score_text(opening + "垃圾！" * 5000) == score_text(opening + "很好" * 9000)


def test_the_same_text_scores_the_same_in_every_process() -> None:
    texts = ["退款还没到，我要投诉", "客服很耐心，问题解决了", "Never arrived. Refund please."]
    script = f"from sentiment import score_text\nprint([score_text(t) for t in {texts!r}])\n"
    runs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
        )
        runs.add(done.stdout)
    assert len(runs) == 1
