"""How bad an audio artifact is: the signal measurements on known signals, and the paging
floor on real speech through the detector and the alerting tracker."""

from __future__ import annotations

import numpy as np
import pytest

from alerting.intervals import join_offline
from lab.synth.audio_defects import pink_noise
from monitor.core.messages import DefectSpan
from monitor.inference.detectors import audio_levels as levels
from monitor.inference.detectors.audio_artifact import (
    AudioArtifactConfig,
    AudioArtifactDetector,
    AudioSensitivity,
    measure,
)
from monitor.inference.media import iter_decoded
from monitor.inference.models import ModelCache
from monitor.inference.segment import DecodedSegment, DecodeNeeds
from tests.real_media import real_speech

RATE = 48_000


def speech() -> np.ndarray:
    """About 17 s of real studio speech (four prompts end to end), mono, 48 kHz."""
    parts = []
    for path in real_speech(4, 3.0):
        chunks = list(iter_decoded(str(path), DecodeNeeds(luma=False, audio=True), 60.0))
        parts.append(np.concatenate([c.audio for c in chunks], axis=1).mean(axis=0))
    return np.concatenate(parts).astype(np.float64)


@pytest.fixture(scope="module")
def voice() -> np.ndarray:
    return speech()


def speech_power(x: np.ndarray) -> float:
    """The reference the hum is mixed against: mean power of the 100 ms blocks that pass
    BS.1770's gates (-70 dBFS, then 10 dB under the mean)."""
    blocks = (x[: x.size // 4800 * 4800].reshape(-1, 4800) ** 2).mean(axis=1)
    return levels.gated_power(blocks)


def mains_hum(n: int, hz: float = 60.0, seed: int = 0) -> np.ndarray:
    """Unit-power mains hum: the fundamental and two weak harmonics."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / RATE
    parts = [(1, 1.0), (2, 0.3), (3, 0.15)]
    out = sum(a * np.sin(2 * np.pi * k * hz * t + rng.uniform(0, 6)) for k, a in parts)
    return out / np.sqrt(np.mean(out**2))


def with_hum(voice: np.ndarray, relative_db: float) -> np.ndarray:
    return voice + mains_hum(voice.size) * np.sqrt(speech_power(voice)) * 10 ** (relative_db / 20)


def segments(x: np.ndarray, seconds: float = 2.0) -> list[DecodedSegment]:
    size = int(seconds * RATE)
    stereo = np.stack([x, x]).astype(np.float32)
    return [
        DecodedSegment(audio=stereo[:, i : i + size], audio_start=i / RATE)
        for i in range(0, x.size - RATE // 2, size)
    ]


# ----------------------------------------------------------------------------- measurements


@pytest.mark.parametrize("relative_db", [-30.0, -10.0])
def test_hum_under_real_speech_is_measured_within_2_db_of_the_mix(
    voice: np.ndarray, relative_db: float
) -> None:
    x = with_hum(voice, relative_db)
    programme = speech_power(x)
    readings = [
        measure("hum", x, RATE, s.audio_start, s.audio_start + 2.0, programme) for s in segments(x)
    ]
    rel = np.array([r["hum_relative_db"] for r in readings])
    assert abs(np.median(rel) - relative_db) <= 2.0, rel
    # 30 dB under, a segment where the speech's own low end covers the 60 Hz line reads no
    # hum at all (-120): under the floor either way, so the paging decision is the same.
    read = rel > -100
    assert np.mean(read) >= 0.7 and np.all(np.abs(rel[read] - relative_db) <= 2.0), rel
    assert all(r["hum_hz"] == 60.0 for r, ok in zip(readings, read, strict=True) if ok)
    expected_dbfs = levels.power_db(speech_power(voice)) + relative_db
    dbfs = [r["hum_dbfs"] for r, ok in zip(readings, read, strict=True) if ok]
    assert abs(np.median(dbfs) - expected_dbfs) <= 2.0


def test_clean_real_speech_holds_no_hum_worth_a_reading(voice: np.ndarray) -> None:
    programme = speech_power(voice)
    for s in segments(voice):
        reading = measure("hum", voice, RATE, s.audio_start, s.audio_start + 2.0, programme)
        assert reading["hum_relative_db"] < -30.0, (s.audio_start, reading)


def test_a_50_hz_buzz_is_measured_with_its_harmonics() -> None:
    rng = np.random.default_rng(1)
    t = np.arange(2 * RATE) / RATE
    buzz = sum(np.sin(2 * np.pi * k * 50.1 * t + rng.uniform(0, 6)) / k for k in range(1, 29, 2))
    buzz *= 0.01 / np.sqrt(np.mean(buzz**2))  # -40 dBFS
    power, mains = levels.hum_power(buzz + 1e-4 * rng.standard_normal(t.size), RATE)
    assert mains == 50.0
    assert levels.power_db(power) == pytest.approx(-40.0, abs=0.5)


@pytest.mark.parametrize("colour", ["white", "pink"])
@pytest.mark.parametrize("relative_db", [-30.0, -20.0, -10.0])
def test_hiss_under_real_speech_is_measured_within_2_db(
    voice: np.ndarray, colour: str, relative_db: float
) -> None:
    rng = np.random.default_rng(2)
    noise = pink_noise(rng, voice.size) if colour == "pink" else rng.standard_normal(voice.size)
    spectrum = np.fft.rfft(noise)
    spectrum[: int(100 * voice.size / RATE)] = 0  # hiss is what lies over 100 Hz
    noise = np.fft.irfft(spectrum, voice.size)
    noise *= np.sqrt(speech_power(voice) / np.mean(noise**2)) * 10 ** (relative_db / 20)
    x = voice + noise
    programme = speech_power(x)
    rel = [
        measure("hiss", x, RATE, s.audio_start, s.audio_start + 2.0, programme)["hiss_relative_db"]
        for s in segments(x)
    ]
    assert abs(np.median(rel) - relative_db) <= 2.0, (rel, "median")


def test_clicks_are_counted_per_second_over_real_speech(voice: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    x = voice[: 4 * RATE].copy()
    assert levels.click_rate(x, RATE) <= 0.5  # the speech alone
    at = np.sort(rng.choice(np.arange(100, x.size - 100, 1200), 20, replace=False))
    for i in at:
        x[i] += 0.5 * rng.choice([-1, 1])  # an impulse, well over the speech
    assert levels.click_rate(x, RATE) == pytest.approx(20 / 4.0, abs=0.5)


def test_clipped_share_counts_the_flat_tops() -> None:
    t = np.arange(RATE) / RATE
    tone = 0.8 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    assert levels.clipped_share(tone) < 0.002
    limit = 0.3
    clipped = np.clip(tone, -limit, limit)
    share = float(np.mean(np.abs(tone) >= limit))
    assert levels.clipped_share(clipped) == pytest.approx(share, rel=0.02)
    assert levels.clipped_share(np.clip(2 * tone, -1, 1)) == pytest.approx(
        float(np.mean(np.abs(2 * tone) >= 1)), rel=0.02
    )
    assert levels.clipped_share(np.zeros(100)) == 0.0


def test_levels_travel_on_spans_and_keep_the_old_wire_form_without_them() -> None:
    plain = DefectSpan(start=0, end=1, confidence=0.9, label="hum")
    assert "levels" not in plain.model_dump()
    span = plain.model_copy(update={"levels": {"hum_relative_db": -10.0}})
    assert DefectSpan.model_validate_json(span.model_dump_json()).levels == {
        "hum_relative_db": -10.0
    }
    with pytest.raises(ValueError):
        DefectSpan(start=0, end=1, confidence=0.9, levels={"x": float("nan")})


def test_sensitivity_presets_and_floors() -> None:
    assert AudioArtifactConfig().floors().hum_min_relative_db == -20.0
    assert AudioArtifactConfig(sensitivity="high").floors().hum_min_relative_db == -30.0
    own = AudioArtifactConfig.model_validate({"sensitivity": {"click_min_rate": 5}})
    floors = own.floors()
    assert isinstance(floors, AudioSensitivity)
    assert not floors.pages("click", {"clicks_per_s": 4.0})
    assert floors.pages("click", {"clicks_per_s": 5.0})
    assert floors.pages("hum", {"hum_relative_db": -10.0})
    assert not floors.pages("hum", {"hum_relative_db": -30.0})
    with pytest.raises(ValueError):
        AudioArtifactConfig.model_validate({"sensitivity": "loud"})


# ----------------------------------------------------------------------------- paging


def run(x: np.ndarray, models: ModelCache, config: AudioArtifactConfig) -> tuple[list, list]:
    """The detector over 2 s segments, and what alerting makes of its spans."""
    detector = AudioArtifactDetector(config, models)
    results, measured = [], []
    for segment in segments(x):
        spans = detector.detect(segment)
        results.append((*segment.audio_span, spans))
        measured += detector.measured_spans()
        for span in spans + detector.measured_spans():
            assert span.levels is not None
    alerts = join_offline("audio_artifact", results, config.min_duration, config.recovery)
    return alerts, measured


def test_hum_30_db_under_real_speech_is_a_measurement_and_10_db_under_pages(
    voice: np.ndarray, models: ModelCache
) -> None:
    config = AudioArtifactConfig(enabled=True)
    faint_alerts, faint = run(with_hum(voice, -30.0), models, config)
    assert faint_alerts == [], faint_alerts
    for span in faint:  # what the model flagged of it was measured, not paged
        if span.label == "hum":
            assert span.levels is not None
            assert span.levels["hum_relative_db"] == pytest.approx(-30.0, abs=3.0)
    loud_alerts, loud = run(with_hum(voice, -10.0), models, config)
    hums = [a for a in loud_alerts if a["label"] == "hum"]
    assert hums and sum(a["end"] - a["start"] for a in hums) >= 0.5 * voice.size / RATE
    # High sensitivity pages the faint one as well.
    high = AudioArtifactConfig(enabled=True, sensitivity="high")
    alerts, _ = run(with_hum(voice, -25.0), models, high)
    assert [a for a in alerts if a["label"] == "hum"], alerts


def test_the_paging_spans_and_the_readings_carry_the_level(
    voice: np.ndarray, models: ModelCache
) -> None:
    detector = AudioArtifactDetector(AudioArtifactConfig(enabled=True), models)
    x = with_hum(voice, -10.0)
    found = []
    for segment in segments(x):
        found += [s for s in detector.detect(segment) if s.label == "hum"]
        readings = detector.measurements()
        if readings:
            assert readings["hum_relative_db"] == pytest.approx(-10.0, abs=2.0), readings
    assert found
    assert np.median([(s.levels or {})["hum_relative_db"] for s in found]) == pytest.approx(
        -10, abs=2
    )


def test_clean_real_speech_opens_no_alert_at_the_defaults(
    voice: np.ndarray, models: ModelCache
) -> None:
    """Real studio speech, no defect mixed in: nothing pages."""
    alerts, _ = run(voice, models, AudioArtifactConfig(enabled=True))
    assert alerts == []
