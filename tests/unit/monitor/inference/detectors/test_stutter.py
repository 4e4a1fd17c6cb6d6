"""Stutter on real camera footage: drops and irregular repeats are found; a static picture, a
10 fps source shown at 25 fps and a 24 fps film played at 25 are not stutters."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from alerting.intervals import join_offline
from monitor.app.cli import app
from monitor.inference.detectors.stutter import StutterConfig, StutterDetector
from monitor.inference.media import iter_decoded
from monitor.inference.segment import DecodedSegment, DecodeNeeds
from tests.real_media import real_footage

FPS = 25.0


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    """The real clip's luma, (250, 576, 720): a person throwing a ball in a grainy room."""
    parts = [c.luma for c in iter_decoded(str(real_footage()), DecodeNeeds(audio=False))]
    return np.concatenate(parts)[:250]


@pytest.fixture(scope="module")
def frames(clip: np.ndarray) -> np.ndarray:
    """A camera pan across the real room (a pixel a frame, each frame the clip's own, with its
    grain), so the picture moves as a broadcast picture does and a repeat shows."""
    return np.stack([clip[i, 48:528, i : i + 460] for i in range(250)])


def segments(luma: np.ndarray, times: np.ndarray, seconds: float = 2.0) -> list[DecodedSegment]:
    out, start = [], 0
    while start < len(times):
        stop = int(np.searchsorted(times, times[start] + seconds - 1e-6))
        out.append(DecodedSegment(video_times=times[start:stop], luma=luma[start:stop], fps=FPS))
        start = stop
    return out


def detect(luma: np.ndarray, times: np.ndarray | None = None) -> list[dict]:
    times = np.arange(len(luma)) / FPS if times is None else times
    detector, config = StutterDetector(StutterConfig()), StutterConfig()
    results = [(*s.video_span, detector.detect(s)) for s in segments(luma, times)]
    return join_offline("stutter", results, config.min_duration, config.recovery)


def test_the_clean_clip_and_the_clean_pan_are_not_a_stutter(
    clip: np.ndarray, frames: np.ndarray
) -> None:
    assert detect(clip) == []
    assert detect(frames) == []


def test_frames_repeated_at_irregular_moments_are_one_stutter_alert(frames: np.ndarray) -> None:
    luma = frames.copy()
    for i in (40, 57, 81, 103):  # four repeats within 3 s, at no steady period
        luma[i] = luma[i - 1]
    [alert] = detect(luma)
    assert alert["label"] == "repeated"
    assert 57 / FPS - 0.05 <= alert["start"] <= 81 / FPS + 0.05  # the third one opens it


def test_dropped_frames_show_as_gaps_in_the_timestamps(frames: np.ndarray) -> None:
    keep = np.setdiff1d(np.arange(len(frames)), [60, 61, 90, 131, 150])
    [alert] = detect(frames[keep], keep / FPS)
    assert alert["label"] == "dropped"


def test_a_single_stutter_is_a_blip_not_an_alert(frames: np.ndarray) -> None:
    luma = frames.copy()
    luma[100] = luma[99]
    assert detect(luma) == []


def test_a_10_fps_source_shown_at_25_fps_repeats_by_design(frames: np.ndarray) -> None:
    source = frames[::3][:84]  # a 10 fps-ish picture sequence
    shown = np.repeat(np.arange(len(source)), [2, 3] * (len(source) // 2))[:200]
    assert detect(source[shown]) == []


def test_a_24_fps_film_played_at_25_repeats_one_frame_a_second(frames: np.ndarray) -> None:
    shown = np.array([i - i // 25 for i in range(250)])  # each second's 25th frame repeats
    assert detect(frames[shown]) == []


def test_a_still_picture_is_not_a_stutter_whatever_repeats(frames: np.ndarray) -> None:
    still = np.repeat(frames[:1], 250, axis=0)
    assert detect(still) == []


def test_a_stutter_across_a_segment_boundary_is_seen(frames: np.ndarray) -> None:
    luma = frames.copy()
    for i in (50, 70, 99):  # 50 starts the second 2 s segment, 99 ends it
        luma[i] = luma[i - 1]
    [alert] = detect(luma)
    assert alert["label"] == "repeated"


def test_vqm_scan_reports_frames_dropped_from_an_encoded_real_clip(
    frames: np.ndarray, tmp_path
) -> None:
    dropped = {30, 48, 71, 96, 122}  # these frames never reach the encoder: gaps in the PTS
    clip = tmp_path / "dropping.ts"
    with av.open(str(clip), "w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=25, options={"preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = 460, 480, "yuv420p"
        for i in range(200):
            if i in dropped:
                continue
            gray = np.ascontiguousarray(frames[i])
            frame = av.VideoFrame.from_ndarray(np.stack([gray] * 3, axis=-1), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    result = CliRunner().invoke(
        app, ["scan", str(clip), "--enable", "stutter", "--format", "jsonl"]
    )
    assert result.exit_code == 0, result.output
    stutters = [json.loads(x) for x in result.stdout.splitlines() if '"stutter"' in x]
    assert [s["label"] for s in stutters] == ["dropped"]
    assert 48 / FPS <= stutters[0]["start"] <= 75 / FPS  # the third drop opens it
