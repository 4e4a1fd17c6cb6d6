"""Log lines for people (text, the default) or for a log pipeline (``VQM_LOG_FORMAT=json``).

JSON is one object per line (python-json-logger), with the standard fields ``time``,
``level``, ``logger`` and ``message``, and whichever context fields are known where the line
was logged: ``channel``, ``seq``, ``detector``, ``alert_id``, ``trace_id``. Code does not pass
them on every call: it binds them for a stretch of work, and every line logged inside (by any
library) carries them, through a contextvar, so they follow asyncio tasks::

    with log_context(channel="news", seq=42, trace_id=trace_id_for("news", 42)):
        logger.warning("segment does not decode")   # {"channel": "news", "seq": 42, ...}

``extra={"detector": "black"}`` on one call works too and wins over the context. Every line,
text or JSON, goes through :func:`monitor.core.redact.redact` (the message, the traceback
and, in JSON, every string field), so no URL secret reaches a log.

``trace_id`` follows one segment through every stage without travelling on the wire: each
stage derives it from (channel, seq), so a pipeline's lines for one segment share it. When an
OpenTelemetry span is current, its trace and span ids are taken instead.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import logging
import sys
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, Literal

from monitor.core.redact import RedactingFilter, redact

LogFormat = Literal["text", "json"]
CONTEXT_FIELDS = ("channel", "seq", "detector", "alert_id", "trace_id", "span_id")
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

_NOTHING: Mapping[str, Any] = MappingProxyType({})  # read-only: one default for every task
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "vqm_log_context",
    default=_NOTHING,  # noqa: B039 - immutable, and every change sets a new mapping
)


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Bind ``fields`` to every line logged inside (None values are left out)."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: Any) -> None:
    """Bind ``fields`` for the rest of the current task (a channel's follower, say)."""
    _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})


def trace_id_for(channel: str, seq: int) -> str:
    """The 32-hex-digit trace id of one segment, the same in every stage that handles it."""
    return hashlib.sha256(f"{channel}\0{seq}".encode()).hexdigest()[:32]


class ContextFilter(logging.Filter):
    """Copies the bound context (and a current OpenTelemetry span) onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in {**_otel_ids(), **_context.get()}.items():
            if not hasattr(record, key):  # extra= on the call wins
                setattr(record, key, value)
        return True


def _otel_ids() -> dict[str, str]:
    """The current span's ids, only when OpenTelemetry is already loaded (never imported
    here: most deployments do not run it, and importing it costs start-up time)."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return {}
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


def json_formatter() -> logging.Formatter:
    """One JSON object a line, every string in it redacted."""
    from pythonjsonlogger.json import JsonFormatter  # only a JSON-logging process pays for it

    class _RedactingJsonFormatter(JsonFormatter):
        def formatException(self, ei: Any) -> str:  # noqa: N802 - logging's name
            return redact(str(super().formatException(ei)))

        def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
            return {k: redact(v) if isinstance(v, str) else v for k, v in log_data.items()}

    return _RedactingJsonFormatter(
        "%(levelname)s %(name)s %(message)s",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",  # ISO 8601 in UTC, microseconds
        json_ensure_ascii=False,
    )


class _VqmHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The stderr handler :func:`setup_logging` installs (told apart from anyone else's)."""


CHATTY_LIBRARIES = ("httpx",)


def setup_logging(level: str, fmt: LogFormat = "text") -> None:
    """Log to stderr at ``level`` in ``fmt``, redacted and with the bound context.

    A second call replaces what the first installed. Handlers someone else put on the root
    logger (a program that embeds vqm, a test harness) are kept and given the same filters,
    as :func:`logging.basicConfig` would leave them."""
    root = logging.getLogger()
    for previous in [h for h in root.handlers if isinstance(h, _VqmHandler)]:
        root.removeHandler(previous)
    theirs = list(root.handlers)
    if not theirs:
        ours = _VqmHandler(sys.stderr)
        ours.setFormatter(json_formatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
        root.addHandler(ours)
    for handler in root.handlers:
        for kind in (ContextFilter, RedactingFilter):
            if not any(isinstance(f, kind) for f in handler.filters):
                handler.addFilter(kind())
    root.setLevel(level.upper())
    # httpx logs every request at INFO: with hundreds of channels polling, hundreds of lines
    # a second that say nothing (ingest reports what fails itself). DEBUG keeps them.
    chatty = logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(chatty)
