"""VQM_LOG_FORMAT=json: one JSON object a line, carrying the context it was logged in (channel,
detector, alert id, trace id), across asyncio tasks and threads, with every secret redacted."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from monitor.core.logs import (
    ContextFilter,
    bind,
    json_formatter,
    log_context,
    trace_id_for,
)
from monitor.core.redact import RedactingFilter


class JsonLines:
    """The JSON handler a JSON-logging process installs, on the logger ``vqm.test``."""

    def __init__(self) -> None:
        self.out = io.StringIO()
        self.handler = logging.StreamHandler(self.out)
        self.handler.setFormatter(json_formatter())
        self.handler.addFilter(ContextFilter())
        self.handler.addFilter(RedactingFilter())

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.out.getvalue().splitlines()]


@pytest.fixture
def json_lines() -> Iterator[JsonLines]:
    capture = JsonLines()
    _log().addHandler(capture.handler)
    _log().setLevel(logging.DEBUG)
    try:
        yield capture
    finally:
        _log().removeHandler(capture.handler)


def _log() -> logging.Logger:
    return logging.getLogger("vqm.test")


def test_each_line_is_one_object_even_for_a_message_with_a_newline(json_lines: JsonLines) -> None:
    _log().warning("segment %d late", 7)
    _log().info("line one\nline two")
    first, second = json_lines.records()
    assert (first["level"], first["logger"], first["message"]) == (
        "WARNING",
        "vqm.test",
        "segment 7 late",
    )
    assert first["time"].endswith("+00:00")
    assert second["message"] == "line one\nline two"


def test_context_fields_follow_the_work_and_extra_wins(json_lines: JsonLines) -> None:
    trace = trace_id_for("news", 42)
    with log_context(channel="news", seq=42, trace_id=trace):
        _log().warning("decode failed")
        with log_context(detector="black", alert_id="3f2a9c0e5b7d1a44"):
            _log().error("detector failed")
        _log().info("override", extra={"channel": "sport"})
    _log().info("outside")
    first, second, third, fourth = json_lines.records()
    assert {k: first[k] for k in ("channel", "seq", "trace_id")} == {
        "channel": "news",
        "seq": 42,
        "trace_id": trace,
    }
    assert "detector" not in first
    assert (second["detector"], second["alert_id"], second["channel"]) == (
        "black",
        "3f2a9c0e5b7d1a44",
        "news",
    )
    assert third["channel"] == "sport"
    assert not {"channel", "seq", "trace_id", "detector", "alert_id"} & set(fourth)


def test_the_trace_id_of_a_segment_is_the_same_in_every_stage() -> None:
    assert trace_id_for("news", 42) == trace_id_for("news", 42)
    assert trace_id_for("news", 42) != trace_id_for("news", 43)
    assert len(trace_id_for("news", 42)) == 32 and int(trace_id_for("news", 42), 16) >= 0


async def test_a_bound_channel_stays_with_its_task_and_reaches_worker_threads(
    json_lines: JsonLines,
) -> None:

    async def follower(channel: str) -> None:
        bind(channel=channel)
        await asyncio.sleep(0)
        _log().info("following")
        await asyncio.to_thread(_log().info, "in a thread")

    await asyncio.gather(follower("news"), follower("sport"))
    _log().info("supervisor")
    by_message: dict[str, list[str | None]] = {}
    for r in json_lines.records():
        by_message.setdefault(r["message"], []).append(r.get("channel"))
    assert sorted(by_message["following"]) == ["news", "sport"]  # type: ignore[type-var]
    assert sorted(by_message["in a thread"]) == ["news", "sport"]  # type: ignore[type-var]
    assert by_message["supervisor"] == [None]


def test_no_secret_reaches_a_json_line_in_the_message_a_field_or_a_traceback(
    json_lines: JsonLines,
) -> None:
    url = "https://viewer:S3cretPassw0rd@cdn.example/live.m3u8?token=T0kenS3cret"
    _log().warning("fetching %s", url, extra={"url": url})
    try:
        raise ConnectionError(f"cannot reach {url}")
    except ConnectionError:
        _log().exception("origin down")
    text = json_lines.out.getvalue()
    assert "S3cretPassw0rd" not in text and "T0kenS3cret" not in text
    first, second = json_lines.records()
    assert first["url"] == "https://***@cdn.example/live.m3u8?token=***"
    assert "ConnectionError: cannot reach https://***@cdn.example" in second["exc_info"]


@pytest.mark.parametrize(("level", "logged"), [("INFO", False), ("DEBUG", True)])
def test_a_request_is_not_a_log_line_unless_debugging(
    level: str, logged: bool, caplog: pytest.LogCaptureFixture
) -> None:
    import httpx

    from monitor.core.logs import CHATTY_LIBRARIES, setup_logging

    root = logging.getLogger()
    saved = root.level, {name: logging.getLogger(name).level for name in CHATTY_LIBRARIES}
    try:
        setup_logging(level)
        with httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(200))) as c:
            c.get("http://origin.example/live/index.m3u8")
        assert ("HTTP Request" in caplog.text) is logged
    finally:
        root.setLevel(saved[0])
        for name, was in saved[1].items():
            logging.getLogger(name).setLevel(was)
