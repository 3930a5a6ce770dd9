"""One score per text, -1 (most negative) to 1, for Chinese and English.

``score_text`` picks the language (the one the event names, else the text's own script),
takes the language model's log-odds (``sentiment/chinese.py``, ``sentiment/english.py``)
times ``MODEL_SCALE``, adds the e-commerce terms' (``sentiment/lexicon.py``) times
``TERM_SCALE`` and returns ``tanh(total / 2)``, rounded to four places.

The Chinese model learned from reviews that are all either praise or complaint, so it
reads a plain question ("订单什么时候发货？") as mildly negative, down to -0.8. Halved (with
its terms), it keeps every sign and leaves neutral service questions above -0.5, while
the e-commerce terms still take a real complaint ("退款还没到，我要投诉") below -0.9.
A Chinese question with none of the terms ("怎么修改收货地址？") counts the model at half
again (``QUESTION_SCALE``): a scale keeps every sign, so accuracy is unchanged, and plain
questions, most of what tickets are, move towards neutral (mean -0.22 -> -0.14). The
measurements behind these choices are in docs/decisions.md ("Sentiment").
Only the first ``MAX_SCORED_CHARS`` characters are read, so no text costs more than a
bounded time. Other languages are not scored (``None``): a score that means nothing would
be worse than none.
"""

from __future__ import annotations

import math
import re
from typing import Final, Literal, NamedTuple

from sentiment.chinese import log_odds as chinese_log_odds
from sentiment.english import log_odds as english_log_odds
from sentiment.lexicon import find_terms

Language = Literal["zh", "en"]
#: How much each language's model and its e-commerce terms count (see the module).
MODEL_SCALE: Final[dict[str, float]] = {"zh": 0.5, "en": 1.0}
TERM_SCALE: Final[dict[str, float]] = {"zh": 0.5, "en": 1.0}
#: A Chinese question without e-commerce terms: the model counts this much again.
QUESTION_SCALE: Final = 0.5
_ASKS: Final = re.compile(r"[？?]|吗|请问|怎么|如何|什么时候|能否|是否|有没有|多久|哪里")
#: A text is read up to here (a ticket body can be long; its opening carries its tone).
MAX_SCORED_CHARS: Final = 2000


class TextScore(NamedTuple):
    #: -1..1: below 0 negative, above 0 positive, 0 neutral or unknown.
    score: float
    language: Language
    #: The e-commerce terms that moved the score (``sentiment/lexicon.py``).
    terms: tuple[str, ...]


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF


def detect_language(text: str, named: str | None = None) -> Language | None:
    """``zh`` or ``en`` from the language the event names (a BCP 47 tag such as ``zh-CN``),
    else from the text: Chinese when its Han characters are at least a quarter as many as
    its Latin letters (a Han character carries about what four letters do). Japanese kana
    or Korean hangul, or a named language other than these two: ``None``.

    >>> detect_language("iPhone 屏幕坏了"), detect_language("Where is my order?")
    ('zh', 'en')
    >>> detect_language("Bonjour", "fr-FR"), detect_language("配送が遅い")
    (None, None)
    """
    if named:
        primary = named.replace("_", "-").split("-")[0].lower()
        return primary if primary in ("zh", "en") else None  # type: ignore[return-value]
    han = latin = 0
    for char in text[:MAX_SCORED_CHARS]:
        if _is_cjk(char):
            han += 1
        elif "\u3040" <= char <= "\u30ff" or "\uac00" <= char <= "\ud7af":
            return None
        elif char.isascii() and char.isalpha():
            latin += 1
    return "zh" if han and han * 4 >= latin else "en"


def score_text(text: str, language: str | None = None) -> TextScore | None:
    """The text's sentiment, or ``None`` for an empty text or an unsupported language.

    >>> score_text("退款还没到，我要投诉").score < -0.9
    True
    >>> score_text("Arrived early, well packed, works perfectly!").score > 0.9
    True
    """
    text = text[:MAX_SCORED_CHARS].strip()
    if not text:
        return None
    found = detect_language(text, language)
    if found is None:
        return None
    model = chinese_log_odds(text) if found == "zh" else english_log_odds(text)
    hits = find_terms(text, found)
    if found == "zh" and not hits.terms and _ASKS.search(text):
        model *= QUESTION_SCALE
    total = MODEL_SCALE[found] * model + TERM_SCALE[found] * hits.weight
    return TextScore(round(math.tanh(total / 2), 4), found, hits.terms)
