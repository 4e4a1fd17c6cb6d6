"""`vqm scan URL` on a VOD playlist: every segment fetched, defects at playlist times."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.app.cli import app
from monitor.app.synthetic.channel import SyntheticChannel
from monitor.app.synthetic.defects import Defect
from monitor.app.synthetic.hls_server import LiveHlsServer
from tests.static_http import serving


@pytest.fixture(scope="module")
def vod_url() -> Iterator[str]:
    """A VOD origin in its own thread and loop, since `vqm scan` runs its own loop."""
    channel = SyntheticChannel(seed=8080, schedule=[Defect(kind="black", start=4.0, duration=3.0)])
    server = LiveHlsServer({"vod": channel}, port=0, mode="vod", vod_segments=5)
    loop = asyncio.new_event_loop()
    ready, done = threading.Event(), asyncio.Event()

    async def serve() -> None:
        await server.start()
        ready.set()
        await done.wait()
        await server.stop()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(30), "VOD origin did not start"
    try:
        yield server.playlist_url("vod")
    finally:
        loop.call_soon_threadsafe(done.set)
        thread.join(10)


def assert_scan_finds_the_black_at_4_to_7_s(url: str) -> None:
    """Both playlists carry one black stretch, at 4-7 s."""
    result = CliRunner().invoke(app, ["scan", url, "--format", "jsonl"])
    assert result.exit_code == 0, result.stderr
    defects = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["detector"] for d in defects] == ["black"]
    assert defects[0]["start"] == pytest.approx(4.0, abs=0.1)
    assert defects[0]["end"] == pytest.approx(7.0, abs=0.1)


def test_scan_of_a_vod_playlist_reports_defects_at_their_times(vod_url: str) -> None:
    assert_scan_finds_the_black_at_4_to_7_s(vod_url)


def test_scan_of_an_unreachable_playlist_url_exits_non_zero_with_one_line() -> None:
    result = CliRunner().invoke(app, ["scan", "http://127.0.0.1:9/nothing.m3u8"])
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:")


@pytest.fixture(scope="module")
def fmp4_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An fMP4 HLS (EXT-X-MAP init segment) written by FFmpeg, served statically."""
    import shutil
    import subprocess

    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg (Debian package 'ffmpeg') is not installed")
    root = tmp_path_factory.mktemp("fmp4")
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "10",
            "-vf",
            "drawbox=enable='between(t,4,7)':color=black:t=fill",
            "-c:v",
            "libx264",
            "-g",
            "50",
            "-c:a",
            "aac",
            "-f",
            "hls",
            "-hls_time",
            "2",
            "-hls_playlist_type",
            "vod",
            "-hls_segment_type",
            "fmp4",
            str(root / "index.m3u8"),
        ],
        check=True,
        timeout=120,
    )
    with serving(root) as base:
        yield f"{base}/index.m3u8"


def test_scan_of_an_fmp4_playlist_decodes_each_segment_with_its_init_section(fmp4_url: str) -> None:
    assert_scan_finds_the_black_at_4_to_7_s(fmp4_url)


def test_vqm_run_on_a_vod_playlist_alerts_its_black_before_the_channel_ends(
    fmp4_url: str, tmp_path: Path
) -> None:
    from tests.conftest import free_port

    config = tmp_path / "channels.yaml"
    config.write_text(f"channels:\n  - id: vod\n    url: {fmp4_url}\nalerting:\n  flap_window: 0\n")
    args = ["run", "--config", str(config), "--port", str(free_port()), "--duration", "8"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines()]
    assert [(words[1], words[3]) for words in lines] == [("OPEN", "black"), ("RESOLVED", "black")]


def test_a_vod_scan_fetches_each_segment_only_after_the_one_before_was_decoded(
    vod_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Segments stream through the scan one at a time; none waits in memory for the rest."""
    import monitor.inference.media as media
    from stream_ingest.fetch import Fetcher

    fetched: list[str] = []
    at_decode: list[int] = []
    real_get, real_decode = Fetcher.get, media.decode_bytes

    async def get(self: Fetcher, url: str, **kwargs: object) -> bytes:
        fetched.append(url)
        return await real_get(self, url, **kwargs)  # type: ignore[arg-type]

    def decode(data: bytes, needs: object = None, audio: bytes = b""):  # type: ignore[no-untyped-def]
        at_decode.append(sum(".ts" in u for u in fetched))
        return real_decode(data, needs, audio)  # type: ignore[arg-type]

    monkeypatch.setattr(Fetcher, "get", get)
    monkeypatch.setattr(media, "decode_bytes", decode)
    assert_scan_finds_the_black_at_4_to_7_s(vod_url)
    assert at_decode == [1, 2, 3, 4, 5]
