"""MPEG-TS over SRT through the supervised relay: options, the passphrase, supervision."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from monitor.core.bus import MemoryBus, Topics
from monitor.core.channels import ChannelConfig
from monitor.core.messages import SegmentMessage, StreamEvent, StreamEventKind, decode_message
from monitor.core.metrics import Metrics
from monitor.core.redact import redact_url
from stream_ingest.config import IngestConfig, TsConfig
from stream_ingest.sources.base import SourceContext
from stream_ingest.sources.registry import source_class
from stream_ingest.sources.srt import SrtEndpoint, SrtSource
from stream_ingest.streamurl import UrlOptionError
from tests.unit.stream_ingest.tsbuild import Builder

SECRET = "correct-horse-battery"


def test_caller_and_listener_urls_and_their_options() -> None:
    caller = SrtEndpoint.parse("srt://encoder.example:9000?latency=200")
    assert (caller.mode, caller.host, caller.port, caller.latency_ms) == (
        "caller",
        "encoder.example",
        9000,
        200,
    )
    listener = SrtEndpoint.parse("srt://:9000?passphrase_env=KEY&pbkeylen=32")
    assert listener.mode == "listener" and listener.passphrase_env == "KEY"
    assert source_class("srt://:9000") is SrtSource


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("srt://:9000?passphrase=x", "unknown option 'passphrase'; known: latency"),
        ("srt://host", "a port is required"),
        ("srt://:9000?mode=caller", "a caller needs the sender's host"),
        ("srt://h:9000?mode=rendezvous", "mode must be caller or listener"),
        ("srt://h:9000?latency=soon", "latency must be a whole number"),
        ("srt://h:9000?pbkeylen=20", "pbkeylen must be 16, 24 or 32"),
    ],
)
def test_bad_srt_urls_are_refused_naming_the_problem(url: str, message: str) -> None:
    with pytest.raises(UrlOptionError, match=message):
        SrtEndpoint.parse(url)


def test_the_passphrase_comes_from_the_environment_and_never_shows_in_a_redacted_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endpoint = SrtEndpoint.parse("srt://:9000?mode=listener&passphrase_env=VQM_TEST_SRT_KEY")
    with pytest.raises(UrlOptionError, match="VQM_TEST_SRT_KEY is not set"):
        endpoint.relay_url()
    monkeypatch.setenv("VQM_TEST_SRT_KEY", "short")
    with pytest.raises(UrlOptionError, match="10 to 79 characters"):
        endpoint.relay_url()
    monkeypatch.setenv("VQM_TEST_SRT_KEY", SECRET)
    url = endpoint.relay_url()
    assert f"passphrase={SECRET}" in url
    assert SECRET not in redact_url(url)


def test_a_multicast_group_url_keeps_its_at_sign_when_redacted() -> None:
    assert redact_url("udp://@239.1.1.1:5000?source=10.1.1.1") == "udp://@239.1.1.1:5000?source=***"


async def test_the_relay_output_is_published_and_its_exit_is_an_event_then_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A stand-in relay writes TS to stdout and its command line (with the passphrase) to
    stderr, as srt-live-transmit does, then exits: segments come out, the exit is a
    source_error event, the relay is started again, and no log line shows the secret."""
    clip = tmp_path / "clip.ts"
    clip.write_bytes(b"".join(Builder(gop=25).frames(0, 25 * 3)))
    relay = tmp_path / "relay"
    relay.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "sys.stderr.write('Media path: ' + sys.argv[1] + ' --> ' + sys.argv[2] + '\\n')\n"
        f"sys.stdout.buffer.write(open({str(clip)!r}, 'rb').read())\n"
        "sys.exit(3)\n"
    )
    relay.chmod(0o755)
    monkeypatch.setenv("VQM_TEST_SRT_KEY", SECRET)
    bus, topics = MemoryBus(), Topics()
    settings = IngestConfig(ts=TsConfig(segment_duration=1.0, srt_relay=str(relay)))
    context = SourceContext(settings, bus, topics, Metrics(CollectorRegistry()))
    channel = ChannelConfig(id="srt", url="srt://:9000?passphrase_env=VQM_TEST_SRT_KEY")
    consumer = bus.consumer([topics.segments, topics.stream_events], "t")
    stop = asyncio.Event()
    caplog.set_level(logging.INFO)
    task = asyncio.create_task(SrtSource(channel, context).run(stop))
    segments: list[SegmentMessage] = []
    events: list[StreamEvent] = []
    deadline = time.monotonic() + 10
    while not [e for e in events if e.kind is StreamEventKind.SOURCE_ERROR] or not segments:
        assert time.monotonic() < deadline, (segments, events)
        for record in await consumer.getmany(timeout_ms=100):
            if record.topic == topics.segments:
                segments.append(decode_message(record.value, SegmentMessage))
            else:
                events.append(decode_message(record.value, StreamEvent))
    stop.set()
    await asyncio.wait_for(task, 5)
    error = next(e for e in events if e.kind is StreamEventKind.SOURCE_ERROR)
    assert "exited with status 3" in error.detail and "restarting in 1 s" in error.detail
    assert segments[0].media_start == 10.0
    assert "srt relay: Media path" in caplog.text
    assert SECRET not in caplog.text and all(SECRET not in e.detail for e in events)
