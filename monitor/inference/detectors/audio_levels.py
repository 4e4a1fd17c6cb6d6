"""How bad an audio artifact is: signal measurements of a stretch the model flagged.

The ``audio_artifact`` model says *what* it hears (hum, hiss, click, distortion); these say
*how much*, from the samples, so a per-channel sensitivity can decide what pages. Each is cheap
NumPy/SciPy on the mono mixdown at the decoded rate, run only on flagged stretches:

- :func:`hum_power`: the mains fundamental and harmonics (the 50 or the 60 Hz family,
  whichever holds more), narrow bands of a Hann-windowed FFT over the stretch, each less the
  mean power density of the bins beside it (the programme's share of the band);
- :func:`noise_floor_power`: broadband noise as minimum statistics see it: per band of an
  STFT, a low percentile of the frame powers over time (noise lives under the programme's
  quiet frames), corrected for the percentile's bias;
- :func:`click_rate`: impulses per second: the second difference against its own robust
  local scale, detections closer than 2 ms counted once;
- :func:`clipped_share`: the share of samples on flat tops at the stretch's ceiling (within
  1 % of its peak, level for three samples or more), wherever the clip level is.

:class:`ProgrammeLevel` keeps the level the artifact is compared with: gated (as BS.1770
gates loudness: an absolute gate at -70 dBFS, then 10 dB under the mean) mean power of the
last ten seconds of 100 ms blocks, so a flagged pause between sentences is compared with the
speech around it, not with the pause. Levels are unweighted power ratios (dB), as the
artifact was mixed, rather than loudness: K-weighting would take ~1 dB off a 60 Hz hum.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

MAINS = (50.0, 60.0)
HUM_TOP_HZ = 1_500.0  # harmonics up to here (rectifier and ground-loop buzz reaches ~1.5 kHz)
HUM_MIN_SECONDS = 1.0  # narrow bands need a second at least (1 Hz resolution)
DRIFT = 0.004  # mains frequency tolerance, a share of each harmonic's frequency
LINE_RATIO = 10.0  # a harmonic counts when its band holds 10 dB more than the programme's share
BLOCK = 0.1  # programme blocks, seconds
ABSOLUTE_GATE_DB = -70.0
RELATIVE_GATE_DB = -10.0
FLOOR_DB = -120.0  # what "nothing" reads as, so every level is finite
CEILING_DB = 60.0  # an artifact over a silent programme reads as this much over it


def power_db(power: float) -> float:
    """Mean power as dB (dBFS for a full-scale sine... of RMS 1: dB re full-scale RMS)."""
    return max(FLOOR_DB, 10.0 * math.log10(power)) if power > 0 else FLOOR_DB


def relative_db(artifact: float, programme: float) -> float:
    """The artifact's power against the programme's, dB, within [FLOOR_DB, CEILING_DB]."""
    if artifact <= 0:
        return FLOOR_DB
    if programme <= 0:
        return CEILING_DB
    return min(CEILING_DB, max(FLOOR_DB, 10.0 * math.log10(artifact / programme)))


def _spectrum(x: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """One-sided power per bin of a Hann-windowed FFT, scaled so the bins sum to the mean
    power of ``x`` (Parseval with the window's energy); and each bin's frequency."""
    w = np.hanning(x.size + 2)[1:-1]  # periodic-like, no zero end points
    spec = np.fft.rfft((x - x.mean()) * w)
    power = np.abs(spec) ** 2 / (x.size * np.sum(w**2))
    power[1 : (x.size + 1) // 2] *= 2.0
    return power, np.fft.rfftfreq(x.size, 1.0 / rate)


def hum_power(x: np.ndarray, rate: int) -> tuple[float, float]:
    """Mean power of mains hum in ``x`` (mono) and its fundamental in Hz (50 or 60).

    Each harmonic's band (+- 1.5 bins plus the mains tolerance) holds the hum and a slice of
    the programme; the slice is estimated from the mean density 3-10 Hz beyond the band on
    both sides. A harmonic counts, less that slice, only where it stands out as a line (10 dB
    over the slice): a voice's harmonics sweep through the bands and fill them a few dB over
    their neighbours, a steady mains line does not move. So a harmonic buried under the
    programme is left out: under loud speech a buzz reads low by what the speech hides."""
    if x.size < 8:
        return 0.0, MAINS[0]
    power, freqs = _spectrum(np.asarray(x, np.float64), rate)
    step = freqs[1]
    best = (0.0, MAINS[0])
    for mains in MAINS:
        total, anchored = 0.0, False
        for k in range(1, int(HUM_TOP_HZ // mains) + 1):
            f = k * mains
            half = 1.5 * step + DRIFT * f
            band = (freqs >= f - half) & (freqs <= f + half)
            beside = (np.abs(freqs - f) >= half + 3.0) & (np.abs(freqs - f) <= half + 10.0)
            if not band.any() or not beside.any():
                continue
            inside, share = float(power[band].sum()), float(power[beside].mean() * band.sum())
            if inside >= share * LINE_RATIO:
                total += inside - share
                anchored |= k <= 2
        if anchored and total > best[0]:
            best = (total, mains)
    return best


# Bias of the 5th percentile of a band's frame power (chi-square, 2 * bins degrees of
# freedom, Hann frames overlapping by half), measured on white and pink noise: the
# percentile reads this many dB under the band's mean power.
_FRAME = 1024
_BAND_BINS = 16
_PERCENTILE = 5.0
_PERCENTILE_BIAS_DB = -2.91


def noise_floor_power(x: np.ndarray, rate: int, low_hz: float = 100.0) -> float:
    """Mean power of the steady broadband noise in ``x`` above ``low_hz`` (minimum
    statistics: per band of 16 bins, the 5th percentile of the frame powers over time)."""
    if x.size < 2 * _FRAME:
        return 0.0
    w = np.hanning(_FRAME + 2)[1:-1]
    hop = _FRAME // 2
    count = 1 + (x.size - _FRAME) // hop
    index = np.arange(_FRAME)[None, :] + hop * np.arange(count)[:, None]
    frames = np.asarray(x, np.float64)[index] * w
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2 / (_FRAME * np.sum(w**2))
    power[:, 1:-1] *= 2.0
    first = int(math.ceil(low_hz * _FRAME / rate))
    usable = (power.shape[1] - first) // _BAND_BINS * _BAND_BINS
    bands = power[:, first : first + usable].reshape(count, -1, _BAND_BINS).sum(axis=2)
    floor = np.percentile(bands, _PERCENTILE, axis=0)
    return float(floor.sum() * 10.0 ** (-_PERCENTILE_BIAS_DB / 10.0))


CLICK_SIGMAS = 9.0  # a click's second difference stands this far over the local scale
CLICK_HOLD = 0.002  # detections closer than this are one click
_SCALE_BLOCK = 0.01  # seconds per block of the local scale


def click_rate(x: np.ndarray, rate: int) -> float:
    """Impulses per second in ``x``: the second difference beyond ``CLICK_SIGMAS`` times its
    robust scale (median absolute value) over the surrounding 30 ms, one count per 2 ms."""
    if x.size < 3:
        return 0.0
    d = np.abs(np.diff(np.asarray(x, np.float64), 2))
    size = max(8, int(_SCALE_BLOCK * rate))
    blocks = d[: d.size // size * size].reshape(-1, size)
    if blocks.size == 0:
        return 0.0
    scale = np.median(blocks, axis=1) * 1.4826
    # Each block's scale is the largest of its own and its neighbours' medians: a click's
    # block can hold part of the click itself, its neighbours do not.
    padded = np.pad(scale, 1, mode="edge")
    local = np.minimum(np.minimum(padded[:-2], padded[2:]), padded[1:-1])
    per_sample = np.repeat(local, size)
    per_sample = np.pad(per_sample, (0, d.size - per_sample.size), mode="edge")
    # A click also stands over the stretch itself: its second difference reaches twice the
    # stretch's RMS (an impulse as loud as the programme's RMS), so the grain of a quiet
    # passage or near-silence, tiny but many sigmas over its own scale, is no click.
    floor = max(2.0 * float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))), 1e-6)
    hits = np.flatnonzero(d > np.maximum(CLICK_SIGMAS * per_sample, floor))
    if hits.size == 0:
        return 0.0
    events = 1 + int(np.count_nonzero(np.diff(hits) > CLICK_HOLD * rate))
    return events / (x.size / rate)


CLIP_WITHIN = 0.01  # a sample within 1 % of the stretch's peak is at its ceiling
CLIP_FLAT = 1e-4  # and flat: it differs from its neighbour by under this share of the peak
CLIP_RUN = 3  # in a run of at least this many samples


def clipped_share(x: np.ndarray) -> float:
    """Share of samples on flat tops at the stretch's ceiling: within 1 % of its peak and
    level with their neighbours (under 1e-4 of the peak apart) for three samples or more,
    whether clipped at full scale or at a lower limit. A sine's crest is not flat at this
    resolution above ~100 Hz; a lossy codec's ripple over a flat top hides part of it, so on
    decoded AAC the share is a lower bound."""
    v = np.asarray(x, np.float64)
    if v.size < CLIP_RUN:
        return 0.0
    peak = float(np.abs(v).max())
    if peak <= 1e-6:
        return 0.0
    top = np.abs(v) >= peak * (1.0 - CLIP_WITHIN)
    level = np.abs(np.diff(v)) <= CLIP_FLAT * peak
    pair = top[1:] & top[:-1] & level  # sample i and i+1 sit on one flat top
    count = 0
    for a, b in _runs(pair):
        if b - a + 1 >= CLIP_RUN:
            count += b - a + 1
    return count / v.size


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


class ProgrammeLevel:
    """One channel's programme level: gated mean power over the last ``window`` seconds of
    100 ms blocks (absolute gate -70 dBFS, relative gate 10 dB under the mean above it)."""

    def __init__(self, window: float = 10.0) -> None:
        self._blocks: deque[float] = deque(maxlen=max(1, int(round(window / BLOCK))))
        self._next: float | None = None

    def add(self, mono: np.ndarray, rate: int, start: float) -> None:
        """Feed a segment's mono audio (``start`` in media seconds); a jump starts afresh."""
        if self._next is not None and abs(start - self._next) > 1.0:
            self._blocks.clear()
        size = max(1, int(round(BLOCK * rate)))
        count = mono.size // size
        if count:
            x = np.asarray(mono[: count * size], np.float64).reshape(count, size)
            self._blocks.extend((x**2).mean(axis=1).tolist())
        self._next = start + mono.size / rate

    def power(self) -> float:
        return gated_power(np.asarray(self._blocks, np.float64))


def gated_power(blocks: np.ndarray) -> float:
    """Mean of block powers that pass BS.1770's two gates (in power, unweighted)."""
    above = blocks[blocks > 10.0 ** (ABSOLUTE_GATE_DB / 10.0)]
    if above.size == 0:
        return 0.0
    kept = above[above > above.mean() * 10.0 ** (RELATIVE_GATE_DB / 10.0)]
    return float(kept.mean()) if kept.size else float(above.mean())


__all__ = [
    "ProgrammeLevel",
    "click_rate",
    "clipped_share",
    "gated_power",
    "hum_power",
    "noise_floor_power",
    "power_db",
    "relative_db",
]
