"""Links in pages: the channel's tile on the status wall, and a signed, expiring picture link.

A page read on a phone at night should show what the channel showed and lead to the wall, so
pages carry two links under ``VQM_PUBLIC_URL`` (the address people reach the API and wall at):

- the wall, with the channel's tile picked out: ``{public}/#channel=news``;
- the picture kept when the alert opened:
  ``{public}/links/channels/news/alerts/<alert id>/thumbnail.jpg?expires=<epoch>&signature=<mac>``.

The picture link needs no bearer token, because Slack, Teams and PagerDuty fetch it
themselves; it is signed instead: an HMAC-SHA256 over the channel id, the alert id and the
expiry, keyed with ``VQM_LINK_SECRET`` or a key derived from ``VQM_API_TOKEN``. Without a
key nothing is signed (:class:`LinkSigner` refuses an empty key) and pages carry no picture;
without a public URL they carry no links at all, rather than links nobody can open.

    links = PageLinks.from_settings(settings)   # None without VQM_PUBLIC_URL
    links.wall(alert.channel_id)
    links.picture(alert)                        # None without a key or a kept picture
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from alerting.models import Alert
from monitor.core.settings import Settings

logger = logging.getLogger(__name__)

PICTURE_ROUTE = "/links/channels/{channel_id}/alerts/{alert_id}/thumbnail.jpg"
# Derivation label: the key taken from the API token is never the token itself, so a leaked
# link key (or a signature) says nothing about the token.
_DERIVED_FROM_TOKEN = b"vqm picture links v1"
_EXPIRES_DIGITS = 12  # epoch seconds up to year 33658: anything longer is not an expiry


def link_key(settings: Settings) -> bytes:
    """``VQM_LINK_SECRET``, else a key derived from ``VQM_API_TOKEN``, else empty (no key)."""
    if settings.link_secret is not None:
        return settings.link_secret.get_secret_value().encode()
    if settings.api_token:
        return hmac.new(settings.api_token.encode(), _DERIVED_FROM_TOKEN, hashlib.sha256).digest()
    return b""


class LinkSigner:
    """Signs and checks picture links; built only with a key.

    >>> signer = LinkSigner(b"a key of some length")
    >>> mac = signer.sign("news", "3f2a9c0e5b7d1a44", expires=1_900_000_000)
    >>> signer.valid("news", "3f2a9c0e5b7d1a44", "1900000000", mac, now=1_800_000_000)
    True
    """

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError(
                "refusing to sign links without a key: set VQM_LINK_SECRET or VQM_API_TOKEN"
            )
        self._key = key

    @classmethod
    def from_settings(cls, settings: Settings) -> LinkSigner | None:
        key = link_key(settings)
        return cls(key) if key else None

    def sign(self, channel_id: str, alert_id: str, expires: int) -> str:
        """URL-safe base64 of the HMAC over a JSON list, so no two inputs share a message."""
        message = json.dumps([channel_id, alert_id, expires]).encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def valid(
        self,
        channel_id: str,
        alert_id: str,
        expires: str | None,
        signature: str | None,
        now: float,
    ) -> bool:
        """True for this link's own unexpired signature (compared in constant time)."""
        if not expires or not signature or len(expires) > _EXPIRES_DIGITS:
            return False
        if not expires.isascii() or not expires.isdigit():
            return False
        expected = self.sign(channel_id, alert_id, int(expires))
        genuine = hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))
        return genuine and now < int(expires)


@dataclass(frozen=True)
class PageLinks:
    """The links notifiers put in pages; see the module docstring."""

    public_url: str
    signer: LinkSigner | None
    ttl: float
    clock: Callable[[], float] = time.time

    @classmethod
    def from_settings(
        cls, settings: Settings, clock: Callable[[], float] = time.time
    ) -> PageLinks | None:
        """None without ``VQM_PUBLIC_URL``: no link is better than one nobody can open."""
        if settings.public_url is None:
            return None
        signer = LinkSigner.from_settings(settings)
        if signer is None:
            logger.warning(
                "pages link to the wall but carry no picture: set VQM_LINK_SECRET or "
                "VQM_API_TOKEN so picture links can be signed"
            )
        return cls(str(settings.public_url).rstrip("/"), signer, settings.link_ttl, clock)

    def wall(self, channel_id: str) -> str:
        """The status wall with the channel's tile picked out (see ``static/wall.js``)."""
        return f"{self.public_url}/#channel={quote(channel_id, safe='')}"

    def picture(self, alert: Alert) -> str | None:
        """A signed link to the picture kept when ``alert`` opened, valid for ``ttl`` seconds;
        None when there is no key or no picture was kept."""
        if self.signer is None or not alert.picture:
            return None
        expires = int(self.clock() + self.ttl)
        path = PICTURE_ROUTE.format(
            channel_id=quote(alert.channel_id, safe=""), alert_id=quote(alert.id, safe="")
        )
        query = urlencode(
            {"expires": expires, "signature": self.signer.sign(alert.channel_id, alert.id, expires)}
        )
        return f"{self.public_url}{path}?{query}"
