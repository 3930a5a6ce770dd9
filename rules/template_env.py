"""The sandbox a marketer's message template runs in: Liquid with hard limits, and the
filters that format money and dates for the customer.

Liquid (python-liquid) does not evaluate code: a template reads the names it is given,
loops over them and filters them, nothing else. On top of that every render is bounded
(loop iterations, output size, nesting, the size of what ``assign``/``capture`` keep),
``include`` and ``render`` are taken away (a template reads no files), a name or filter
that does not exist is an error rather than an empty string, and HTML parts escape
every value unless the marketer marks it ``| safe``.

>>> env = template_environment(html=False)
>>> env.from_string("{{ total | money }}").render(total=12.5, locale="de-DE", currency="EUR")
'12,50\\xa0€'
>>> env.from_string("{{ at | datetime: 'short' }}").render(
...     at=0.0, locale="zh-CN", time_zone="Asia/Shanghai")
'1970/1/1 08:00'
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_percent
from liquid import Environment, RenderContext, StrictUndefined
from liquid.exceptions import FilterArgumentError
from liquid.filter import with_context

#: Iterations of all loops of one render together: a cart has at most 50 lines.
LOOP_ITERATION_LIMIT = 1_000
#: Characters one part may produce (an email's HTML body is the largest part).
OUTPUT_LIMIT = 100_000
#: Nesting of blocks (``if`` inside ``for`` inside ...).
BLOCK_NESTING_LIMIT = 30
#: Characters that ``assign`` and ``capture`` may hold together.
LOCAL_NAMESPACE_LIMIT = 20_000
#: Tags that read other files: not available to templates.
_FILE_TAGS = ("include", "render")
_DATE_FORMATS = ("short", "medium", "long", "full")


class _Sandbox(Environment):
    loop_iteration_limit = LOOP_ITERATION_LIMIT
    output_stream_limit = OUTPUT_LIMIT
    block_nesting_limit = BLOCK_NESTING_LIMIT
    local_namespace_limit = LOCAL_NAMESPACE_LIMIT
    context_depth_limit = 10


@lru_cache(maxsize=64)
def babel_locale(tag: str | None) -> Locale:
    """The Babel locale of a BCP 47 tag (``zh-CN``); English when unknown."""
    if tag:
        try:
            return Locale.parse(tag.replace("-", "_"))
        except (UnknownLocaleError, ValueError, TypeError):
            pass
    return Locale("en")


@lru_cache(maxsize=256)
def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ValueError, OSError):  # validated on the contract; a stale profile still renders
        return ZoneInfo("UTC")


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FilterArgumentError(
            f"{what} expects a number, got {type(value).__name__} {value!r}", token=None
        )
    return float(value)


@with_context
def money(value: object, *, context: RenderContext) -> str:
    """``{{ cart.value | money }}``: the amount in the shop's currency, for the customer's
    locale (``£12.50``, ``12,50 €``, ``US$12.50``)."""
    if value is None:  # a nil (an order without a time, no cart): nothing, like Liquid's own
        return ""
    amount = _number(value, "money")
    return _money(amount, str(context.resolve("currency", default="GBP")), _locale(context))


@lru_cache(maxsize=4096)
def _money(amount: float, currency: str, locale: str) -> str:
    """Formatting is the costly part of a message (Babel reads its locale data each time),
    and prices repeat: cached."""
    return str(format_currency(amount, currency, locale=babel_locale(locale)))


@with_context
def percent(value: object, *, context: RenderContext) -> str:
    """``{{ coupon.percent | percent }}``: 10 -> ``10%`` as the customer's locale writes it."""
    if value is None:
        return ""
    return _percent(_number(value, "percent") / 100, _locale(context))


@lru_cache(maxsize=1024)
def _percent(share: float, locale: str) -> str:
    return str(format_percent(share, locale=babel_locale(locale)))


@with_context
def local_datetime(value: object, fmt: object = "medium", *, context: RenderContext) -> str:
    """``{{ coupon.valid_until | datetime: 'short' }}``: an event time in the customer's time
    zone and locale; the format is short, medium, long or full."""
    if value is None:
        return ""
    return _datetime(
        _number(value, "datetime"), _format(fmt), _zone_name(context), _locale(context)
    )


@with_context
def local_date(value: object, fmt: object = "medium", *, context: RenderContext) -> str:
    """``{{ order.placed_at | local_date: 'long' }}``: the day, in the customer's zone."""
    if value is None:
        return ""
    return _date(_number(value, "local_date"), _format(fmt), _zone_name(context), _locale(context))


def _zone_name(context: RenderContext) -> str:
    return str(context.resolve("time_zone", default="UTC"))


@lru_cache(maxsize=4096)
def _datetime(seconds: float, fmt: str, zone: str, locale: str) -> str:
    moment = datetime.fromtimestamp(seconds, UTC).astimezone(_zone(zone))
    return str(format_datetime(moment, fmt, tzinfo=moment.tzinfo, locale=babel_locale(locale)))


def _date(seconds: float, fmt: str, zone: str, locale: str) -> str:
    day = datetime.fromtimestamp(seconds, UTC).astimezone(_zone(zone)).date()
    return _day(day, fmt, locale)


@lru_cache(maxsize=4096)
def _day(day: date, fmt: str, locale: str) -> str:
    """Cached by the day, not the second: a coupon's last day repeats, its second does not."""
    return str(format_date(day, fmt, locale=babel_locale(locale)))


def _format(fmt: object) -> str:
    if fmt not in _DATE_FORMATS:
        raise FilterArgumentError(
            f"date format {fmt!r}: use one of {', '.join(_DATE_FORMATS)}", token=None
        )
    return str(fmt)


def _locale(context: RenderContext) -> str:
    return str(context.resolve("locale", default="en"))


#: The filters Rapport adds to Liquid's standard ones.
FILTERS: dict[str, Any] = {
    "money": money,
    "percent": percent,
    "datetime": local_datetime,
    "local_date": local_date,
}


def template_environment(html: bool) -> Environment:
    """A sandboxed Liquid environment; ``html``: values are HTML-escaped."""
    env = _Sandbox(undefined=StrictUndefined, strict_filters=True, autoescape=html)
    for tag in _FILE_TAGS:
        env.tags.pop(tag, None)
    env.filters.update(FILTERS)
    return env
