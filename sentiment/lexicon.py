"""E-commerce terms, in both languages, that general sentiment models under-read: 退款还没到,
差评, 投诉, "never arrived", "charged twice", "stopped working". Each is a weight in
log-odds, added to the model's; a term just after a negation (不, 没有, not, never…) counts
for minus half its weight ("没有投诉", "not broken"). Longer terms win over the shorter ones
inside them ("不满意" over "满意"), and a text's terms never overlap.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Final, NamedTuple

#: Chinese terms: weight in log-odds (negative: a complaint).
ZH_TERMS: Final[Mapping[str, float]] = {
    # complaints, bad reviews, fraud
    "投诉": -2.5, "差评": -2.5, "给差评": -3.0, "假货": -3.0, "骗子": -3.0, "骗人": -2.5,
    "别买": -2.5, "千万别买": -3.0, "不推荐": -2.0, "不满意": -2.5,

    # delivery
    "没收到": -2.5, "未收到": -2.5, "还没到": -2.0, "没到货": -2.5, "还没发货": -2.0,
    "不发货": -2.5, "一直不动": -2.0, "太慢": -1.5, "延迟": -1.0, "催了": -1.0,
    "发错": -2.0, "少发": -2.0, "漏发": -2.0, "丢件": -2.5,
    # the goods
    "破损": -2.0, "摔坏": -2.0, "碎了": -2.0, "坏了": -2.0, "质量问题": -2.0,
    "质量太差": -3.0, "质量差": -2.5, "用不了": -2.0, "不能用": -2.0, "不好用": -2.0,
    "过敏": -1.5, "褪色": -1.5, "掉色": -1.5, "开线": -1.5, "起球": -1.5, "色差": -1.5,
    "瑕疵": -1.5, "划痕": -1.5, "异味": -1.5, "漏液": -2.0, "二手": -1.5,
    # money and service
    "退款": -0.5, "退货": -0.7, "退款还没": -2.5, "不给退": -3.0, "拒绝退款": -3.0,
    "重复扣款": -2.5, "乱扣费": -2.5, "没人理": -2.5, "不理人": -2.5, "没人回复": -2.5,
    "不回复": -2.0, "态度差": -2.5, "态度恶劣": -3.0, "推脱": -2.0, "没解决": -2.0,
    # praise
    "好评": 2.5, "回购": 1.5, "点赞": 1.5,
    "物流很快": 1.5, "发货快": 1.5, "包装很好": 1.0, "性价比高": 1.5,
    "性价比很高": 1.5, "物有所值": 1.5, "值得购买": 1.5,
    "完好无损": 1.5, "解决了": 1.5,
    "划算": 1.5, "给力": 1.5,
}  # fmt: skip

#: English terms: weight in log-odds.
EN_TERMS: Final[Mapping[str, float]] = {
    # delivery
    "never arrived": -2.5, "never received": -2.5, "not received": -2.0, "never got": -2.0,
    "hasn't arrived": -2.0, "has not arrived": -2.0, "didn't arrive": -2.0,
    "did not arrive": -2.0, "not arrived": -2.0, "still waiting": -1.5, "still not": -1.0,
    "late": -0.7, "delayed": -0.8, "lost": -0.7, "wrong item": -2.0, "wrong size": -1.5,
    "wrong colour": -1.5, "wrong color": -1.5, "empty box": -2.5, "missing": -1.0,
    # the goods
    "broken": -1.5, "damaged": -1.5, "defective": -2.0, "faulty": -2.0, "cracked": -1.5,
    "stopped working": -2.0, "doesn't work": -2.0, "does not work": -2.0,
    "not working": -2.0, "won't turn on": -2.0, "dead on arrival": -2.5, "fell apart": -2.0,
    "leaks": -1.0, "leaking": -1.0, "poor quality": -1.5, "cheaply made": -1.5,
    "fake": -2.0, "counterfeit": -2.5, "rip-off": -2.5, "rip off": -2.5,
    # money and service
    "refund": -0.5, "money back": -1.0, "charged twice": -2.5, "double charged": -2.5,
    "overcharged": -2.0, "chargeback": -2.5, "complaint": -1.0, "complain": -1.0,
    "no answer": -1.5, "no reply": -1.5, "no response": -1.5, "nobody answers": -2.0,
    "ignored": -1.5, "escalate": -1.0, "never again": -2.0, "do not buy": -2.5,
    "don't buy": -2.5, "excuses": -1.0,
    # praise
    "arrived early": 1.5, "on time": 0.7, "well packed": 1.0, "fast delivery": 1.0,
    "quick delivery": 1.0, "fast shipping": 1.0, "exceeded my expectations": 2.5,
    "exceeded expectations": 2.5, "as described": 0.7, "reliable": 1.0,
    "works perfectly": 1.5, "highly recommend": 1.5, "would recommend": 1.5,
    "buy again": 1.0, "five stars": 2.0, "5 stars": 2.0, "problem solved": 1.5,
    "issue resolved": 1.5, "sorted out": 1.0, "no complaints": 1.5, "no problems": 1.0,
}  # fmt: skip

#: A negation just before a term turns it to minus this share of its weight.
NEGATED_SHARE: Final = -0.5
_ZH_NEGATIONS: Final = ("并没有", "没有", "并不", "不是", "不", "没", "未", "别", "无")
_EN_NEGATIONS: Final = (
    "not", "never", "no", "don't", "doesn't", "didn't", "isn't", "wasn't", "won't",
    "hasn't", "haven't", "without",
)  # fmt: skip


class TermHits(NamedTuple):
    #: The terms' weights summed, in log-odds.
    weight: float
    #: The terms found, in order; a negated one is written ``not:<term>``.
    terms: tuple[str, ...]


def _alternation(words: Iterable[str]) -> str:
    """Longest first: a regex alternation takes the first alternative that matches."""
    return "|".join(re.escape(w) for w in sorted(words, key=lambda w: (-len(w), w)))


@cache
def _pattern(language: str) -> re.Pattern[str]:
    """A term alone, or else a negation and a term: a term that starts with a negation
    ("不满意", "no complaints") is read whole, not as a negated shorter term."""
    if language == "zh":
        terms = _alternation(ZH_TERMS)
        return re.compile(f"({terms})|({_alternation(_ZH_NEGATIONS)})({terms})")
    terms = _alternation(EN_TERMS)
    return re.compile(
        rf"\b(?:({terms})|({_alternation(_EN_NEGATIONS)})\s+(?:\w+\s+)?({terms}))\b",
        re.IGNORECASE,
    )


def find_terms(text: str, language: str) -> TermHits:
    """The e-commerce terms in ``text`` (``language``: ``zh`` or ``en``).

    >>> find_terms("退款还没到，我要投诉", "zh")
    TermHits(weight=-5.0, terms=('退款还没', '投诉'))
    >>> find_terms("没有投诉，很不满意", "zh").terms
    ('not:投诉', '不满意')
    >>> find_terms("My parcel NEVER ARRIVED and the lid is not broken", "en")
    TermHits(weight=-1.75, terms=('never arrived', 'not:broken'))
    """
    terms = ZH_TERMS if language == "zh" else EN_TERMS
    weight, found = 0.0, []
    for match in _pattern(language).finditer(text):
        plain, negated = match.group(1), match.group(3)
        if plain is not None:
            key = plain if language == "zh" else plain.lower()
            weight += terms[key]
            found.append(key)
        else:
            key = negated if language == "zh" else negated.lower()
            weight += NEGATED_SHARE * terms[key]
            found.append("not:" + key)
    return TermHits(weight, tuple(found))
