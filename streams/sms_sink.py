"""SMS through Twilio's Messages API, as Twilio documents it: a form POST of ``To``,
``From`` (or ``MessagingServiceSid``) and ``Body`` to
``/2010-04-01/Accounts/<AccountSid>/Messages.json``, authenticated with the Account SID
and auth token (HTTP basic). A 201 is accepted; 429 and 5xx are tried again; any other
answer (an invalid number, a blocked recipient) is final and goes to the dead-letter
topic with Twilio's code and message.

The text is the rendered message's (``rules/message_render.py``), with the operator rules
of its channel applied; the recipient is the action's ``address`` (``profile.privacy.
keep_contacts`` on).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping

import aiohttp

from rules.actions import Action
from streams.delivery import RETRYABLE_STATUS, DeliveryFailed, decode_action, rendered_text
from streams.settings import TwilioAdapter


def twilio_form(action: Action, sender: str) -> dict[str, str]:
    """The form fields of one SMS action; ``DeliveryFailed`` (permanent) without a text
    or an address."""
    _, text, address = rendered_text(action, "phone number")
    field = "MessagingServiceSid" if sender.startswith("MG") else "From"
    return {"To": address, field: sender, "Body": text}


class TwilioSink:
    def __init__(
        self, name: str, settings: TwilioAdapter, environ: Mapping[str, str] = os.environ
    ) -> None:
        sid, token = environ.get(settings.account_sid_env), environ.get(settings.auth_token_env)
        if not sid or not token:
            raise ValueError(
                f"delivery.adapters.{name}: set {settings.account_sid_env} and "
                f"{settings.auth_token_env} (the Twilio account SID and auth token)"
            )
        self.name = name
        self.settings = settings
        credentials = base64.b64encode(f"{sid}:{token}".encode()).decode()
        self._headers = {"Authorization": f"Basic {credentials}"}
        self._url = f"{settings.base_url.rstrip('/')}/2010-04-01/Accounts/{sid}/Messages.json"
        self._session: aiohttp.ClientSession | None = None

    async def deliver(self, action_id: str, body: bytes) -> None:
        form = twilio_form(decode_action(body), self.settings.sender)
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self.settings.timeout_seconds)
            self._session = aiohttp.ClientSession(timeout=timeout)
        try:
            async with self._session.post(
                self._url, data=form, headers=self._headers, allow_redirects=False
            ) as reply:
                if 200 <= reply.status < 300:
                    return
                detail = (await reply.text())[:300]
                retryable = reply.status >= 500 or reply.status in RETRYABLE_STATUS
                raise DeliveryFailed(f"Twilio HTTP {reply.status}: {detail}", not retryable)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise DeliveryFailed(f"{type(error).__name__}: {error}") from error

    def delivered_before(self, action_id: str) -> bool:
        return False

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
