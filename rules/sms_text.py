"""SMS text: the operator rules Chinese carriers require, and how many segments a text
takes (what the provider bills).

>>> sms_segments("Your cart is waiting"), sms_segments("您的购物车还在等您"), sms_segments("x" * 161)
(1, 1, 2)
>>> with_operator_rules("购物车还在等您", OperatorRules(signature="Rapport"))
'【Rapport】购物车还在等您 回T退订'
"""

from __future__ import annotations

from typing import Final

from rules.journey_spec import OperatorRules

#: GSM 03.38: the basic character set (one septet each) and the extension table (two).
_GSM_BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED: Final = frozenset("^{}\\[~]|€\f")


def sms_segments(text: str) -> int:
    """Segments of ``text``: 160 GSM-7 characters in one (153 each when split), or 70
    UCS-2 characters (67 each when split) as soon as one character is outside GSM-7,
    which every Chinese character is."""
    septets = 0
    for char in text:
        if char in _GSM_BASIC:
            septets += 1
        elif char in _GSM_EXTENDED:
            septets += 2
        else:
            units = len(text.encode("utf-16-le")) // 2  # characters beyond the BMP take two
            return 1 if units <= 70 else -(-units // 67)
    return 1 if septets <= 160 else -(-septets // 153)


def with_operator_rules(text: str, rules: OperatorRules) -> str:
    """``text`` with 【signature】 first and the opt-out line last, unless already there."""
    signed = f"【{rules.signature}】"
    body = text.strip()
    if not body.startswith(signed):
        body = signed + body
    if "退订" not in body and rules.unsubscribe_line not in body:
        body = f"{body} {rules.unsubscribe_line}"
    return body
