"""Email over SMTP: a sent action's rendered message as a MIME email, to the customer.

The message is ``multipart/alternative`` (the text part, and the HTML part when the
template has one), with:

- ``Message-ID: <action id@from domain>``: a retry of the same action carries the same id,
  so the receiving side (and the team reading bounces) can tell it is one message;
- ``List-Unsubscribe: <the signed link>`` and ``List-Unsubscribe-Post:
  List-Unsubscribe=One-Click`` (RFC 8058), which mailbox providers require of bulk mail;
- ``X-Rapport-Action``, ``X-Rapport-Journey``: what sent it.

The recipient is the action's ``address``, which actions carry only with
``profile.privacy.keep_contacts`` on; an action without one cannot be sent and goes to the
dead-letter topic saying so. A 4xx reply (greylisting, a full queue) or a lost connection
is tried again; a 5xx reply (a refused recipient, a refused sender) is not.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib

from rules.actions import Action
from streams.delivery import DeliveryFailed, decode_action, rendered_text
from streams.settings import SmtpAdapter


def email_of(action: Action, settings: SmtpAdapter, now: float) -> EmailMessage:
    """The MIME message of one email action; ``DeliveryFailed`` (permanent) when the
    action has no rendered message or no address."""
    message, text, address = rendered_text(action, "email address")
    email = EmailMessage()
    email["From"] = Address(settings.from_name or "", addr_spec=settings.from_address)
    email["To"] = address
    email["Subject"] = message.subject or ""
    email["Date"] = formatdate(now, usegmt=True)
    email["Message-ID"] = f"<{action.action_id}@{settings.domain}>"
    if message.unsubscribe:
        email["List-Unsubscribe"] = f"<{message.unsubscribe}>"
        email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    email["X-Rapport-Action"] = action.action_id
    email["X-Rapport-Journey"] = action.journey_id
    email.set_content(text)
    if message.html is not None:
        email.add_alternative(message.html, subtype="html")
    email["Content-Language"] = message.locale  # after the content: set_content drops Content-*
    return email


class SmtpSink:
    """Delivers email actions through one SMTP server, a connection per message."""

    def __init__(
        self, name: str, settings: SmtpAdapter, environ: Mapping[str, str] = os.environ
    ) -> None:
        self.name = name
        self.settings = settings
        self._login: tuple[str, str] | None = None
        if settings.username_env is not None and settings.password_env is not None:
            user, password = environ.get(settings.username_env), environ.get(settings.password_env)
            if not user or not password:
                raise ValueError(
                    f"delivery.adapters.{name}: set {settings.username_env} and "
                    f"{settings.password_env} (the SMTP login)"
                )
            self._login = (user, password)

    async def deliver(self, action_id: str, body: bytes) -> None:
        email = email_of(decode_action(body), self.settings, time.time())
        settings = self.settings
        try:
            await aiosmtplib.send(
                email,
                hostname=settings.host,
                port=settings.port,
                use_tls=settings.security == "tls",
                start_tls=settings.security == "starttls",
                username=self._login[0] if self._login else None,
                password=self._login[1] if self._login else None,
                timeout=settings.timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [refused.code for refused in error.recipients]
            detail = "; ".join(f"SMTP {r.code}: {r.message}" for r in error.recipients)
            raise DeliveryFailed(f"recipient refused: {detail}", min(codes) >= 500) from None
        except aiosmtplib.SMTPResponseException as error:
            permanent = 500 <= error.code < 600
            raise DeliveryFailed(f"SMTP {error.code}: {error.message}", permanent) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise DeliveryFailed(f"{type(error).__name__}: {error}") from None

    def delivered_before(self, action_id: str) -> bool:
        return False  # a retry carries the same Message-ID

    async def close(self) -> None:
        return None
