"""Sentiment of what customers write, in Chinese and English, scored locally.

``score_text(text, language)`` gives -1..1 (``sentiment/scoring.py``). The Chinese model
and the English lexicon ship inside packages (this one, and ``vaderSentiment``); nothing is
downloaded at run time. Pure: no I/O beyond reading the packaged model once.
"""

from sentiment.scoring import MAX_SCORED_CHARS, TextScore, detect_language, score_text

__all__ = ["MAX_SCORED_CHARS", "TextScore", "detect_language", "score_text"]
