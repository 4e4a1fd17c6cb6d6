"""Captions on a channel that must carry them: a stream whose A/53 caption data stops is
reported from where it stopped; a captioned stream is not; a channel that need not carry
captions is not judged at all."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lab.synth.captions import captioned_ts
from monitor.app.cli import app
from monitor.inference.detectors.captions import CaptionsConfig, CaptionsDetector
from monitor.inference.media import iter_decoded
from monitor.inference.segment import DecodeNeeds
from tests.real_media import real_footage

FPS = 25


@pytest.fixture(scope="module")
def pictures() -> np.ndarray:
    """20 s of real camera footage (the clip played forth and back), 288x360 grey."""
    parts = [c.luma for c in iter_decoded(str(real_footage()), DecodeNeeds(audio=False))]
    clip = np.concatenate(parts)[:250, ::2, ::2]
    return np.concatenate([clip, clip[::-1]])


def scan(path: Path) -> list[dict]:
    result = CliRunner().invoke(
        app, ["scan", str(path), "--enable", "captions", "--format", "jsonl"]
    )
    assert result.exit_code == 0, result.output
    return [json.loads(x) for x in result.stdout.splitlines() if '"captions"' in x]


def test_captions_that_stop_are_missing_from_where_they_stopped(
    pictures: np.ndarray, tmp_path: Path
) -> None:
    clip = tmp_path / "stops.ts"
    captioned_ts(clip, pictures, FPS, [i < 4 * FPS for i in range(len(pictures))])
    [missing] = scan(clip)
    assert missing["label"] == "missing"
    assert missing["start"] == pytest.approx(4.0, abs=0.1)
    assert missing["end"] == pytest.approx(20.0, abs=0.1)


def test_a_captioned_stream_is_not_missing_anything(pictures: np.ndarray, tmp_path: Path) -> None:
    clip = tmp_path / "captioned.ts"
    captioned_ts(clip, pictures, FPS, [True] * len(pictures))
    assert scan(clip) == []


def test_a_gap_shorter_than_the_minimum_is_not_an_alert(
    pictures: np.ndarray, tmp_path: Path
) -> None:
    clip = tmp_path / "gap.ts"
    captioned_ts(clip, pictures, FPS, [not 100 <= i < 250 for i in range(len(pictures))])  # 6 s
    assert scan(clip) == []


def test_captions_are_off_unless_a_channel_must_carry_them(
    pictures: np.ndarray, tmp_path: Path
) -> None:
    clip = tmp_path / "none.ts"
    captioned_ts(clip, pictures, FPS, [False] * len(pictures))
    result = CliRunner().invoke(app, ["scan", str(clip), "--format", "jsonl"])
    assert '"captions"' not in result.stdout
    assert CaptionsConfig().enabled is False
    [missing] = scan(clip)
    assert missing["start"] == pytest.approx(0.0, abs=0.1)


def test_the_share_of_captioned_frames_is_a_reading(pictures: np.ndarray, tmp_path: Path) -> None:
    clip = tmp_path / "half.ts"
    captioned_ts(clip, pictures[:50], FPS, [i % 2 == 0 for i in range(50)])
    detector = CaptionsDetector(CaptionsConfig(enabled=True))
    [segment] = iter_decoded(str(clip), DecodeNeeds(luma=False, audio=False, captions=True), None)
    detector.detect(segment)
    assert detector.measurements() == {"captioned_share": 0.5}
