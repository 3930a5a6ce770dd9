"""The Chinese model: a logistic regression over character 1- to 3-grams, learned from
labelled Chinese reviews (``sentiment/corpus.py``) by ``bench/train_sentiment.py`` and
shipped in this package as ``zh-chars.json.gz``; nothing is downloaded at run time.

A text's features are its distinct character n-grams (lower-cased, runs of white space
made one space, as scikit-learn's ``char`` analyser reads it), each worth ``1/sqrt(k)``
for the ``k`` of them the model knows (binary, L2-normalised). The score is the model's
log-odds of "positive". Characters, not words: no segmenter to load or to disagree with,
and Chinese sentiment sits mostly in two- and three-character words and their negations
(不好, 没收到), which the 2- and 3-grams hold whole.
"""

from __future__ import annotations

import gzip
import math
import re
from functools import cache
from importlib import resources
from typing import Final, NamedTuple

import orjson

MODEL_FILE: Final = "zh-chars.json.gz"
_RUNS_OF_SPACE: Final = re.compile(r"\s\s+")


class CharModel(NamedTuple):
    intercept: float
    min_n: int
    max_n: int
    weights: dict[str, float]
    #: What the model was learned from and how (the builder writes it).
    about: dict[str, object]


@cache
def model() -> CharModel:
    """The shipped model, read once."""
    raw = resources.files("sentiment").joinpath(MODEL_FILE).read_bytes()
    data = orjson.loads(gzip.decompress(raw))
    low, high = data["ngram_range"]
    return CharModel(float(data["intercept"]), int(low), int(high), data["weights"], data["about"])


def char_grams(text: str, min_n: int = 1, max_n: int = 3) -> list[str]:
    """The distinct character n-grams of ``text``, in order of first appearance.

    >>> char_grams("不好 用", 1, 2)
    ['不', '好', ' ', '用', '不好', '好 ', ' 用']
    """
    text = _RUNS_OF_SPACE.sub(" ", text.lower())
    grams: dict[str, None] = {}
    length = len(text)
    for n in range(min_n, max_n + 1):
        for start in range(length - n + 1):
            grams[text[start : start + n]] = None
    return list(grams)


def log_odds(text: str) -> float:
    """The model's log-odds that ``text`` is positive (0.0: it knows none of the text).

    The sum runs in the text's own order, so the same text always gives the same float.
    """
    found = model()
    weights = found.weights
    known = [weights[g] for g in char_grams(text, found.min_n, found.max_n) if g in weights]
    if not known:
        return 0.0
    return found.intercept + math.fsum(known) / math.sqrt(len(known))
