"""True peak (ITU-R BS.1770-4 Annex 2): the largest magnitude of the signal oversampled.

The interpolator is the one libebur128 uses, so readings agree with its meter: a 49-tap sinc
under a Hann window, 4x oversampling below 96 kHz (2x below 192 kHz, none above). Each of the
oversampling phases between input samples is a short causal filter (12 taps at 4x); the
phase on the samples is the samples themselves.

Why not the meter's own: libebur128 filters sample by sample in scalar C, and that was 80 %
of the loudness detector's time. Here a whole segment goes through OpenCV's vectorised 1-D
filter at once, six times faster, with a few input samples of history per channel so blocks
join exactly as one stream.
"""

from __future__ import annotations

import numpy as np

TAPS = 49


def oversampling(rate: int) -> int:
    """libebur128's factor for a sample rate."""
    return 4 if rate < 96_000 else 2 if rate < 192_000 else 1


def phase_kernels(factor: int) -> list[np.ndarray]:
    """The causal filter of each phase between input samples, float32."""
    j = np.arange(TAPS)
    prototype = np.sinc((j - (TAPS - 1) / 2) / factor) * np.hanning(TAPS)
    return [prototype[q::factor].astype(np.float32) for q in range(1, factor)]


class TruePeakMeter:
    """One channel group's true peak, block by block, carried across calls."""

    def __init__(self, channels: int, rate: int) -> None:
        self.kernels = phase_kernels(oversampling(rate))
        reach = max((len(k) for k in self.kernels), default=1) - 1
        self._history = np.zeros((channels, reach), np.float32)

    def block_peaks(self, audio: np.ndarray, size: int) -> np.ndarray:
        """Linear true peak of each whole ``size``-sample block of ``audio`` (channels,
        samples), the largest over channels. The samples must follow the last call's; any
        past the last whole block are not read, so the caller hands them in again next."""
        import cv2  # here, not at import: the config loads without OpenCV

        count = audio.shape[-1] // size
        if count == 0:
            return np.zeros(0)
        reach = self._history.shape[1]
        # one buffer, history then samples: the filters need both, the envelope only the samples
        joined = np.empty((audio.shape[0], reach + count * size), np.float32)
        joined[:, :reach] = self._history
        joined[:, reach:] = audio[:, : count * size]
        peaks = block_magnitudes(joined[:, reach:], count, size)
        for kernel in self.kernels:
            # filter2D correlates and is anchored on the newest sample, so the reversed kernel
            # anchored at its end is the causal convolution; rows (channels) stay apart.
            taps = kernel[::-1][None, :]
            out = cv2.filter2D(joined, -1, taps, anchor=(len(kernel) - 1, 0))
            np.maximum(peaks, block_magnitudes(out[:, reach:], count, size), out=peaks)
        self._history = joined[:, joined.shape[1] - reach :].copy()
        return peaks.astype(np.float64)


def block_magnitudes(signal: np.ndarray, count: int, size: int) -> np.ndarray:
    """The largest magnitude in each ``size``-sample block over all channels of ``signal``
    (channels, count * size): the extremes per block, cheaper than a whole ``abs`` copy."""
    blocks = signal.reshape(signal.shape[0], count, size)
    return np.maximum(blocks.max(axis=2).max(axis=0), -blocks.min(axis=2).min(axis=0))
