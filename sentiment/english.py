"""English: VADER (Hutto & Gilbert 2014, the ``vaderSentiment`` package, which ships its
lexicon), a rule-based reader of valence with negation, intensifiers, "but", capitals,
exclamation marks and emoji. Its compound score (-1..1) is turned into log-odds here so
that it adds up with the e-commerce terms (``sentiment/lexicon.py``) as the Chinese model's
does.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Final

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

#: Compound scores are kept inside this bound before the log-odds, which are then finite.
_EDGE: Final = 0.999


@cache
def _analyzer() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


def compound(text: str) -> float:
    """VADER's compound score of ``text``, -1 (most negative) to 1."""
    return float(_analyzer().polarity_scores(text)["compound"])


def log_odds(text: str) -> float:
    """``compound`` as log-odds: ``2 * atanh(c)``, so ``tanh(x / 2)`` gives it back.

    >>> round(log_odds("It is great, I love it!"), 2) > 2, log_odds("It is a chair.")
    (True, 0.0)
    """
    value = max(-_EDGE, min(_EDGE, compound(text)))
    return 2.0 * math.atanh(value)
