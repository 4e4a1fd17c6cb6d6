"""Message wire format, the memory bus, the memory state store and strict config."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from monitor.app.config import ConfigError, VqmConfig, load_config
from monitor.core.bus import MemoryBus
from monitor.core.messages import (
    DefectSpan,
    DetectionMessage,
    MessageError,
    SegmentMessage,
    StreamEvent,
    StreamEventKind,
    decode_message,
    encode_message,
)
from monitor.core.state import MemoryStateStore


def test_a_segment_round_trips_with_its_raw_payload() -> None:
    payload = bytes(range(256)) * 1000
    msg = SegmentMessage(channel_id="news", seq=7, duration=2.0, payload=payload)
    wire = encode_message(msg)
    assert payload in wire  # raw bytes, not base64
    back = decode_message(wire, SegmentMessage)
    assert back.payload == payload and back.seq == 7 and back.schema_version == 1


def test_a_segment_with_separate_audio_round_trips_and_one_without_keeps_its_wire_form() -> None:
    msg = SegmentMessage(channel_id="news", seq=7, duration=2.0, payload=b"video")
    assert b"audio_size" not in encode_message(msg)  # older consumers forbid unknown keys
    with_audio = msg.model_copy(update={"audio_payload": b"init+fragments"})
    back = decode_message(encode_message(with_audio), SegmentMessage)
    assert (back.payload, back.audio_payload) == (b"video", b"init+fragments")


@pytest.mark.parametrize("size", ["-1", "999", "true", '"3"'])
def test_a_segment_whose_audio_size_does_not_fit_is_refused(size: str) -> None:
    msg = SegmentMessage(channel_id="news", seq=7, duration=2.0, payload=b"vid", audio_payload=b"a")
    wire = encode_message(msg).replace(b'"audio_size":1', b'"audio_size":' + size.encode())
    header_end = wire.index(b"}", 4) + 1  # a flat JSON header: its length prefix, redone
    fixed = (header_end - 4).to_bytes(4, "big") + wire[4:]
    with pytest.raises(MessageError, match="audio_size"):
        decode_message(fixed, SegmentMessage)


def test_a_detection_round_trips_with_its_spans() -> None:
    msg = DetectionMessage(
        channel_id="news",
        seq=3,
        detector="audio_artifact",
        media_start=6.0,
        media_end=8.0,
        spans=[DefectSpan(start=6.5, end=7.5, confidence=0.9, label="hum")],
        fetched_at=1.0,
    )
    assert decode_message(encode_message(msg), DetectionMessage) == msg
    assert msg.idempotency_key == "news:3:audio_artifact"


@pytest.mark.parametrize(
    "wire",
    [b"", b"\x00\x00", b"\x00\x00\x00\xffshort", b"\x00\x00\x00\x02{}", b"\x00\x00\x00\x04null"],
)
def test_bytes_that_are_not_a_message_raise_a_message_error(wire: bytes) -> None:
    with pytest.raises(MessageError):
        decode_message(wire, SegmentMessage)


def test_a_message_of_another_schema_version_is_rejected() -> None:
    event = StreamEvent(channel_id="c", kind=StreamEventKind.GAP)
    wire = encode_message(event).replace(b'"schema_version":1', b'"schema_version":9')
    with pytest.raises(MessageError):
        decode_message(wire, StreamEvent)


async def test_memory_bus_redelivers_uncommitted_records_to_the_next_consumer_of_a_group() -> None:
    bus = MemoryBus()
    first = bus.consumer(["t"], "g")
    for i in range(3):
        await bus.publish("t", "k", str(i).encode())
    assert [r.value for r in await first.getmany(timeout_ms=10)] == [b"0", b"1", b"2"]
    await first.commit()
    await bus.publish("t", "k", b"3")
    assert [r.value for r in await first.getmany(timeout_ms=10)] == [b"3"]
    await first.stop()  # crashed before committing "3"
    second = bus.consumer(["t"], "g")
    assert [r.value for r in await second.getmany(timeout_ms=10)] == [b"3"]


async def test_memory_bus_wakes_a_waiting_consumer_when_a_record_arrives() -> None:
    bus = MemoryBus()
    consumer = bus.consumer(["t"], "g")
    waiting = asyncio.create_task(consumer.getmany(timeout_ms=5000))
    await asyncio.sleep(0.01)
    await bus.publish("t", "k", b"x")
    records = await asyncio.wait_for(waiting, 1.0)
    assert [r.value for r in records] == [b"x"]


async def test_memory_state_set_if_absent_is_true_once_and_again_after_the_ttl() -> None:
    now = [0.0]
    store = MemoryStateStore(clock=lambda: now[0])
    assert await store.set_if_absent("dedup", "a", "1", ttl=10)
    assert not await store.set_if_absent("dedup", "a", "1", ttl=10)
    now[0] = 11.0
    assert await store.get("dedup", "a") is None
    assert await store.set_if_absent("dedup", "a", "1", ttl=10)
    await store.set("other", "b", "2")
    assert await store.items("dedup") == {"a": "1"}


def test_config_errors_name_the_file_the_line_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "channels.yaml"
    path.write_text(
        "channels:\n"
        "  - id: news\n"
        "    url: http://origin/news.m3u8\n"
        "    detectors:\n"
        "      - type: black\n"
        "        picture_shar: 0.9\n"
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert f"{path}:6" in message and "picture_shar" in message


def test_an_unknown_detector_in_a_config_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "channels.yaml"
    path.write_text("detectors:\n  - type: sparkle\n")
    with pytest.raises(ConfigError, match="sparkle"):
        load_config(path)


def test_channel_overrides_replace_file_defaults_which_replace_plugin_defaults() -> None:
    config = VqmConfig.model_validate(
        {
            "detectors": [
                {"type": "black", "min_duration": 5.0},
                {"type": "silence", "enabled": False},
            ],
            "channels": [
                {
                    "id": "a",
                    "url": "http://x/a.m3u8",
                    "detectors": [{"type": "black", "min_duration": 1.0}],
                },
                {"id": "b", "url": "http://x/b.m3u8"},
            ],
        }
    )
    a, b = config.detectors_for(config.channel("a")), config.detectors_for(config.channel("b"))
    assert a["black"].min_duration == 1.0 and b["black"].min_duration == 5.0
    assert "silence" not in a and "freeze" in b


def test_duplicate_channel_ids_are_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        VqmConfig.model_validate(
            {"channels": [{"id": "a", "url": "http://o/u"}, {"id": "a", "url": "http://o/v"}]}
        )


def test_a_variant_all_channels_renditions_are_sub_channels_with_its_settings(
    tmp_path: Path,
) -> None:
    path = tmp_path / "channels.yaml"
    path.write_text(
        "channels:\n"
        "  - id: news\n"
        "    url: http://origin/news/master.m3u8\n"
        "    variant: all\n"
        "    severity: critical\n"
        "    detectors:\n"
        "      - type: black\n"
        "        min_duration: 1\n"
        "  - id: sport\n"
        "    url: http://origin/sport/master.m3u8\n"
    )
    config = load_config(path)
    rendition = config.channel("news@720p")
    assert (rendition.id, rendition.severity, rendition.display_name) == (
        "news@720p",
        "critical",
        "news 720p",
    )
    assert config.detectors_for(rendition)["black"].min_duration == 1
    for stray in ("sport@720p", "radio@720p", "news@", "@720p"):
        with pytest.raises(KeyError):
            config.channel(stray)  # only a variant: all channel has renditions


def test_a_configured_channel_id_cannot_look_like_a_rendition() -> None:
    with pytest.raises(ValueError, match="id"):
        VqmConfig.model_validate({"channels": [{"id": "news@720p", "url": "http://o/u"}]})


def test_every_plugin_is_known_even_when_one_plugin_module_was_imported_first() -> None:
    import subprocess
    import sys

    code = (
        "import json, monitor.inference.detectors.silence\n"
        "from monitor.inference.detectors.registry import detector_types\n"
        "print(json.dumps(sorted(detector_types())))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert {"black", "freeze", "silence", "audio_artifact", "av_sync"} <= set(
        json.loads(out.stdout)
    )


async def test_a_stage_that_finishes_leaves_the_others_running_until_stop() -> None:
    from monitor.app.runtime import _wait_stop_or_failure

    stop = asyncio.Event()
    finished = asyncio.create_task(asyncio.sleep(0))
    still_running = asyncio.create_task(stop.wait())
    waiter = asyncio.create_task(_wait_stop_or_failure(stop, {"a": finished, "b": still_running}))
    await asyncio.sleep(0.05)
    assert not waiter.done()  # "a" ending did not end the process
    stop.set()
    await asyncio.wait_for(waiter, 1)


async def test_a_failing_stage_stops_the_process_with_its_name() -> None:
    from monitor.app.runtime import _wait_stop_or_failure

    async def broken() -> None:
        raise OSError("disk gone")

    stop = asyncio.Event()
    other = asyncio.create_task(stop.wait())
    with pytest.raises(RuntimeError, match="stage ingest failed"):
        await _wait_stop_or_failure(stop, {"ingest": asyncio.create_task(broken()), "b": other})
    other.cancel()
