"""The synthetic channel: determinism, the time contract, and defects that decode as intended."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import av
import numpy as np
import pytest

from monitor.app.config import VqmConfig
from monitor.app.scan import scan
from monitor.app.synthetic import Defect, DefectSchedule, SceneSpec, SyntheticChannel, write_clip
from monitor.app.synthetic.audio import RATE, render_audio, syllable_envelope
from monitor.app.synthetic.scenes import SCENE_KINDS, ScenePlan
from monitor.app.synthetic.video import ChannelVideo
from monitor.inference.detectors.silence import window_levels_db
from monitor.inference.media import decode_bytes
from monitor.inference.segment import DecodedSegment

SCHEDULE = DefectSchedule(
    defects=[
        Defect(kind="black", start=2.0, duration=2.0),
        Defect(kind="freeze", start=4.0, duration=2.0),
        Defect(kind="silence", start=6.0, duration=2.0),
    ]
)


@pytest.fixture(scope="module")
def channel() -> SyntheticChannel:
    return SyntheticChannel(seed=11, schedule=SCHEDULE)


@pytest.fixture(scope="module")
def decoded(channel: SyntheticChannel) -> dict[int, DecodedSegment]:
    return {i: decode_bytes(channel.segment_bytes(i)) for i in range(5)}


def level_db(audio: np.ndarray) -> float:
    return float(20 * np.log10(max(float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))), 1e-10)))


def test_the_same_seed_gives_identical_segment_bytes() -> None:
    a = SyntheticChannel(seed=3, schedule=SCHEDULE, width=320, height=180)
    b = SyntheticChannel(seed=3, schedule=SCHEDULE, width=320, height=180)
    assert a.segment_bytes(1) == b.segment_bytes(1)


def test_a_frame_is_the_same_whichever_segment_asks_for_it_first() -> None:
    walked = ChannelVideo(ScenePlan(5, 25), 320, 180)
    for i in range(0, 130, 7):
        walked.frame(i)
    direct = ChannelVideo(ScenePlan(5, 25), 320, 180)
    for i in (129, 130, 200):
        assert np.array_equal(walked.frame(i), direct.frame(i))


def test_audio_samples_do_not_depend_on_where_a_range_is_cut() -> None:
    plan = ScenePlan(5, 25)
    whole = render_audio(plan, 90_000, 20_000)
    parts = np.concatenate(
        [render_audio(ScenePlan(5, 25), 90_000, 7_777), render_audio(plan, 97_777, 12_223)],
        axis=1,
    )
    assert np.array_equal(whole, parts)


def test_different_seeds_give_different_pictures_and_sound() -> None:
    a, b = ScenePlan(1, 25), ScenePlan(2, 25)
    assert not np.array_equal(
        ChannelVideo(a, 320, 180).frame(10), ChannelVideo(b, 320, 180).frame(10)
    )
    assert not np.allclose(render_audio(a, 0, 4800), render_audio(b, 0, 4800))


def test_every_scene_kind_renders_moving_pictures() -> None:
    for kind in SCENE_KINDS:
        video = ChannelVideo(ScenePlan(4, 25, [kind]), 320, 180)
        first, later = video.frame(20), video.frame(30)
        assert first.shape == (270, 320) and first.dtype == np.uint8
        assert not np.array_equal(first, later), kind


def test_decoded_segments_carry_channel_time(decoded: dict[int, DecodedSegment]) -> None:
    for i, seg in decoded.items():
        assert seg.video_times[0] == pytest.approx(2.0 * i, abs=0.02)
        assert np.allclose(np.diff(seg.video_times), 0.04, atol=1e-3)
        assert len(seg.video_times) == 50
        assert abs(seg.audio_start - 2.0 * i) < 0.03
    for i in range(4):
        audio_end = decoded[i].audio_start + decoded[i].audio.shape[1] / decoded[i].audio_rate
        assert audio_end == pytest.approx(decoded[i + 1].audio_start, abs=1e-6)


def test_each_segment_opens_on_a_keyframe(channel: SyntheticChannel) -> None:
    with av.open(io.BytesIO(channel.segment_bytes(3)), format="mpegts") as container:
        first = next(p for p in container.demux(video=0) if p.size)
        assert first.is_keyframe


def test_black_defect_decodes_to_black_level(decoded: dict[int, DecodedSegment]) -> None:
    black = decoded[1]
    assert not black.full_range
    assert black.luma.mean() < 16.5
    assert np.percentile(black.luma, 99.9) <= 18


def test_dark_scenes_are_dark_but_not_black() -> None:
    dark = SyntheticChannel(seed=21, scenes=["dark"], width=640, height=360)
    seg = decode_bytes(dark.segment_bytes(0))
    assert 24.0 <= seg.luma.mean() <= 40.0
    bright_tail = np.percentile(seg.luma.reshape(len(seg.luma), -1), 99.9, axis=1)
    assert np.all(bright_tail > 16 + 0.08 * 219 + 10)


def test_fades_pass_through_dark_without_reaching_black() -> None:
    fade = SyntheticChannel(
        seed=8, scenes=[SceneSpec(kind="fade", duration=4.0)], width=320, height=180
    )
    means = np.array([fade.frame(i)[:180].mean() for i in range(0, 100)])
    assert means.min() > 18.0
    assert means.max() - means.min() > 30.0


def worst_block_change(luma: np.ndarray, block: int = 40) -> np.ndarray:
    """Per frame, the largest mean absolute change of any block against the first frame."""
    diff = np.abs(luma.astype(np.float32) - luma[0].astype(np.float32))
    n, h, w = diff.shape
    blocks = diff[:, : h // block * block, : w // block * block]
    return (
        blocks.reshape(n, h // block, block, w // block, block).mean(axis=(2, 4)).max(axis=(1, 2))
    )


def test_frozen_frames_decode_identical(decoded: dict[int, DecodedSegment]) -> None:
    assert worst_block_change(decoded[2].luma).max() < 1.0
    assert np.median(worst_block_change(decoded[4].luma)[1:]) > 2.0


def test_silence_decodes_under_minus_60_dbfs(decoded: dict[int, DecodedSegment]) -> None:
    silent = decoded[3]
    edge = int(0.05 * RATE)  # the codec's overlap may spill a little from the neighbours
    assert window_levels_db(silent.audio[:, edge:-edge], RATE, 0.05).max() < -60.0


@pytest.mark.parametrize("sound", ["speech", "music", "quiet"])
def test_programme_sound_and_quiet_passages_stay_above_the_silence_floor(sound: str) -> None:
    channel = SyntheticChannel(
        seed=31, scenes=[SceneSpec(kind="studio", audio=sound)], width=320, height=180
    )
    seg = decode_bytes(channel.segment_bytes(1))
    levels = window_levels_db(seg.audio, RATE, 0.05)
    assert levels.min() > -60.0
    if sound == "quiet":
        assert -46.0 < level_db(seg.audio) < -34.0
    else:  # programme at broadcast loudness (-23 LUFS), well above quiet passages
        assert -33.0 < level_db(seg.audio) < -16.0


def test_speech_pauses_are_shorter_than_half_a_second() -> None:
    plan = ScenePlan(6, 25, [SceneSpec(kind="talking", duration=7.0)])
    audio = render_audio(plan, 0, 7 * RATE)
    quiet = window_levels_db(audio, RATE, 0.02) < -40.0
    longest, run = 0, 0
    for q in quiet:
        run = run + 1 if q else 0
        longest = max(longest, run)
    assert longest * 0.02 < 0.5


def test_write_clip_starts_at_zero_and_returns_its_ground_truth(tmp_path) -> None:
    schedule = DefectSchedule(defects=[Defect(kind="black", start=1.0, duration=1.5)])
    path = tmp_path / "clip.ts"
    truth = write_clip(path, 3.0, seed=2, schedule=schedule, width=320, height=180)
    seg = decode_bytes(path.read_bytes())
    assert seg.video_times[0] == 0.0 and len(seg.video_times) == 75
    assert 0.0 <= seg.audio_start < 0.03
    assert truth["defects"] == [{"detector": "black", "start": 1.0, "end": 2.5}]
    assert truth["seed"] == 2 and truth["segment_duration"] == 2.0
    assert truth["scenes"][0]["start"] == 0.0
    json.dumps(truth)


def test_random_schedules_do_not_overlap_and_stay_inside_the_clip() -> None:
    schedule = DefectSchedule.random(seed=4, duration=300.0)
    spans = sorted((d.start, d.end) for d in schedule.defects)
    assert len(spans) >= 8
    assert all(a_end < b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:], strict=False))
    assert spans[-1][1] < 300.0
    assert {d.kind for d in schedule.defects} == {"black", "freeze", "silence"}


def test_two_seconds_of_content_render_in_well_under_half_a_second() -> None:
    channel = SyntheticChannel(seed=9)
    channel.frame(0)  # scene assets are drawn once per scene, as live
    start = time.perf_counter()
    for i in range(1, 51):
        channel.frame(i)
    channel.audio(0, 2 * RATE)
    assert time.perf_counter() - start < 0.5


def test_a_freeze_holds_the_same_picture_across_segment_boundaries() -> None:
    frozen = SyntheticChannel(
        seed=13, schedule=[Defect(kind="freeze", start=1.5, duration=3.0)], width=160, height=90
    )
    held = frozen.frame(round(1.5 * 25))
    for i in (38, 50, 99, 112):
        assert np.array_equal(frozen.frame(i), held)
    assert not np.array_equal(frozen.frame(113), held)


def test_the_talking_head_opens_its_mouth_when_it_speaks() -> None:
    plan = ScenePlan(17, 25, [SceneSpec(kind="talking", duration=6.0)])
    scene = plan.scene_at_frame(0)
    times = np.arange(150) / 25
    opening = syllable_envelope(scene, times)
    audio = render_audio(plan, 0, 6 * RATE)
    frame_levels = window_levels_db(audio, RATE, 0.04)[:150]
    assert frame_levels[opening > 0.3].mean() > frame_levels[opening == 0].mean() + 10.0
    video = ChannelVideo(plan, 320, 180)
    wide, shut = int(np.argmax(opening)), int(np.flatnonzero(opening == 0)[0])
    assert np.abs(video.frame(wide).astype(int) - video.frame(shut).astype(int)).max() > 50


def test_a_test_card_with_its_line_up_tone_is_on_target_and_never_frozen(tmp_path: Path) -> None:
    path = tmp_path / "card.ts"
    write_clip(path, 16.0, seed=5, scenes=["test_card"], width=320, height=180)
    config = VqmConfig.model_validate({"detectors": [{"type": "loudness", "min_history": 4}]})
    assert scan(str(path), config) == []  # not black, not frozen, not silent, not too loud


def test_a_loud_defect_is_too_loud_for_the_loudness_detector_without_a_true_peak_over(
    tmp_path: Path,
) -> None:
    path = tmp_path / "loud.ts"
    loud = [Defect(kind="loud", start=4.0, duration=14.0)]
    write_clip(path, 24.0, seed=9, schedule=loud, scenes=["studio"], width=320, height=180)
    config = VqmConfig.model_validate({"detectors": [{"type": "loudness", "window": 10}]})
    found = scan(str(path), config)
    assert [(d.detector, d.label) for d in found] == [("loudness", "too_loud")]
    assert DefectSchedule(defects=loud).ground_truth()[0]["detector"] == "loudness"
