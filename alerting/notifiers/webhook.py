"""A generic signed JSON webhook, for receivers vqm has no dedicated notifier for.

The body is the :class:`AlertEvent` as JSON. ``X-VQM-Signature: sha256=<hex>`` is the
HMAC-SHA256 of the exact body bytes with the shared secret, so a receiver can tell vqm's
requests from anyone else's; :func:`verify_signature` is the receiver's side of that.
``X-VQM-Delivery`` is the same for every retry of one transition, for receivers that dedupe.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal

from pydantic import Field, SecretStr

from alerting.models import AlertEvent
from alerting.notifiers.base import HttpNotifier, NotifierConfig
from alerting.notifiers.registry import register

SIGNATURE_HEADER = "X-VQM-Signature"
TIMESTAMP_HEADER = "X-VQM-Timestamp"
DELIVERY_HEADER = "X-VQM-Delivery"


class WebhookConfig(NotifierConfig):
    """Any HTTP endpoint that takes a JSON POST."""

    type: Literal["webhook"] = "webhook"
    secret: SecretStr = Field(min_length=16, description="HMAC key shared with the receiver.")
    headers: dict[str, str] = Field(
        default_factory=dict, description="Extra request headers (e.g. an API token)."
    )


@register
class WebhookNotifier(HttpNotifier):
    """POSTs each event as JSON, signed with the shared secret."""

    key = "webhook"
    config_class = WebhookConfig
    config: WebhookConfig

    async def send(self, event: AlertEvent) -> None:
        body = event.model_dump_json().encode()
        headers = {
            **self.config.headers,
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, self.config.secret.get_secret_value()),
            TIMESTAMP_HEADER: str(int(self.clock())),
            DELIVERY_HEADER: f"{event.alert.id}:{event.transition.value}",
        }
        await self.post(self.url, content=body, headers=headers)


def sign(body: bytes, secret: str) -> str:
    """``sha256=<hex HMAC-SHA256 of body>``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(body: bytes, secret: str, header: str | None) -> bool:
    """True when ``header`` is the signature of ``body`` with ``secret`` (constant time)."""
    return header is not None and hmac.compare_digest(sign(body, secret), header)
