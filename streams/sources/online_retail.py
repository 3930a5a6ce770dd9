"""The UCI "Online Retail" CSV (one row per invoice line) as order events.

How its quirks are handled (see docs/data.md):

* rows are grouped into invoices; an invoice closes once the file's clock is
  ``INVOICE_CLOSE_SECONDS`` past its last row (one invoice in the file is split by
  other rows, and 43 span two minutes);
* ``C…`` invoices are returns: one ``order.refunded`` for the absolute value;
* ``A…`` rows ("Adjust bad debt") are accounting entries, not customer events: dead letters;
* rows without CustomerID are guest checkouts: their invoice becomes an order of the
  anonymous visitor ``guest-<InvoiceNo>``;
* a sale row with quantity <= 0 is a stock adjustment: a dead letter, the rest of the
  invoice goes on;
* CustomerID is written as a float (``17850.0``) and becomes ``"17850"``;
* InvoiceDate has no zone; it is read as Europe/London time.
"""

from __future__ import annotations

import csv
import heapq
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, Final
from zoneinfo import ZoneInfo

from schemas.decode import DeadLetter, convert_event, dead_letter
from schemas.limits import MAX_AMOUNT, MAX_QUANTITY
from streams.sources.base import Decoded, flattened
from streams.sources.files import numbered_lines

LONDON: Final = ZoneInfo("Europe/London")
INVOICE_CLOSE_SECONDS: Final = 300.0
#: At most this many invoices are open at once (the oldest is closed first), and an
#: invoice has at most as many lines as an order has items: memory stays bounded whatever
#: the file.
MAX_OPEN_INVOICES: Final = 10_000
MAX_ITEMS: Final = 5_000
COLUMNS: Final = (
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
)


@dataclass
class _Invoice:
    number: str
    first_line: int
    first_time: datetime
    last_ts: float
    customer: str | None
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)


def _raw(row: dict[str, str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow([row.get(column, "") for column in COLUMNS])
    return out.getvalue().encode()


def _customer(value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    return value[:-2] if value.endswith(".0") else value


def _rows(
    stream: BinaryIO, source: str, max_bytes: int
) -> Iterator[tuple[int, dict[str, str]] | DeadLetter]:
    """(line number, row by column name) or a dead letter, one physical line at a time:
    a line that is too long, not UTF-8 or not CSV is refused alone (the file has no
    quoted line breaks, so each row is one line)."""
    header: list[str] | None = None
    for entry in numbered_lines(stream, source, max_bytes):
        if isinstance(entry, DeadLetter):
            yield entry
            continue
        number, raw = entry
        try:
            fields = next(csv.reader((raw.decode("utf-8"),)))
        except (UnicodeDecodeError, csv.Error) as error:
            yield _bad_line(raw, source, number, f"not a CSV line of UTF-8 text: {error}")
            continue
        if header is None:
            header = [name.strip() for name in fields]
            missing = [column for column in COLUMNS if column not in header]
            if missing:
                yield _bad_line(
                    raw, source, number, f"not the Online Retail layout: missing columns {missing}"
                )
                return
            continue
        if len(fields) != len(header):
            yield _bad_line(
                raw, source, number, f"{len(fields)} fields, the header has {len(header)}"
            )
            continue
        yield number, dict(zip(header, fields, strict=True))


def _bad_line(
    raw: bytes, source: str, number: int, detail: str, field: str | None = None
) -> DeadLetter:
    return dead_letter(
        raw, source=source, position=number, reason="invalid_row", field=field, detail=detail
    )


def _amounts(row: dict[str, str]) -> tuple[datetime, float, float] | str:
    """(time, quantity, unit price) of a row, or why it cannot be read."""
    try:
        when = datetime.fromisoformat(row["InvoiceDate"]).replace(tzinfo=LONDON)
        quantity, price = float(row["Quantity"]), float(row["UnitPrice"])
    except ValueError as error:
        return f"unreadable InvoiceDate, Quantity or UnitPrice: {error}"
    if not (math.isfinite(quantity) and quantity.is_integer() and abs(quantity) <= MAX_QUANTITY):
        return f"Quantity {row['Quantity']!r}: expected a whole number of at most {MAX_QUANTITY:,}"
    if not (math.isfinite(price) and abs(price) <= MAX_AMOUNT):
        return f"UnitPrice {row['UnitPrice']!r}: expected an amount of at most {MAX_AMOUNT:,.0f}"
    return when, quantity, price


def read_online_retail(
    stream: BinaryIO, source: str, latest_allowed: datetime | None, max_bytes: int
) -> Iterator[Decoded]:
    open_invoices: dict[str, _Invoice] = {}
    #: (last row time, invoice number) of open invoices; stale entries are skipped
    closing: list[tuple[float, str]] = []
    for entry in _rows(stream, source, max_bytes):
        if isinstance(entry, DeadLetter):
            yield entry
            continue
        line, row = entry
        number = row["InvoiceNo"].strip()
        amounts = _amounts(row)
        if isinstance(amounts, str):
            yield _bad_line(_raw(row), source, line, amounts)
            continue
        when = amounts[0]
        ts = when.timestamp()
        while closing and (
            ts - closing[0][0] > INVOICE_CLOSE_SECONDS or len(open_invoices) > MAX_OPEN_INVOICES
        ):
            last_ts, closed_number = heapq.heappop(closing)
            closed = open_invoices.get(closed_number)
            if closed is not None and closed.last_ts == last_ts:
                del open_invoices[closed_number]
                yield from _invoice_events(closed, source, latest_allowed)
        if number.startswith("A"):
            yield _bad_line(
                _raw(row),
                source,
                line,
                "bad-debt adjustment (InvoiceNo A…): an accounting entry, not a customer event",
                field="InvoiceNo",
            )
            continue
        invoice = open_invoices.get(number)
        if invoice is None:
            invoice = open_invoices[number] = _Invoice(
                number, line, when, ts, _customer(row["CustomerID"])
            )
        elif len(invoice.rows) >= MAX_ITEMS:
            yield _bad_line(
                _raw(row),
                source,
                line,
                f"invoice {number} has more than {MAX_ITEMS:,} lines: this one is left out",
                field="InvoiceNo",
            )
            continue
        if ts > invoice.last_ts or not invoice.rows:
            invoice.last_ts = max(invoice.last_ts, ts)
            heapq.heappush(closing, (invoice.last_ts, number))
        invoice.rows.append((line, row))
    for invoice in sorted(open_invoices.values(), key=lambda inv: inv.first_line):
        yield from _invoice_events(invoice, source, latest_allowed)


def _invoice_events(
    invoice: _Invoice, source: str, latest_allowed: datetime | None
) -> Iterator[Decoded]:
    is_return = invoice.number.startswith("C")
    items: list[dict[str, Any]] = []
    cents = 0
    for line, row in invoice.rows:
        quantity, price = int(float(row["Quantity"])), float(row["UnitPrice"])
        if is_return:
            quantity = -quantity
        if quantity <= 0 or price < 0:
            what = (
                "a return with a positive quantity"
                if is_return
                else "a sale line with quantity <= 0 (stock adjustment)"
            )
            yield _bad_line(
                _raw(row),
                source,
                line,
                f"{what}: Quantity={row['Quantity']}, UnitPrice={row['UnitPrice']}",
                field="Quantity",
            )
            continue
        cents += round(quantity * price * 100)
        items.append(
            {
                "product_id": row["StockCode"].strip() or "unknown",
                "quantity": quantity,
                "price": price,
            }
        )
    if not items:
        return
    envelope: dict[str, Any] = {
        "event_id": f"uci-{invoice.number}",
        "occurred_at": invoice.first_time.isoformat(),
    }
    if invoice.customer is not None:
        envelope["customer_id"] = invoice.customer
    else:
        envelope["anonymous_id"] = f"guest-{invoice.number}"
    if is_return:
        record = {
            "type": "order.refunded",
            **envelope,
            "properties": {"order_id": invoice.number, "amount": cents / 100, "items": items},
        }
    else:
        record = {
            "type": "order.placed",
            **envelope,
            "properties": {
                "order_id": invoice.number,
                "total": cents / 100,
                "currency": "GBP",
                "items": items,
            },
        }
    decoded = convert_event(
        record,
        _raw(invoice.rows[0][1]),
        source=source,
        position=invoice.first_line,
        latest_allowed=latest_allowed,
    )
    yield from flattened(decoded)
