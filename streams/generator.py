"""A seeded generator of realistic shop behaviour: the demo input, test source and benchmark load.

Customers browse in sessions, fill carts that they abandon or buy, return and cancel
some orders, open support tickets that agents answer and customers rate, review
products, and many slowly fade away. Those who agreed to email get the shop's fortnightly
newsletter, and its delivery feedback comes back (``message.*``): delivered or bounced,
opened and clicked (far less once a customer fades), now and then a spam complaint or an
unsubscribe, after which no newsletter goes to them again. Some start as anonymous visitors and identify
later. The stream arrives slightly out of order, with some redelivered duplicates and
a chosen share of malformed records. The same arguments always give the same bytes.

The stream is made as it is written: each customer's timeline is produced lazily, the
timelines are merged in event time, and arrivals are held only as long as the largest
delay. Memory grows with the number of customers, not with the stream's length.

>>> lines = list(generate_stream(GeneratorConfig(customers=3, days=10, seed=1)))
>>> len(lines) > 10, all(isinstance(line, bytes) for line in lines)
(True, True)
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

import orjson

from rules.actions import action_id
from rules.attribution import derived_coupon_code
from streams.generator_text import chaser, rating_comment, review_text, ticket_text

CATEGORIES: Final = (
    "sneakers",
    "apparel",
    "electronics",
    "home",
    "beauty",
    "books",
    "toys",
    "sports",
)
TIME_ZONES: Final = (
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "America/Los_Angeles",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Sydney",
)
PRIORITIES: Final = ("low", "normal", "normal", "high", "urgent")
CHANNELS: Final = ("email", "sms", "push")
HOUR: Final = 3600.0
DAY: Final = 86_400.0


@dataclass(frozen=True)
class GeneratorConfig:
    customers: int = 1000
    days: int = 90
    seed: int = 42
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    #: Share of extra records that are malformed (bad JSON, unknown type, bad fields, ...).
    malformed: float = 0.0
    #: Share of events delivered a second time, a little later (redelivery).
    duplicates: float = 0.002
    #: Share of events that arrive up to ``max_delay_seconds`` after their event time.
    delayed: float = 0.05
    max_delay_seconds: float = 600.0
    anonymous_share: float = 0.3
    #: Days between newsletters (with their delivery feedback); 0: none.
    newsletter_days: float = 14.0
    #: Share of a known customer's orders after which they later redeem loyalty points.
    redemption_share: float = 0.3


LONDON: Final = ZoneInfo("Europe/London")


@dataclass(frozen=True)
class Product:
    product_id: str
    category: str
    price: float


class _CustomerSim:
    """Builds one customer's events; each event is (time, sequence, dict)."""

    def __init__(
        self, index: int, cfg: GeneratorConfig, rng: random.Random, catalog: list[Product]
    ) -> None:
        self.rng, self.cfg, self.catalog = rng, cfg, catalog
        self.customer_id = f"c{index:07d}"
        self.anonymous_id = f"a{index:07d}" if rng.random() < cfg.anonymous_share else None
        self.identified = self.anonymous_id is None
        self.favourites = rng.sample(CATEGORIES, 2)
        self.activity = rng.lognormvariate(-1.2, 0.8)  # sessions per day
        span = cfg.days * DAY
        self.t0 = cfg.start.timestamp() + rng.random() * span * 0.5
        self.end = cfg.start.timestamp() + span
        fades = rng.random() < 0.35
        self.fade_at = self.t0 + rng.random() * span if fades else self.end
        self.seq = 0
        #: The newsletter: its own RNG (the rest of the timeline does not depend on it),
        #: the next one's time, and whether the customer still gets it.
        self.mail_rng = random.Random(f"{cfg.seed}-newsletter-{index}")
        self.next_newsletter = math.inf
        self.mailed = 0
        #: Points redemptions: their own RNG too, and what the customer believes they spent.
        self.points_rng = random.Random(f"{cfg.seed}-points-{index}")
        self.redeemed = 0
        #: Coupon uses (of the cart recovery coupon): their own RNG as well.
        self.coupon_rng = random.Random(f"{cfg.seed}-coupons-{index}")
        #: What the customer writes (tickets, replies, comments, reviews): its own RNG.
        self.text_rng = random.Random(f"{cfg.seed}-text-{index}")
        self.locale: str | None = None
        #: Going to drift away: writes in a worse mood more often (generator_text.py).
        self.unhappy = fades
        self.carts = 0
        self.orders: list[tuple[str, float, float]] = []
        #: Events emitted and not yet released: (time, sequence, record), a heap.
        self.events: list[tuple[float, int, dict[str, Any]]] = []

    def ids(self) -> dict[str, Any]:
        if self.identified:
            return {"customer_id": self.customer_id}
        return {"anonymous_id": self.anonymous_id}

    def emit(self, ts: float, kind: str, properties: dict[str, Any], **envelope: Any) -> None:
        if ts >= self.end:
            return
        self.seq += 1
        record = {
            "type": kind,
            "event_id": f"{self.customer_id}-{self.seq:05d}",
            "occurred_at": datetime.fromtimestamp(round(ts, 3), UTC).isoformat(),
            "schema_version": 1,
            "properties": properties,
            **(envelope or self.ids()),
        }
        heapq.heappush(self.events, (ts, self.seq, record))

    def _release(self, before: float) -> Iterator[tuple[float, int, dict[str, Any]]]:
        """The emitted events earlier than ``before``, in time order: final, since
        everything emitted from then on happens at ``before`` or later."""
        events = self.events
        while events and events[0][0] < before:
            yield heapq.heappop(events)

    def run(self) -> Iterator[tuple[float, int, dict[str, Any]]]:
        """The customer's events in time order, made as they are asked for."""
        rng = self.rng
        t = self.t0
        if self.identified:
            self.register(t)
        while True:
            t += rng.expovariate(self.activity) * DAY
            self.newsletters(min(t, self.end))
            yield from self._release(t)  # the sessions from here on start at t or later
            if t >= min(self.end, self.fade_at):
                break
            if not self.identified and rng.random() < 0.25:
                self.register(t)
                self.emit(
                    t + 1,
                    "customer.identified",
                    {},
                    customer_id=self.customer_id,
                    anonymous_id=self.anonymous_id,
                )
                self.identified = True
                t += 2
            self.session(t)
        self.newsletters(self.end)
        yield from self._release(math.inf)

    def register(self, t: float) -> None:
        rng = self.rng
        traits: dict[str, Any] = {
            "email": f"{self.customer_id}@example.com",
            "time_zone": rng.choice(TIME_ZONES),
            "locale": rng.choice(("en-GB", "de-DE", "en-US", "zh-CN", "ja-JP")),
        }
        self.locale = traits["locale"]
        if rng.random() < 0.6:
            traits["birthday"] = (
                f"{rng.randint(1950, 2006)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            )
        self.emit(t, "customer.registered", traits, customer_id=self.customer_id)
        for channel in CHANNELS:
            if rng.random() < 0.7:
                self.emit(
                    t + 1,
                    "consent.updated",
                    {"channel": channel, "granted": True},
                    customer_id=self.customer_id,
                )
                if channel == "email" and self.cfg.newsletter_days > 0:
                    days = self.cfg.newsletter_days
                    start = self.cfg.start.timestamp() + 10 * HOUR  # 10:00 UTC
                    self.next_newsletter = start + math.ceil((t + 2 - start) / (days * DAY)) * (
                        days * DAY
                    )

    def newsletters(self, until: float) -> None:
        """The newsletters sent before ``until`` and what became of each."""
        rng, days = self.mail_rng, self.cfg.newsletter_days
        while self.next_newsletter < until:
            sent = self.next_newsletter
            self.next_newsletter += days * DAY
            self.mailed += 1
            ref = {"channel": "email", "action_id": f"newsletter-{self.customer_id}-{self.mailed}"}
            roll = rng.random()
            if roll < 0.004:  # the mailbox is gone: no newsletter any more
                self.emit(sent + 60, "message.bounced", {**ref, "bounce": "hard"})
                self.next_newsletter = math.inf
                return
            if roll < 0.012:
                self.emit(sent + 60, "message.bounced", {**ref, "bounce": "soft"})
                continue
            self.emit(sent + rng.uniform(5, 120), "message.delivered", ref)
            engaged = 0.05 if sent >= self.fade_at else 0.4
            if rng.random() < engaged:
                opened = sent + rng.expovariate(1 / (6 * HOUR))
                self.emit(opened, "message.opened", ref)
                if rng.random() < 0.2:
                    self.emit(
                        opened + rng.uniform(5, 300),
                        "message.clicked",
                        {**ref, "url": "https://shop.example/new"},
                    )
            leave = rng.random()
            if leave < 0.0008:
                self.emit(sent + rng.uniform(600, DAY), "message.complained", ref)
                self.next_newsletter = math.inf
            elif leave < 0.005:
                self.emit(sent + rng.uniform(600, DAY), "message.unsubscribed", ref)
                self.next_newsletter = math.inf

    def pick(self) -> Product:
        rng = self.rng
        if rng.random() < 0.6:
            category = rng.choice(self.favourites)
            candidates = [p for p in self.catalog if p.category == category]
            return rng.choice(candidates)
        return rng.choice(self.catalog)

    def session(self, t: float) -> None:
        rng = self.rng
        if rng.random() < 0.3:
            self.emit(
                t,
                "search.performed",
                {"query": rng.choice(CATEGORIES), "results_count": rng.randint(0, 80)},
            )
            t += rng.uniform(5, 30)
        viewed = []
        for _ in range(1 + int(rng.expovariate(0.3))):
            product = self.pick()
            viewed.append(product)
            self.emit(
                t,
                "product.viewed",
                {
                    "product_id": product.product_id,
                    "category": product.category,
                    "price": product.price,
                },
            )
            t += rng.uniform(10, 120)
        if rng.random() < (0.5 if _member_day(t) else 0.35):  # double points bring buyers
            self.cart(t, viewed)
        if self.orders and rng.random() < 0.04:
            self.ticket(t + rng.uniform(0, 2 * DAY))

    def cart(self, t: float, viewed: list[Product]) -> None:
        rng = self.rng
        self.carts += 1
        cart_id = f"{self.customer_id}-k{self.carts}"
        lines: dict[str, tuple[Product, int]] = {}
        #: The add that would start the cart recovery journey (its cart value reaches 20).
        trigger: tuple[float, str] | None = None
        for product in rng.sample(viewed, k=min(len(viewed), rng.randint(1, 3))):
            quantity = rng.randint(1, 3)
            lines[product.product_id] = (product, quantity)
            seq = self.seq
            self.emit(
                t,
                "cart.item_added",
                {
                    "cart_id": cart_id,
                    "product_id": product.product_id,
                    "quantity": quantity,
                    "price": product.price,
                    "category": product.category,
                },
            )
            value = sum(p.price * q for p, q in lines.values())
            if trigger is None and self.seq > seq and value >= 20:
                trigger = (t, f"{self.customer_id}-{self.seq:05d}")
            t += rng.uniform(5, 60)
        if len(lines) > 1 and rng.random() < 0.2:
            product_id = next(iter(lines))
            product, quantity = lines.pop(product_id)
            self.emit(
                t,
                "cart.item_removed",
                {"cart_id": cart_id, "product_id": product_id, "quantity": quantity},
            )
            t += rng.uniform(5, 60)
        if rng.random() < 0.55:
            value = round(sum(p.price * q for p, q in lines.values()), 2)
            self.emit(t, "checkout.started", {"cart_id": cart_id, "value": value})
            if rng.random() < 0.75 and self.identified:
                self.order(t + rng.uniform(30, 600), cart_id, lines)
                return
            # Some abandoned carts are bought later, within a day or two.
            if rng.random() < 0.3 and self.identified:
                later = t + rng.uniform(2 * HOUR, 2 * DAY)
                self.order(later, cart_id, lines, self._recovery_coupon(later, cart_id, trigger))
        elif rng.random() < 0.1:
            self.emit(t + rng.uniform(60, 3600), "cart.cleared", {"cart_id": cart_id})

    def _recovery_coupon(
        self, at: float, cart_id: str, trigger: tuple[float, str] | None
    ) -> str | None:
        """The code of the cart recovery coupon, when a customer who comes back for the
        cart after the coupon went out uses it (about half of them).

        The generator stands in for the shop, which gets the code from the customer: it
        works out the code Rapport derives for that send (``rules/attribution.py``),
        from the shipped journey (``rules/journeys/cart_recovery.yaml``: its coupon is
        step 3, a day after the add that started the run). When Rapport did not send it
        (no consent, the holdout, a cap), the code matches nothing, as a code a customer
        found elsewhere would not."""
        rng = self.coupon_rng
        if trigger is None or at < trigger[0] + DAY or rng.random() >= 0.5:
            return None
        ident = action_id("cart_recovery", 3, self.customer_id, cart_id, trigger[1])
        return derived_coupon_code(ident)

    def order(
        self,
        t: float,
        cart_id: str,
        lines: dict[str, tuple[Product, int]],
        coupon: str | None = None,
    ) -> None:
        rng = self.rng
        order_id = f"{self.customer_id}-o{len(self.orders) + 1}"
        items = [
            {"product_id": p.product_id, "quantity": q, "price": p.price, "category": p.category}
            for p, q in lines.values()
        ]
        total = round(sum(p.price * q for p, q in lines.values()), 2)
        properties: dict[str, Any] = {
            "order_id": order_id,
            "cart_id": cart_id,
            "total": total,
            "currency": "GBP",
            "items": items,
        }
        if coupon is not None:  # 10% off the items
            discount = round(total * 0.1, 2)
            total = round(total - discount, 2)
            properties.update(total=total, coupon=coupon, discount=discount)
        self.emit(t, "order.placed", properties)
        self.orders.append((order_id, t, total))
        self.redemption(t)
        roll = rng.random()
        if roll < 0.02:
            self.emit(
                t + rng.uniform(60, 6 * HOUR),
                "order.cancelled",
                {"order_id": order_id, "reason": "changed_mind"},
            )
        elif roll < 0.08:
            self.emit(
                t + rng.uniform(3 * DAY, 20 * DAY),
                "order.refunded",
                {
                    "order_id": order_id,
                    "amount": round(total * rng.choice((0.5, 1.0)), 2),
                    "reason": "returned",
                },
            )
        if rng.random() < 0.15:
            product = rng.choice(items)["product_id"]
            rating = rng.choices((1, 2, 3, 4, 5), (1, 1, 2, 4, 6))[0]
            review: dict[str, Any] = {"product_id": product, "rating": rating, "order_id": order_id}
            body = review_text(rating, self.locale, self.text_rng, self.unhappy)
            if body is not None:
                review["body"] = body
            self.emit(t + rng.uniform(4 * DAY, 14 * DAY), "review.submitted", review)
        if rng.random() < 0.06:
            self.ticket(t + rng.uniform(HOUR, 5 * DAY), order_id)

    def redemption(self, t: float) -> None:
        """Now and then a known customer spends points some weeks after an order: about
        what they believe they hold (a point per pound of orders past the return window),
        sometimes more than the shop's ledger says, so some redemptions are refused."""
        rng = self.points_rng
        if not self.identified or rng.random() >= self.cfg.redemption_share:
            return
        at = t + rng.uniform(16 * DAY, 90 * DAY)
        believed = sum(int(total) for _, placed, total in self.orders if placed <= at - 15 * DAY)
        points = int((believed - self.redeemed) * rng.uniform(0.2, 1.3))
        if points < 1:
            return
        self.redeemed += points
        redemption_id = f"{self.customer_id}-r{self.redeemed}"
        self.emit(at, "points.redeemed", {"redemption_id": redemption_id, "points": points})

    def ticket(self, t: float, order_id: str | None = None) -> None:
        rng = self.rng
        ticket_id = f"{self.customer_id}-t{self.seq}"
        priority = rng.choice(PRIORITIES)
        complaint = rng.random() < 0.25
        props: dict[str, Any] = {
            "ticket_id": ticket_id,
            "priority": priority,
            "is_complaint": complaint,
            "topic": rng.choice(("delivery", "refund", "product", "account")),
        }
        if order_id:
            props["order_id"] = order_id
        props |= ticket_text(
            props["topic"], complaint, self.locale, order_id, self.text_rng, self.unhappy
        )
        self.emit(t, "support.ticket_opened", props, customer_id=self.customer_id)
        answered = t + rng.expovariate(1 / (4 * HOUR))
        if rng.random() < 0.3:  # the customer chases before any agent has answered
            self.emit(
                rng.uniform(t, answered),
                "support.ticket_replied",
                {
                    "ticket_id": ticket_id,
                    "author": "customer",
                    "body": chaser(self.locale, self.text_rng),
                },
                customer_id=self.customer_id,
            )
        self.emit(
            answered,
            "support.ticket_replied",
            {"ticket_id": ticket_id, "author": "agent"},
            customer_id=self.customer_id,
        )
        resolved = answered + rng.expovariate(1 / DAY)
        self.emit(
            resolved,
            "support.ticket_resolved",
            {"ticket_id": ticket_id},
            customer_id=self.customer_id,
        )
        if rng.random() < 0.5:
            mood = rng.random()
            csat = 1 if mood < 0.15 else 2 if mood < 0.25 else rng.randint(3, 5)
            rating: dict[str, Any] = {
                "ticket_id": ticket_id,
                "csat": csat,
                "nps": min(10, max(0, csat * 2 + rng.randint(-1, 1))),
            }
            comment = rating_comment(csat, self.locale, self.text_rng, self.unhappy)
            if comment is not None:
                rating["comment"] = comment
            self.emit(
                resolved + rng.uniform(HOUR, DAY),
                "support.satisfaction_rated",
                rating,
                customer_id=self.customer_id,
            )


def _member_day(t: float) -> bool:
    """Wednesday in London: the shipped loyalty program's double-points day
    (``rules/loyalty.yaml``), when more sessions end in a cart."""
    return datetime.fromtimestamp(t, LONDON).weekday() == 2


def _catalog(rng: random.Random) -> list[Product]:
    products = []
    for index in range(600):
        category = CATEGORIES[index % len(CATEGORIES)]
        price = round(rng.lognormvariate(3.3, 0.7), 2)
        products.append(Product(f"sku-{index:04d}", category, price))
    return products


_MALFORMED_KINDS: Final = (
    "truncated_json",
    "unknown_type",
    "missing_field",
    "wrong_type",
    "future_time",
    "negative_quantity",
    "no_identity",
    "bad_time_zone",
    "not_an_object",
)


def _malformed(rng: random.Random, index: int, ts: float) -> bytes:
    kind = _MALFORMED_KINDS[index % len(_MALFORMED_KINDS)]
    when = datetime.fromtimestamp(ts, UTC).isoformat()
    base: dict[str, Any] = {
        "type": "cart.item_added",
        "event_id": f"bad-{index:06d}",
        "customer_id": f"c{rng.randint(0, 9999):07d}",
        "occurred_at": when,
        "properties": {"cart_id": "k", "product_id": "sku-0001", "quantity": 1, "price": 9.5},
    }
    if kind == "truncated_json":
        return orjson.dumps(base)[: rng.randint(5, 40)]
    if kind == "unknown_type":
        base["type"] = "cart.teleported"
    elif kind == "missing_field":
        del base["properties"]["product_id"]
    elif kind == "wrong_type":
        base["properties"]["quantity"] = "two"
    elif kind == "future_time":
        base["occurred_at"] = "2999-01-01T00:00:00+00:00"
    elif kind == "negative_quantity":
        base["properties"]["quantity"] = -3
    elif kind == "no_identity":
        del base["customer_id"]
    elif kind == "bad_time_zone":
        base = {
            "type": "customer.updated",
            "event_id": f"bad-{index:06d}",
            "customer_id": "c0000001",
            "occurred_at": when,
            "properties": {"time_zone": "Mars/Olympus_Mons"},
        }
    elif kind == "not_an_object":
        return orjson.dumps([base["event_id"], when])
    return orjson.dumps(base)


Timeline = Iterator[tuple[float, int, dict[str, Any]]]


def generate_stream(cfg: GeneratorConfig) -> Iterator[bytes]:
    """Yield JSON lines (without newline) in arrival order.

    Customers' timelines are merged by event time; each event gets its arrival (its time,
    or a little later for a delayed one, and a redelivery later still) and waits in a heap
    until no event still to come can arrive before it: every later event happens, and so
    arrives, at or after the newest event time merged.
    """
    rng = random.Random(cfg.seed)
    catalog = _catalog(rng)
    #: (next event time, customer index, that event, the rest of the customer's timeline,
    #: the RNG of its arrivals): one entry per customer with events still to come.
    merging: list[tuple[float, int, dict[str, Any], Timeline, random.Random]] = []
    for index in range(cfg.customers):
        sim = _CustomerSim(index, cfg, random.Random(rng.getrandbits(64)), catalog)
        delivery = random.Random(rng.getrandbits(64))
        timeline = sim.run()
        first = next(timeline, None)
        if first is not None:
            merging.append((first[0], index, first[2], timeline, delivery))
    heapq.heapify(merging)
    malformed_rng = random.Random(rng.getrandbits(64))
    malformed_per_event = cfg.malformed / (1 - cfg.malformed) if cfg.malformed > 0 else 0.0
    owed, malformed = 0.0, 0
    #: (arrival, customer index or -1 for a malformed record, sequence, line)
    arrivals: list[tuple[float, int, int, bytes]] = []
    sequence = itertools.count()
    while merging:
        ts, index, record, timeline, delivery = merging[0]
        upcoming = next(timeline, None)
        if upcoming is None:
            heapq.heappop(merging)
        else:
            heapq.heapreplace(merging, (upcoming[0], index, upcoming[2], timeline, delivery))
        line = orjson.dumps(record)
        delay = delivery.uniform(0, cfg.max_delay_seconds) if delivery.random() < cfg.delayed else 0
        heapq.heappush(arrivals, (ts + delay, index, next(sequence), line))
        if delivery.random() < cfg.duplicates:
            again = ts + delay + delivery.uniform(1, 60)
            heapq.heappush(arrivals, (again, index, next(sequence), line))
        owed += malformed_per_event
        while owed >= 1:
            owed -= 1
            at = ts + malformed_rng.uniform(0, cfg.max_delay_seconds)
            bad = _malformed(malformed_rng, malformed, at)
            heapq.heappush(arrivals, (at, -1, next(sequence), bad))
            malformed += 1
        while arrivals and arrivals[0][0] <= ts:
            yield heapq.heappop(arrivals)[3]
    while arrivals:
        yield heapq.heappop(arrivals)[3]
