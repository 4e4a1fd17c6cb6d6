"""What may be shown of a URL: one function every log line, stream event and page goes through.

URLs carry secrets: ``user:password@`` of an origin, signed-URL query values (``?token=``,
``?sig=``), and webhook paths that *are* the credential (Slack's ``/services/T…/B…/X…``).
:func:`redact_url` keeps what an operator needs to tell one URL from another (scheme, host,
port, the path, the query's keys) and replaces every secret with ``***``::

    redact_url("https://ops:pw@cdn.example/live/index.m3u8?token=abc&v=2")
    # 'https://***@cdn.example/live/index.m3u8?token=***&v=***'

:func:`redact` does the same to every URL inside a text (a log message, an error detail), and
:class:`RedactingFilter` applies it to every log record of the process, whoever logged it (vqm,
httpx, uvicorn). :func:`log_safe` escapes what a caller typed (an ack's ``by``) so it cannot
forge a log line.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]{1,15}://[^\s'\"<>]+")
# Webhook URLs whose path is the secret: keep the host and the first segment, mask the rest.
_SECRET_PATHS = (
    re.compile(r"^(/services)/.+$"),  # Slack incoming webhooks
    re.compile(r"^(/api/webhooks)/.+$"),  # Discord
    re.compile(r"^(/webhookb2)/.+$"),  # Microsoft Teams (Office 365 connectors)
    re.compile(r"^(/workflows)/.+$"),  # Power Automate / Teams workflows
    re.compile(r"^(/integration/[^/]+)/.+$"),  # Opsgenie-style integration keys
)


def redact_url(url: str) -> str:
    """``url`` without user-info, query values or secret path segments."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return MASK  # not even parseable: show nothing of it
    netloc = host if ":" not in host else f"[{host}]"
    if port is not None:
        netloc += f":{port}"
    if parts.username or parts.password is not None:
        netloc = f"{MASK}@{netloc}"
    elif parts.username == "":
        netloc = f"@{netloc}"  # udp://@239.1.1.1:5000: a multicast group, nothing secret
    path = parts.path
    for pattern in _SECRET_PATHS:
        path = pattern.sub(rf"\1/{MASK}", path)
    query = "&".join(
        f"{pair.split('=', 1)[0]}={MASK}" if "=" in pair else MASK
        for pair in parts.query.split("&")
        if pair
    )
    return urlunsplit((parts.scheme, netloc, path, query, MASK if parts.fragment else ""))


def redact(text: str) -> str:
    """``text`` with every URL in it redacted."""
    return _URL.sub(lambda m: redact_url(m.group(0)), text) if "://" in text else text


def log_safe(value: object) -> str:
    """A caller-supplied value as one printable line: control characters and line breaks are
    escaped (``\\n`` stays two characters), so nobody can start a fake log line."""
    text = str(value)
    if text.isprintable():
        return text
    return repr(text)[1:-1]


class RedactingFilter(logging.Filter):
    """Redacts the URLs of every record that passes (install it on the handlers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_text is None and record.exc_info[1] is not None:
            # Tracebacks carry URLs in exception messages too: render and redact them once.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True
