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
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, Final
from zoneinfo import ZoneInfo

from schemas.decode import convert_event, dead_letter
from streams.sources.base import Decoded

LONDON: Final = ZoneInfo("Europe/London")
INVOICE_CLOSE_SECONDS: Final = 300.0
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


def read_online_retail(
    stream: BinaryIO, source: str, latest_allowed: datetime | None
) -> Iterator[Decoded]:
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    reader = csv.DictReader(text)
    missing = [column for column in COLUMNS if column not in (reader.fieldnames or [])]
    if missing:
        header = ",".join(reader.fieldnames or [])
        yield dead_letter(
            header.encode(),
            source=source,
            position=1,
            reason="invalid_row",
            detail=f"not the Online Retail layout: missing columns {missing}",
        )
        return
    open_invoices: dict[str, _Invoice] = {}
    for index, row in enumerate(reader):
        line = index + 2
        number = row["InvoiceNo"].strip()
        try:
            when = datetime.fromisoformat(row["InvoiceDate"]).replace(tzinfo=LONDON)
            float(row["Quantity"])
            float(row["UnitPrice"])
        except ValueError as error:
            yield dead_letter(
                _raw(row),
                source=source,
                position=line,
                reason="invalid_row",
                detail=f"unreadable InvoiceDate, Quantity or UnitPrice: {error}",
            )
            continue
        ts = when.timestamp()
        for closed in [
            inv for inv in open_invoices.values() if ts - inv.last_ts > INVOICE_CLOSE_SECONDS
        ]:
            del open_invoices[closed.number]
            yield from _invoice_events(closed, source, latest_allowed)
        if number.startswith("A"):
            yield dead_letter(
                _raw(row),
                source=source,
                position=line,
                reason="invalid_row",
                field="InvoiceNo",
                detail="bad-debt adjustment (InvoiceNo A…): an accounting entry, not a customer event",
            )
            continue
        invoice = open_invoices.get(number)
        if invoice is None:
            invoice = open_invoices[number] = _Invoice(
                number, line, when, ts, _customer(row["CustomerID"])
            )
        invoice.last_ts = max(invoice.last_ts, ts)
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
            yield dead_letter(
                _raw(row),
                source=source,
                position=line,
                reason="invalid_row",
                field="Quantity",
                detail=f"{what}: Quantity={row['Quantity']}, UnitPrice={row['UnitPrice']}",
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
    yield convert_event(
        record,
        _raw(invoice.rows[0][1]),
        source=source,
        position=invoice.first_line,
        latest_allowed=latest_allowed,
    )
