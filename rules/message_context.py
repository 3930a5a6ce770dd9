"""What a message template can read: the names, and their values for one send.

A template reads the profile names of the rules guide at the top level (``tier``,
``cart_value``, ``top_category``, …) and these objects:

- ``cart``: the run's cart (a cart recovery) or else the customer's open cart: ``id``,
  ``value``, ``item_count``, ``checkout_started`` and ``items`` (each: ``product_id``,
  ``name``, ``category``, ``quantity``, ``price``, ``line_total``); nil without one;
- ``order``: the run's order, or else the newest: ``id``, ``total``, ``placed_at``,
  ``cancelled``; nil without one;
- ``ticket``: the run's ticket, or else the newest: ``id``, ``priority`` (as routed),
  ``opened_at``, ``resolved_at``, ``is_complaint``, ``category``, ``queue``,
  ``sentiment``, ``answers`` (suggested answer ids) and ``excerpt`` (the subject's opening,
  only with ``privacy.keep_text_chars``); nil without one;
- ``coupon``: ``code``, ``percent``, ``amount``, ``valid_until``; nil when the send has none;
- ``payload``: the send's payload, as the journey's step names it;
- ``event``: properties of the event that started the run (``event.cart_id``);
- ``shop`` (``name``, ``url``), ``unsubscribe_url``, ``channel``, ``journey_id``,
  ``locale``, ``time_zone`` and ``currency``.

Times are event-time seconds: format them with ``datetime`` or ``local_date``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final
from urllib.parse import quote

from rules.journey_spec import MessagesSpec
from rules.profile_view import PROFILE_GETTERS
from state.profile import Cart, OrderRecord, Profile, Ticket

CART_FIELDS: Final = ("id", "value", "item_count", "checkout_started", "items")
ITEM_FIELDS: Final = ("product_id", "name", "category", "quantity", "price", "line_total")
ORDER_FIELDS: Final = ("id", "total", "placed_at", "cancelled")
TICKET_FIELDS: Final = (
    "id",
    "priority",
    "opened_at",
    "resolved_at",
    "is_complaint",
    "category",
    "queue",
    "sentiment",
    "answers",
    "excerpt",
)
COUPON_FIELDS: Final = ("code", "percent", "amount", "valid_until")
SHOP_FIELDS: Final = ("name", "url")
#: Objects with fixed fields, and the fields; ``payload`` and ``event`` depend on the journey.
OBJECTS: Final[Mapping[str, tuple[str, ...]]] = {
    "cart": CART_FIELDS,
    "order": ORDER_FIELDS,
    "ticket": TICKET_FIELDS,
    "coupon": COUPON_FIELDS,
    "shop": SHOP_FIELDS,
}
SCALARS: Final = ("unsubscribe_url", "channel", "journey_id", "locale", "time_zone", "currency")
#: Every top-level name a template may read.
NAMES: Final = frozenset((*PROFILE_GETTERS, *OBJECTS, *SCALARS, "payload", "event"))


_KEPT_LINKS: Final = 4096


class UnsubscribeLinks:
    """Signed one-click unsubscribe links: ``<shop>/unsubscribe?c=<customer>&ch=<channel>&s=<sig>``,
    the signature an HMAC-SHA256 of customer and channel under the deployment's key, so a
    link cannot be forged for another customer or channel.

    >>> links = UnsubscribeLinks(b"key")
    >>> url = links.link("https://shop.example", "c1", "email")
    >>> url.startswith("https://shop.example/unsubscribe?c=c1&ch=email&s="), links.verify("c1", "email", url.rsplit("=", 1)[1])
    (True, True)
    """

    def __init__(self, key: bytes) -> None:
        self._key = key
        #: A customer gets several messages, and a link costs an HMAC and two quotes.
        self._links: dict[tuple[str, str, str], str] = {}

    def signature(self, customer: str, channel: str) -> str:
        mac = hmac.new(self._key, f"{customer}\x1f{channel}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()[:16]).decode().rstrip("=")

    def verify(self, customer: str, channel: str, signature: str) -> bool:
        return hmac.compare_digest(self.signature(customer, channel), signature)

    def link(self, shop_url: str, customer: str, channel: str) -> str:
        """The link for ``customer`` and ``channel`` (up to 4,096 kept, then forgotten at once)."""
        key = (shop_url, customer, channel)
        url = self._links.get(key)
        if url is None:
            if len(self._links) >= _KEPT_LINKS:
                self._links.clear()
            url = self._links[key] = self._link(shop_url, customer, channel)
        return url

    def _link(self, shop_url: str, customer: str, channel: str) -> str:
        return (
            f"{shop_url.rstrip('/')}/unsubscribe?c={quote(customer, safe='')}"
            f"&ch={quote(channel, safe='')}&s={self.signature(customer, channel)}"
        )


#: The key of unsubscribe links when the deployment sets none (``messages.signing_key``):
#: fine for replays and tests, never for links customers get.
DEVELOPMENT_KEY: Final = b"rapport-development-only"
DEVELOPMENT_LINKS: Final = UnsubscribeLinks(DEVELOPMENT_KEY)


def cart_value(cart: Cart | None) -> dict[str, Any] | None:
    if cart is None:
        return None
    items = [
        {
            "product_id": line.product_id,
            "name": line.name,
            "category": line.category,
            "quantity": line.quantity,
            "price": line.price_cents / 100,
            "line_total": line.quantity * line.price_cents / 100,
        }
        for line in sorted(cart.lines.values(), key=lambda line: line.product_id)
        if line.quantity > 0
    ]
    return {
        "id": cart.cart_id,
        "value": cart.value,
        "item_count": cart.item_count,
        "checkout_started": cart.checkout_started_at is not None,
        "items": items,
    }


def order_value(order: OrderRecord | None) -> dict[str, Any] | None:
    if order is None:
        return None
    return {
        "id": order.order_id,
        "total": order.total_cents / 100,
        "placed_at": order.placed_at,
        "cancelled": order.cancelled,
    }


def ticket_value(ticket: Ticket | None) -> dict[str, Any] | None:
    if ticket is None:
        return None
    return {
        "id": ticket.ticket_id,
        "priority": ticket.priority,
        "opened_at": ticket.opened_at,
        "resolved_at": ticket.resolved_at,
        "is_complaint": ticket.is_complaint,
        "category": ticket.category,
        "queue": ticket.queue,
        "sentiment": ticket.sentiment,
        "answers": list(ticket.answers),
        "excerpt": ticket.excerpt,
    }


def _newest_order(profile: Profile) -> OrderRecord | None:
    orders = profile.orders.recent.values()
    return max(orders, key=lambda o: (o.placed_at or 0.0, o.order_id), default=None)


def _newest_ticket(profile: Profile) -> Ticket | None:
    tickets = profile.support.tickets.values()
    return max(tickets, key=lambda t: (t.opened_at or 0.0, t.ticket_id), default=None)


class MessageNames(Mapping[str, Any]):
    """The names of one send, each computed when a template first reads it: most parts
    read a handful of the forty-odd names. ``entity_kind`` is the property that scopes the
    run (``cart_id``, ``order_id``, ``ticket_id``) and ``entity`` its value."""

    __slots__ = (
        "_values",
        "channel",
        "coupon",
        "entity",
        "entity_kind",
        "event",
        "journey_id",
        "links",
        "locale",
        "payload",
        "profile",
        "settings",
    )

    def __init__(
        self,
        profile: Profile,
        *,
        entity_kind: str | None,
        entity: str | None,
        channel: str,
        journey_id: str,
        payload: Mapping[str, Any],
        event: Mapping[str, Any],
        coupon: Mapping[str, Any] | None,
        locale: str,
        settings: MessagesSpec,
        links: UnsubscribeLinks,
    ) -> None:
        self.profile, self.entity_kind, self.entity = profile, entity_kind, entity
        self.channel, self.journey_id, self.locale = channel, journey_id, locale
        self.payload, self.event, self.coupon = payload, event, coupon
        self.settings, self.links = settings, links
        self._values: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        value = self._values.get(name, _UNSET)
        if value is _UNSET:
            own = _SEND_NAMES.get(name)
            value = own(self) if own is not None else PROFILE_GETTERS[name](self.profile)
            self._values[name] = value
        return value

    def __contains__(self, name: object) -> bool:
        return name in _SEND_NAMES or name in PROFILE_GETTERS

    def __iter__(self) -> Iterator[str]:
        yield from _SEND_NAMES
        yield from (name for name in PROFILE_GETTERS if name not in _SEND_NAMES)

    def __len__(self) -> int:
        return len(NAMES)

    def _cart(self) -> dict[str, Any] | None:
        profile = self.profile
        if self.entity_kind == "cart_id":
            return cart_value(profile.carts.get(self.entity or ""))
        return cart_value(profile.open_cart)

    def _order(self) -> dict[str, Any] | None:
        if self.entity_kind == "order_id":
            return order_value(self.profile.orders.recent.get(self.entity or ""))
        return order_value(_newest_order(self.profile))

    def _ticket(self) -> dict[str, Any] | None:
        if self.entity_kind == "ticket_id":
            return ticket_value(self.profile.support.tickets.get(self.entity or ""))
        return ticket_value(_newest_ticket(self.profile))

    def _time_zone(self) -> str:
        zone = self.profile.trait("time_zone")
        return zone if isinstance(zone, str) else "UTC"

    def _unsubscribe_url(self) -> str:
        profile = self.profile
        customer = profile.customer_id or profile.key
        return self.links.link(self.settings.shop.url, customer, self.channel)


_UNSET: Final = object()
#: The names of a send (the rest are profile names), each computed from the send.
_SEND_NAMES: Final[Mapping[str, Callable[[MessageNames], Any]]] = {
    "tags": lambda names: sorted(names.profile.tags),
    "cart": MessageNames._cart,
    "order": MessageNames._order,
    "ticket": MessageNames._ticket,
    "coupon": lambda names: None if names.coupon is None else dict(names.coupon),
    "payload": lambda names: dict(names.payload),
    "event": lambda names: dict(names.event),
    "shop": lambda names: {"name": names.settings.shop.name, "url": names.settings.shop.url},
    "unsubscribe_url": MessageNames._unsubscribe_url,
    "channel": lambda names: names.channel,
    "journey_id": lambda names: names.journey_id,
    "locale": lambda names: names.locale,
    "time_zone": MessageNames._time_zone,
    "currency": lambda names: names.settings.currency,
}


def choose_locale(available: Mapping[str, object], wanted: object, default: str) -> str:
    """The template locale for a customer whose ``locale`` trait is ``wanted``: the same
    tag, else the same language (``zh`` for ``zh-TW``, then any ``zh-…``), else ``default``.

    >>> choose_locale({"en": 1, "zh-CN": 1}, "zh-TW", "en"), choose_locale({"en": 1}, "fr", "en")
    ('zh-CN', 'en')
    """
    if isinstance(wanted, str) and wanted:
        if wanted in available:
            return wanted
        tag = wanted.replace("_", "-").lower()
        by_lower = {name.lower(): name for name in available}
        if tag in by_lower:
            return by_lower[tag]
        language = tag.split("-", 1)[0]
        if language in by_lower:
            return by_lower[language]
        for lower, name in sorted(by_lower.items()):
            if lower.split("-", 1)[0] == language:
                return name
    return default
