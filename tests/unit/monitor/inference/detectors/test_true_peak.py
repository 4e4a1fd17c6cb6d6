"""The true-peak meter reads what libebur128's does, block by block and across calls."""

from __future__ import annotations

import numpy as np
import pyebur128
import pytest

from monitor.inference.detectors.true_peak import TruePeakMeter, oversampling

RATE = 48_000
BLOCK = 4_800


def libebur128_block_peaks(audio: np.ndarray, rate: int, size: int) -> np.ndarray:
    mode = pyebur128.MeasurementMode.MODE_TRUE_PEAK
    state = pyebur128.R128State(audio.shape[0], rate, mode)
    peaks = []
    for i in range(audio.shape[-1] // size):
        block = np.ascontiguousarray(audio[:, i * size : (i + 1) * size].T, np.float64)
        state.add_frames(block.ravel(), size)
        peaks.append(max(pyebur128.get_previous_true_peak(state, c) for c in range(audio.shape[0])))
    return np.array(peaks)


def tone(freq: float, phase: float, seconds: float = 1.0, level: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    left = level * np.sin(2 * np.pi * freq * t + phase)
    return np.stack([left, 0.5 * left]).astype(np.float32)


def db(x: np.ndarray) -> np.ndarray:
    return 20 * np.log10(x)


@pytest.mark.parametrize(
    "audio",
    [
        tone(12_000, np.pi / 4),  # peaks between samples: 0.1 dB over the sample peak
        tone(997, 0.3),
        tone(6_000, np.pi / 8),
        (np.random.default_rng(5).standard_normal((2, 3 * RATE)) * 0.2).astype(np.float32),
    ],
    ids=["12k-between-samples", "997", "6k", "noise"],
)
def test_block_peaks_agree_with_libebur128_within_a_hundredth_of_a_db(audio):
    want = libebur128_block_peaks(audio, RATE, BLOCK)
    meter = TruePeakMeter(audio.shape[0], RATE)
    # fed in uneven pieces, each ending on a block edge, as segments come
    got = np.concatenate(
        [meter.block_peaks(audio[:, a:b], BLOCK) for a, b in ((0, 4 * BLOCK), (4 * BLOCK, None))]
    )
    assert got.shape == want.shape
    np.testing.assert_allclose(db(got), db(want), atol=0.01)


def test_a_peak_between_samples_reads_above_the_sample_peak():
    audio = tone(12_000, np.pi / 4)
    peaks = TruePeakMeter(2, RATE).block_peaks(audio, BLOCK)
    assert db(peaks.max()) > db(np.abs(audio).max()) + 2.5  # the 12 kHz case: +3 dB


def test_samples_past_the_last_whole_block_are_left_for_the_next_call():
    meter = TruePeakMeter(1, RATE)
    assert meter.block_peaks(np.ones((1, BLOCK - 1), np.float32), BLOCK).shape == (0,)
    assert meter.block_peaks(np.ones((1, BLOCK * 2 + 5), np.float32), BLOCK).shape == (2,)


def test_the_oversampling_factor_follows_the_rate_as_libebur128_does():
    assert [oversampling(r) for r in (44_100, 48_000, 96_000, 192_000)] == [4, 4, 2, 1]
    audio = (np.random.default_rng(2).standard_normal((1, 96_000)) * 0.2).astype(np.float32)
    for rate in (96_000, 192_000):
        want = libebur128_block_peaks(audio, rate, rate // 10)
        got = TruePeakMeter(1, rate).block_peaks(audio, rate // 10)
        np.testing.assert_allclose(db(got), db(want), atol=0.01)
