"""The BS.1770 meter reads what libebur128 reads (its sliding integrated loudness block by
block, momentary and short-term), carries its filter across calls, and gates as the
recommendation says; the loudness range follows EBU Tech 3342's own cases."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyebur128
import pytest

from lab.evaluation.loudness import libebur128_sliding, programme, tone
from monitor.inference.detectors.loudness_meter import LoudnessMeter
from monitor.inference.media import iter_decoded
from monitor.inference.segment import DecodeNeeds
from tests.real_media import real_speech

RATE = 48_000
MODES = pyebur128.MeasurementMode


def test_the_sliding_integrated_loudness_is_libebur128s_after_every_100_ms() -> None:
    audio = programme(40.0)
    want = libebur128_sliding([audio], window=10.0)
    meter = LoudnessMeter(window=10.0)
    got = np.concatenate(
        [meter.add(audio[:, i : i + 96_000]) for i in range(0, audio.shape[-1], 96_000)]
    )
    assert got.shape == want.shape
    assert np.isinf(got[:3]).all() and np.isinf(want[:3]).all()  # no 400 ms block yet
    assert np.abs(got[3:] - want[3:]).max() < 0.01


def test_calls_of_any_length_read_as_one_stream() -> None:
    audio = programme(6.0, seed=5)
    whole = LoudnessMeter(window=60.0)
    one = whole.add(audio)
    pieces = LoudnessMeter(window=60.0)
    cuts = [0, 1, 777, 4800, 13_001, 96_000, 150_000, audio.shape[-1]]
    parts = np.concatenate(
        [pieces.add(audio[:, a:b]) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    )
    assert np.allclose(one, parts, atol=1e-4)
    assert pieces.readings() == whole.readings()


def test_momentary_and_short_term_are_libebur128s() -> None:
    audio = programme(5.0, seed=7)
    state = pyebur128.R128State(2, RATE, MODES.MODE_M | MODES.MODE_S)
    state.add_frames(np.ascontiguousarray(audio.T).ravel(), audio.shape[-1])
    meter = LoudnessMeter(window=60.0)
    meter.add(audio)
    readings = meter.readings()
    assert readings["momentary_lufs"] == pytest.approx(
        pyebur128.get_loudness_momentary(state), abs=0.01
    )
    assert readings["short_term_lufs"] == pytest.approx(
        pyebur128.get_loudness_shortterm(state), abs=0.01
    )


def test_the_gates_leave_silence_and_quiet_passages_out() -> None:
    # 20 s at -20 dBFS, then 20 s at -40 (20 LU under: past the relative gate), then silence
    audio = np.concatenate(
        [tone(-20, 20), tone(-40, 20), np.zeros((2, 20 * RATE), np.float32)], axis=1
    )
    meter = LoudnessMeter(window=120.0)
    levels = meter.add(audio)
    loud_only = LoudnessMeter(window=120.0).add(tone(-20, 20))[-1]
    assert levels[-1] == pytest.approx(loud_only, abs=0.05)  # quiet part and silence gated out
    silent = LoudnessMeter(window=10.0)
    assert np.isinf(silent.add(np.zeros((2, 5 * RATE), np.float32))).all()
    assert "integrated_lufs" not in silent.readings()


def test_the_window_is_time_so_a_loud_passage_leaves_it() -> None:
    # 1 kHz in both channels reads its level in dBFS as LUFS (EBU Tech 3341 case 1)
    audio = np.concatenate([tone(-10, 10), tone(-30, 15)], axis=1)
    levels = LoudnessMeter(window=10.0).add(audio)
    assert levels[99] == pytest.approx(-10.0, abs=0.1)
    # over the whole programme the quiet part would be gated out (20 LU under) and read -10;
    # 10 s after the loud part ended, it has left the window
    assert levels[-1] == pytest.approx(-30.0, abs=0.1)


@pytest.mark.parametrize(
    ("parts", "want"),
    [  # EBU Tech 3342 cases 1-3: stereo 1 kHz tones, expected loudness range
        (((-20, 20), (-30, 20)), 10.0),
        (((-20, 20), (-15, 20)), 5.0),
        (((-40, 20), (-20, 20)), 20.0),
    ],
)
def test_the_loudness_range_meets_tech_3342(parts: tuple, want: float) -> None:
    audio = np.concatenate([tone(db, s) for db, s in parts], axis=1)
    meter = LoudnessMeter(window=60.0)
    meter.add(audio)
    assert meter.readings()["range_lu"] == pytest.approx(want, abs=1.0)  # Tech 3342's tolerance


def decoded(path: Path) -> np.ndarray:
    """The whole sound of a real recording, as the decoder gives it (48 kHz)."""
    chunks = [c.audio for c in iter_decoded(str(path), DecodeNeeds(luma=False, audio=True))]
    return np.concatenate(chunks, axis=1)


def test_real_speech_reads_as_libebur128_reads_it() -> None:
    audio = np.concatenate([decoded(path) for path in real_speech(3, min_seconds=4.0)], axis=1)
    want = libebur128_sliding([audio], window=60.0)[-1]
    got = LoudnessMeter(window=60.0).add(audio)[-1]
    assert math.isfinite(got)
    assert got == pytest.approx(want, abs=0.01)


def test_a_mono_group_and_another_rate_are_measured_alike() -> None:
    audio = programme(5.0)[:1]
    rate = 44_100
    state = pyebur128.R128State(1, rate, MODES.MODE_I)
    state.add_frames(np.ascontiguousarray(audio[0]), audio.shape[-1])
    meter = LoudnessMeter(window=60.0, channels=1, rate=rate)
    meter.add(audio)
    assert meter.integrated() == pytest.approx(pyebur128.get_loudness_global(state), abs=0.01)
