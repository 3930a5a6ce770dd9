"""The whole loop on the real broker: a cart is left, the worker renders the reminder and
mails it over SMTP to a real mail server; the customer clicks it (a ``message.clicked``
on the events topic), so the run's branch sends the coupon; the order ends the run."""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import msgspec
import pytest
import redis as redis_client
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from rules.loader import DEFAULT_RULES_DIR
from tests.integration.kafka_io import Record, create_topic, produce, read_topic
from tests.integration.test_email_delivery import Mailbox
from tests.integration.worker_process import WorkerProcess, worker_env
from tests.servers import Server, free_port

pytestmark = pytest.mark.integration
PARTITIONS = 2

#: Cart recovery in seconds: the reminder 2 s after the cart, the coupon only to a
#: customer who clicked it, 20 s later (room for a busy machine), then an hour for the order.
FAST_RECOVERY = """\
id: cart_recovery
priority: 60
trigger: {event: cart.item_added, when: cart_value >= 20}
entity: cart_id
exit_on: [order.placed, cart.cleared]
steps:
  - wait: 2s
  - send: {channel: email, template: cart_reminder, payload: {cart_id: event.cart_id}}
  - wait: 20s
  - branch: {when: not message_clicked, goto: done}
  - send:
      channel: email
      template: cart_coupon
      payload: {cart_id: event.cart_id}
      coupon: {percent: 10, valid_for: 48h}
  - wait: 1h
  - {id: done, exit: true}
"""


def _rules(tmp_path: Path) -> Path:
    rules = tmp_path / "rules"
    shutil.copytree(DEFAULT_RULES_DIR, rules)
    (rules / "journeys" / "cart_recovery.yaml").write_text(FAST_RECOVERY, encoding="utf-8")
    policies = rules / "policies.yaml"
    text = policies.read_text(encoding="utf-8")
    start = text.index("quiet_hours:")  # whatever the hour the test runs at
    policies.write_text(text[:start] + text[text.index("\n\n", start) + 2 :], encoding="utf-8")
    return rules


def _line(kind: str, event_id: str, **properties: object) -> bytes:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"
    record = {
        "type": kind,
        "event_id": event_id,
        "customer_id": "c1",
        "occurred_at": stamp,
        "properties": properties,
    }
    return json.dumps(record).encode()


def _wait_for(condition: object, what: str, worker: WorkerProcess, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not worker.exited:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.2)
    if condition():  # type: ignore[operator]
        return  # it came with the worker's exit (the kill)
    state = "exited" if worker.exited else f"not in {timeout}s"
    raise AssertionError(f"{what} did not happen ({state}):\n{worker.log()[-3000:]}")


def _env(
    broker: Server, redis: Server, prefix: str, rules: Path, smtp_port: int, **extra: str
) -> dict[str, str]:
    """A wall-clock worker whose email goes over SMTP to ``smtp_port`` on loopback."""
    adapters = {
        "log": {"type": "log", "path": "build/deliveries.jsonl"},
        "mail": {
            "type": "smtp",
            "host": "127.0.0.1",
            "port": smtp_port,
            "security": "none",
            "from_address": "news@shop.example",
        },
    }
    return worker_env(
        broker.address,
        redis.address,
        prefix,
        PARTITIONS,
        rules_dir=str(rules),
        # An event is late once the wall clock, less this, has passed it: 1 s was less
        # than a busy machine can take from produce to apply (the cart then started
        # nothing). 5 s still leaves the click 15 s before the branch reads it.
        engine__allowed_lateness="5s",
        worker__clock="wall",
        profile__privacy__keep_contacts="true",
        delivery__adapters=json.dumps(adapters),
        delivery__channels=json.dumps({"email": "mail"}),
        delivery__backoff_initial="1s",
        **extra,
    )


def test_reminder_mailed_clicked_coupon_mailed_then_the_order_ends_the_run(
    broker: Server, redis: Server, tmp_path: Path
) -> None:
    mailbox = Mailbox()
    lock = threading.Lock()
    smtp_port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    prefix = f"t{uuid.uuid4().hex[:8]}."
    create_topic(broker.address, f"{prefix}events", PARTITIONS)
    env = _env(broker, redis, prefix, _rules(tmp_path), smtp_port, worker__store="memory")
    worker = WorkerProcess(tmp_path, env)

    def mails() -> list[EmailMessage]:
        with lock:
            return list(mailbox.messages)

    try:
        worker.wait_ready(90)  # on the wall clock an event older than the lateness starts nothing
        produce(
            broker.address,
            f"{prefix}events",
            [
                _line("customer.registered", "e1", email="ada@example.com"),
                _line("consent.updated", "e2", channel="email", granted=True),
                _line(
                    "cart.item_added",
                    "e3",
                    cart_id="k1",
                    product_id="p1",
                    price=30,
                    quantity=2,
                    name="Trail Runner",
                ),
            ],
        )
        _wait_for(lambda: len(mails()) >= 1, "the reminder's mail", worker)
        reminder = mails()[0]
        assert reminder["Subject"] == "You left 2 items in your cart"
        assert reminder["To"] == "ada@example.com"
        action = str(reminder["X-Rapport-Action"])
        produce(
            broker.address,
            f"{prefix}events",
            [
                _line(
                    "message.clicked",
                    "e4",
                    channel="email",
                    action_id=action,
                    journey_id="cart_recovery",
                    url="https://shop.example/cart/k1",
                )
            ],
        )
        _wait_for(lambda: len(mails()) >= 2, "the coupon's mail (the branch for a click)", worker)
        coupon = mails()[1]
        assert coupon["Subject"] == "10% off the cart you left"
        produce(
            broker.address,
            f"{prefix}events",
            [_line("order.placed", "e5", order_id="o1", total=60, cart_id="k1")],
        )

        def exited(records: list[Record]) -> bool:
            return any(
                b'"kind":"exited"' in r.value and b"cart_recovery" in r.value for r in records
            )

        records = read_topic(broker.address, f"{prefix}actions", exited, timeout=90)
    finally:
        worker.stop()
        controller.stop()
    outputs = [msgspec.json.decode(r.value) for r in records]
    recovery = [o for o in outputs if o.get("journey_id") == "cart_recovery"]
    kinds = [o.get("kind") for o in recovery]
    assert kinds == ["entered", "send", "send", "exited"], kinds
    sent = [o for o in recovery if o.get("kind") == "send"]
    assert [s["template"] for s in sent] == ["cart_reminder", "cart_coupon"]
    assert all(s["status"] == "sent" for s in sent)
    assert recovery[-1]["cause"] == "e5"  # the order ended it
    # One mail per action: the mail server holds each message once, by Message-ID.
    ids = [str(mail["Message-ID"]) for mail in mails()]
    assert ids == [f"<{s['action_id']}@shop.example>" for s in sent]


@dataclass
class KillingMailbox(Mailbox):
    """Takes each message, but kills the worker (``kill -9``) at the first one, before the
    worker hears the server's 250: the window between a send and its acknowledgement."""

    worker: WorkerProcess | None = None
    killed: bool = False

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        if not self.killed and self.worker is not None:
            self.killed = True
            self.worker.stop(hard=True)
        return answer


ONE_REMINDER = """\
id: cart_recovery
priority: 60
trigger: {event: cart.item_added, when: cart_value >= 20}
entity: cart_id
exit_on: [order.placed, cart.cleared]
steps:
  - wait: 2s
  - send: {channel: email, template: cart_reminder, payload: {cart_id: event.cart_id}}
"""


def test_a_worker_killed_between_the_mail_and_its_acknowledgement_mails_it_once_more(
    broker: Server, redis: Server, tmp_path: Path
) -> None:
    """What "exactly one copy" can and cannot mean over SMTP, measured: a worker killed
    after the server took a mail and before the worker recorded it sends that action
    again when it restarts. The server then holds two copies with the same Message-ID
    (and nothing else is sent twice); without the kill it holds one."""
    rules = _rules(tmp_path)
    (rules / "journeys" / "cart_recovery.yaml").write_text(ONE_REMINDER, encoding="utf-8")
    mailbox = KillingMailbox()
    smtp_port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    prefix = f"t{uuid.uuid4().hex[:8]}."
    create_topic(broker.address, f"{prefix}events", PARTITIONS)
    env = _env(broker, redis, prefix, rules, smtp_port) | {
        "RAPPORT_WORKER__DATA_DIR": str(tmp_path / "worker-data")
    }
    first = WorkerProcess(tmp_path, env, name="first")
    mailbox.worker = first
    second: WorkerProcess | None = None
    try:
        first.wait_ready(90)  # on the wall clock an event older than the lateness starts nothing
        produce(
            broker.address,
            f"{prefix}events",
            [
                _line("customer.registered", "e1", email="ada@example.com"),
                _line("consent.updated", "e2", channel="email", granted=True),
                _line("cart.item_added", "e3", cart_id="k1", product_id="p1", price=30),
            ],
        )
        _wait_for(lambda: mailbox.killed and first.exited, "the kill at the first mail", first)
        second = WorkerProcess(tmp_path, env, name="second")
        _wait_for(lambda: len(mailbox.messages) >= 2, "the restarted worker's delivery", second)
        # Once the delivery is confirmed in Redis no attempt of it is left to come.
        action = str(mailbox.messages[0]["X-Rapport-Action"])
        claims = redis_client.Redis.from_url(f"redis://{redis.address}/0")
        claim = f"{prefix}delivery:{action}"
        _wait_for(lambda: claims.get(claim) == b"delivered", "the confirmed delivery", second)
        claims.close()
    finally:
        for worker in (first, second):
            if worker is not None:
                worker.stop()
        controller.stop()
    ids = [str(message["Message-ID"]) for message in mailbox.messages]
    assert len(ids) == 2, ids
    assert ids[0] == ids[1]  # the same message, recognisable as such
    assert {str(m["X-Rapport-Action"]) for m in mailbox.messages} == {ids[0][1:].split("@")[0]}
