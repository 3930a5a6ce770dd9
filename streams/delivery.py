"""The delivery stage: sent actions from the actions topic to the adapters that deliver them.

Each channel (``email``, ``sms``, ... and ``emit`` for emitted events) goes to the adapter
named for it in ``delivery.channels`` (else ``delivery.default_adapter``):

- ``log``: appends the action, one JSON line, to a file (or standard output);
- ``webhook``: POSTs the action as JSON with ``Idempotency-Key: <action id>``,
  ``X-Rapport-Timestamp`` and ``X-Rapport-Signature: v2=<hex HMAC-SHA256 of
  "<timestamp>.<idempotency key>.<body>">`` (see ``signature``; docs/operations.md shows
  a receiver checking it). A 2xx answer is delivered; 408, 429, 5xx, a timeout or a
  refused connection are tried again with doubling waits; a redirect is not followed
  (the signed action would go where nobody configured); any other answer, or
  ``delivery.max_attempts`` failed tries, sends the action to the actions dead-letter
  topic with the reason. Only https:// targets, unless an adapter sets ``allow_http``.

Before anything is sent, the customer's profile is looked up in the Redis read model
(written before the action was published): an action whose profile is gone (erased, or
anonymised) is withheld, and so is one whose channel needs consent that the customer has
withdrawn since the journey sent it (an unsubscribe while the action waited in the topic
or was being retried). Withheld actions are counted, not dead-lettered.

Every action is claimed in Redis before it is delivered and confirmed after, so an action
read twice (a redelivered input, a restart) is delivered once. The one window left is a
stop between the receiver's answer and the confirm: the next attempt finds the claim
unfinished, asks the adapter whether the action arrived (the log sink looks in its file)
and a webhook receiver gets the same ``Idempotency-Key`` again.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, get_args

import aiohttp
import msgspec
from aiolimiter import AsyncLimiter
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from rules.actions import Action, Message
from streams.redis_io import DELIVERED, DELIVERING, RedisIO
from streams.settings import (
    MIN_SECRET_CHARS,
    DeliverySettings,
    InboxAdapter,
    LogAdapter,
    SmtpAdapter,
    TwilioAdapter,
    WebhookAdapter,
    parse_rate,
)

log = logging.getLogger("rapport.delivery")

#: Answers worth trying again: the receiver may take it later.
RETRYABLE_STATUS = frozenset({408, 425, 429})


class DeliveryFailed(Exception):
    """One try failed; ``permanent`` when trying again cannot help (a 4xx answer)."""

    def __init__(self, detail: str, permanent: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.permanent = permanent
        #: Tries made when the stage gave up.
        self.attempts = 1


_ACTION = msgspec.json.Decoder(Action)


def decode_action(body: bytes) -> Action:
    """A record of the actions topic as an action; ``DeliveryFailed`` (permanent) if not."""
    try:
        return _ACTION.decode(body)
    except msgspec.DecodeError as error:
        raise DeliveryFailed(f"not an action: {error}", permanent=True) from None


def rendered_text(action: Action, address: str) -> tuple[Message, str, str]:
    """A send's message, its text and its recipient; ``DeliveryFailed`` (permanent) without a
    rendered text or without an address (``address`` names the kind, e.g. "email address")."""
    message = action.message
    if message is None or message.text is None:
        raise DeliveryFailed(
            "no rendered message: the rules have no templates/ for this send", permanent=True
        )
    if not action.address:
        raise DeliveryFailed(
            f"no {address} on the action: turn on profile.privacy.keep_contacts", permanent=True
        )
    return message, message.text, action.address


class Sink(Protocol):
    async def deliver(self, action_id: str, body: bytes) -> None: ...

    def delivered_before(self, action_id: str) -> bool:
        """Whether an attempt cut short may have delivered ``action_id`` after all."""
        ...

    async def close(self) -> None: ...


class LogSink:
    def __init__(self, settings: LogAdapter) -> None:
        self.path = None if settings.path == "-" else Path(settings.path)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    async def deliver(self, action_id: str, body: bytes) -> None:
        line = body.rstrip(b"\n") + b"\n"
        if self.path is None:
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()
            return
        with self.path.open("ab") as out:  # one write per line: a crash cannot split it
            out.write(line)

    def delivered_before(self, action_id: str) -> bool:
        if self.path is None or not self.path.exists():
            return False
        needle = f'"action_id":"{action_id}"'.encode()
        with self.path.open("rb") as lines:
            return any(needle in line for line in lines)

    async def close(self) -> None:
        return None


#: How far a receiver should let ``X-Rapport-Timestamp`` be from its own clock.
TIMESTAMP_TOLERANCE_SECONDS = 300


def signature(secret: bytes, timestamp: str, idempotency_key: str, body: bytes) -> str:
    """``v2=`` and the hex HMAC-SHA256 of ``<timestamp>.<idempotency key>.<body>``: what
    receivers check. The key is signed too, so a captured request cannot be replayed
    under another key to slip past the receiver's deduplication.

    >>> signature(b"s3cret", "1700000000", "a1", b'{"a":1}')[:3]
    'v2='
    """
    signed = b".".join((timestamp.encode(), idempotency_key.encode(), body))
    return "v2=" + hmac.new(secret, signed, hashlib.sha256).hexdigest()


class WebhookSink:
    def __init__(self, name: str, settings: WebhookAdapter, secret: bytes) -> None:
        self.name = name
        self.settings = settings
        self._secret = secret
        self._session: aiohttp.ClientSession | None = None

    async def deliver(self, action_id: str, body: bytes) -> None:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self.settings.timeout_seconds)
            self._session = aiohttp.ClientSession(timeout=timeout)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": action_id,
            "X-Rapport-Timestamp": timestamp,
            "X-Rapport-Signature": signature(self._secret, timestamp, action_id, body),
        }
        try:
            async with self._session.post(
                self.settings.url, data=body, headers=headers, allow_redirects=False
            ) as reply:
                if 200 <= reply.status < 300:
                    return
                if 300 <= reply.status < 400:
                    where = reply.headers.get("Location", "")[:200]
                    raise DeliveryFailed(
                        f"HTTP {reply.status}: redirects are not followed (to {where!r}); "
                        "configure the final URL",
                        permanent=True,
                    )
                text = (await reply.text())[:200]
                retryable = reply.status >= 500 or reply.status in RETRYABLE_STATUS
                raise DeliveryFailed(f"HTTP {reply.status}: {text}", permanent=not retryable)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise DeliveryFailed(f"{type(error).__name__}: {error}") from error

    def delivered_before(self, action_id: str) -> bool:
        return False  # the receiver recognises the Idempotency-Key

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


Status = Literal["delivered", "duplicate", "failed", "skipped", "withheld"]


@dataclass(frozen=True)
class Outcome:
    status: Status
    action_id: str | None = None
    adapter: str | None = None
    attempts: int = 0
    detail: str = ""


#: Publishes a dead letter: (raw action, reason, detail, attempts).
DeadLetterAction = Callable[[bytes, str, str, int], Awaitable[None]]


class _Envelope(msgspec.Struct):
    record: str
    action_id: str | None = None
    status: str | None = None
    channel: str | None = None
    kind: str | None = None
    profile_key: str | None = None
    needs_consent: bool = False


_ENVELOPE = msgspec.json.Decoder(_Envelope)


def build_sinks(
    settings: DeliverySettings, environ: Mapping[str, str], redis: RedisIO | None = None
) -> dict[str, Sink]:
    """One sink per configured adapter; a webhook whose secret variable is unset is an error."""
    sinks: dict[str, Sink] = {}
    for name, adapter in settings.adapters.items():
        if isinstance(adapter, InboxAdapter):
            from streams.inbox import InboxSink

            sinks[name] = InboxSink(name, adapter, redis)
            continue
        if isinstance(adapter, LogAdapter):
            sinks[name] = LogSink(adapter)
            continue
        if isinstance(adapter, SmtpAdapter):
            from streams.smtp_sink import SmtpSink

            sinks[name] = SmtpSink(name, adapter, environ)
            continue
        if isinstance(adapter, TwilioAdapter):
            from streams.sms_sink import TwilioSink

            sinks[name] = TwilioSink(name, adapter, environ)
            continue
        secret = environ.get(adapter.secret_env)
        if not secret:
            raise ValueError(
                f"delivery.adapters.{name}.secret_env: environment variable "
                f"{adapter.secret_env} is not set (it must hold the webhook signing secret)"
            )
        if len(secret) < MIN_SECRET_CHARS:
            raise ValueError(
                f"delivery.adapters.{name}.secret_env: the secret in {adapter.secret_env} has "
                f"{len(secret)} characters; at least {MIN_SECRET_CHARS} are needed (make one "
                "with `python -c 'import secrets; print(secrets.token_hex(32))'`)"
            )
        sinks[name] = WebhookSink(name, adapter, secret.encode())
    return sinks


class Delivery:
    def __init__(
        self,
        settings: DeliverySettings,
        claims: RedisIO | None,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self.settings = settings
        self.claims = claims
        self.sinks = build_sinks(settings, environ, claims)
        self.backoff = settings.backoff_seconds
        #: Counts for metrics: outcome -> how many, and tries that failed and were retried.
        self.counts: dict[Status, int] = dict.fromkeys(get_args(Status), 0)
        self.retries = 0
        #: Every try, per adapter (the first ones and the retries).
        self.attempts: dict[str, int] = dict.fromkeys(settings.adapters, 0)
        #: adapter -> its provider quota (``delivery.rate_limits``): a leaky bucket.
        self.limiters = {
            name: AsyncLimiter(*parse_rate(rate)) for name, rate in settings.rate_limits.items()
        }

    async def handle(self, raw: bytes, dead_letter: DeadLetterAction) -> Outcome:
        """Deliver one record of the actions topic, once; milestones and actions that were
        suppressed or deferred are skipped."""
        outcome = await self._handle(raw, dead_letter)
        self.counts[outcome.status] += 1
        return outcome

    async def _handle(self, raw: bytes, dead_letter: DeadLetterAction) -> Outcome:
        try:
            envelope = _ENVELOPE.decode(raw)
        except msgspec.DecodeError as error:
            await dead_letter(raw, "undecodable_action", str(error), 0)
            return Outcome("failed", detail=str(error))
        action_id = envelope.action_id
        if envelope.record != "action" or envelope.status != "sent" or action_id is None:
            return Outcome("skipped", action_id)
        channel = envelope.channel or "emit"
        adapter = self.settings.adapter_for(channel)
        withheld = await self._withheld(envelope)
        if withheld:
            return Outcome("withheld", action_id, adapter, detail=withheld)
        sink = self.sinks[adapter]
        before = None if self.claims is None else await self.claims.claim_delivery(action_id)
        if before == DELIVERED or (before == DELIVERING and sink.delivered_before(action_id)):
            await self._confirm(action_id)
            return Outcome("duplicate", action_id, adapter)
        attempts = 0
        try:
            attempts = await self._with_retries(sink, adapter, action_id, raw)
        except DeliveryFailed as error:
            attempts = error.attempts
            log.error(
                "action %s: %s gave up after %d tries: %s",
                action_id,
                adapter,
                attempts,
                error.detail,
            )
            await dead_letter(raw, "delivery_failed", error.detail, attempts)
            await self._confirm(action_id)  # its dead letter stands for it now
            return Outcome("failed", action_id, adapter, attempts, error.detail)
        await self._confirm(action_id)
        return Outcome("delivered", action_id, adapter, attempts)

    async def _withheld(self, envelope: _Envelope) -> str:
        """Why this action must not go out now (empty: it may): its profile is gone, or its
        channel needs consent the read model no longer shows."""
        if self.claims is None or envelope.profile_key is None:
            return ""
        consent = await self.claims.consent_of(envelope.profile_key)
        if consent is None:
            return "no_profile"
        if envelope.needs_consent and not consent.get(envelope.channel or ""):
            return "no_consent"
        return ""

    async def _with_retries(self, sink: Sink, adapter: str, action_id: str, raw: bytes) -> int:
        initial, longest = self.backoff

        def before_sleep(state: RetryCallState) -> None:
            self.retries += 1
            error = state.outcome.exception() if state.outcome else None
            log.warning(
                "action %s: %s try %d failed (%s); trying again in %.1fs",
                action_id,
                adapter,
                state.attempt_number,
                error,
                state.next_action.sleep if state.next_action else 0.0,
            )

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.settings.max_attempts),
            # Doubling waits with up to one initial wait of jitter, so actions that failed
            # together (a receiver's outage) do not all come back at the same moment.
            wait=wait_exponential(multiplier=initial, min=initial, max=longest)
            + wait_random(0, initial),
            retry=retry_if_exception(lambda e: isinstance(e, DeliveryFailed) and not e.permanent),
            before_sleep=before_sleep,
            reraise=True,
        )
        attempts = 0
        limiter = self.limiters.get(adapter)
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    if limiter is not None:
                        await limiter.acquire()
                    self.attempts[adapter] = self.attempts.get(adapter, 0) + 1
                    await sink.deliver(action_id, raw)
        except DeliveryFailed as error:
            error.attempts = attempts
            raise
        return attempts

    async def _confirm(self, action_id: str) -> None:
        if self.claims is not None:
            await self.claims.confirm_delivery(action_id)

    async def close(self) -> None:
        for sink in self.sinks.values():
            await sink.close()
