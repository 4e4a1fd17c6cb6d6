"""`vqm scan` of a master playlist whose sound is a separate rendition: the audio is joined
to the video (or, fMP4, carried beside it), so a silence in the audio rendition is found at
its media time."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from monitor.app.cli import app
from tests.static_http import serving
from tests.unit.stream_ingest.multivariant import SILENCE, write_master

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs FFmpeg's CLI")


@pytest.fixture(scope="module", params=["mpegts", "fmp4"])
def master_url(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[str]:
    """FFmpeg's master playlist (MPEG-TS or fMP4 segments) served by a static HTTP server in
    a thread of its own (the scan runs its own event loop)."""
    root = tmp_path_factory.mktemp("master")
    write_master(root, fmp4=request.param == "fmp4")
    with serving(root) as base:
        yield f"{base}/master.m3u8"


def test_scan_of_a_master_url_finds_the_silence_of_its_separate_audio_rendition(
    master_url: str,
) -> None:
    result = CliRunner().invoke(app, ["scan", master_url, "--format", "jsonl"])
    assert result.exit_code == 0, result.stderr
    defects = [json.loads(line) for line in result.stdout.splitlines()]
    # The best variant (320x180) has no black of its own; without the join there is no
    # sound at all, which is no silence either (silence needs audio to measure).
    assert [d["detector"] for d in defects] == ["silence"], defects
    assert defects[0]["start"] == pytest.approx(SILENCE[0], abs=0.3)
    assert defects[0]["end"] == pytest.approx(SILENCE[1], abs=0.3)
