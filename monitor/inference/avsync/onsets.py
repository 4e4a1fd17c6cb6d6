"""Content-agnostic sync: audio onsets against visual change, by cross-correlation.

A flash, a hard cut or a clap changes the picture and the sound at the same instant. The
visual envelope is the mean absolute luma difference between consecutive frames, with its
running median removed so steady motion does not count, only sudden change. The audio
envelope is the absolute change of log energy over 5 ms hops (on and off both count, as they
do for the picture), spread by a triangle one frame wide so a picture event at frame time
``t`` meets sound at ``t + lag`` with sub-frame resolution::

    estimate = measure(luma, video_times, fps, audio, 48_000, audio_start)
    estimate.offset_ms        # + when audio lags the picture, None when inconclusive

The lag with the highest normalised correlation over +-15 frames wins, refined by a parabola
through its neighbours. Confidence is the peak's height times its prominence over the best
lag outside +-3 frames of it. Either envelope with fewer than ``min_events`` distinct events
makes the window inconclusive: a still picture or a steady sound has nothing to align.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter
from scipy.signal import find_peaks

from monitor.inference.avsync.result import SyncEstimate, inconclusive

HOP_SECONDS = 0.005
MAX_SHIFT_FRAMES = 15
_EXCLUDE_FRAMES = 3
_FLOOR_DB = -70.0
_RANGE_DB = 50.0


@dataclass(frozen=True)
class OnsetSettings:
    """Thresholds of the onset path; the defaults suit broadcast levels."""

    min_events: int = 1
    visual_event: float = 2.0  # mean abs luma change above the running median, levels
    audio_event_db: float = 9.0  # log-energy change in one 5 ms hop, dB
    min_confidence: float = 0.3
    max_shift_frames: int = MAX_SHIFT_FRAMES


def visual_envelope(luma: np.ndarray) -> np.ndarray:
    """Sudden picture change at each frame (0 for the first): mean |diff| less running median."""
    if len(luma) < 2:
        return np.zeros(len(luma))
    small = luma[:, ::4, ::4].astype(np.float32)
    diff = np.abs(np.diff(small, axis=0)).mean(axis=(1, 2))
    change = np.concatenate([[0.0], diff])
    baseline = median_filter(change, size=7, mode="nearest")
    return np.maximum(change - baseline, 0.0)


def audio_envelope(audio: np.ndarray, rate: int) -> np.ndarray:
    """|change of log energy| between consecutive 5 ms hops, in dB; index k sits at k * hop."""
    mono = audio.mean(axis=0) if audio.ndim == 2 else audio
    hop = int(round(HOP_SECONDS * rate))
    count = mono.size // hop
    if count < 2:
        return np.zeros(max(count, 0))
    frames = mono[: count * hop].reshape(count, hop).astype(np.float64)
    level = 10.0 * np.log10(np.maximum(np.mean(frames**2, axis=1), 1e-12))
    level = np.maximum(level, max(_FLOOR_DB, float(level.max()) - _RANGE_DB))
    return np.concatenate([[0.0], np.abs(np.diff(level))])


def _count_events(envelope: np.ndarray, threshold: float, distance: int) -> int:
    peaks, _ = find_peaks(envelope, height=threshold, distance=max(1, distance))
    return int(len(peaks))


def _spread(envelope: np.ndarray, half_width: int) -> np.ndarray:
    """Triangle kernel ``half_width`` hops each side: a sharp onset becomes a one-frame peak."""
    kernel = 1.0 - np.abs(np.arange(-half_width, half_width + 1)) / (half_width + 1)
    return np.convolve(envelope, kernel, mode="same")


def correlation(
    visual: np.ndarray,
    video_times: np.ndarray,
    audio_env: np.ndarray,
    audio_start: float,
    frame: float,
    lags: np.ndarray,
) -> np.ndarray:
    """Normalised correlation of the picture events with the sound ``lag`` seconds later."""
    spread = _spread(audio_env, max(1, int(round(frame / HOP_SECONDS))))
    grid = audio_start + HOP_SECONDS * np.arange(spread.size)
    out = np.zeros(lags.size)
    vnorm = float(np.linalg.norm(visual))
    for i, lag in enumerate(lags):
        sound = np.interp(video_times + lag, grid, spread, left=0.0, right=0.0)
        norm = vnorm * float(np.linalg.norm(sound))
        out[i] = float(visual @ sound) / norm if norm > 0 else 0.0
    return out


def refine_peak(values: np.ndarray, i: int) -> float:
    """Sub-step position of the maximum at ``i``: vertex of the parabola through 3 points."""
    if i <= 0 or i >= values.size - 1:
        return float(i)
    a, b, c = values[i - 1], values[i], values[i + 1]
    denom = a - 2 * b + c
    return float(i) if denom >= 0 else i + 0.5 * (a - c) / denom


def peak_confidence(corr: np.ndarray, best: int, exclude: int) -> float:
    """Peak height times prominence over the best value outside ``exclude`` steps of it."""
    peak = float(corr[best])
    if peak <= 0:
        return 0.0
    outside = np.concatenate([corr[: max(0, best - exclude)], corr[best + exclude + 1 :]])
    second = float(outside.max()) if outside.size else 0.0
    return float(np.clip(peak * (1.0 - max(second, 0.0) / peak), 0.0, 1.0))


def measure(
    luma: np.ndarray,
    video_times: np.ndarray,
    fps: float,
    audio: np.ndarray,
    rate: int,
    audio_start: float,
    settings: OnsetSettings | None = None,
) -> SyncEstimate:
    """The window's AV offset from onsets, or an inconclusive estimate saying why."""
    settings = settings or OnsetSettings()
    frame = 1.0 / fps if fps > 0 else 0.04
    visual = visual_envelope(luma)
    sound = audio_envelope(audio, rate)
    v_events = _count_events(visual, settings.visual_event, 1)
    a_events = _count_events(sound, settings.audio_event_db, int(frame / HOP_SECONDS))
    if v_events < settings.min_events or a_events < settings.min_events:
        return inconclusive("onsets", f"{v_events} picture and {a_events} sound events")
    step = HOP_SECONDS
    reach = settings.max_shift_frames * frame
    lags = np.arange(-reach, reach + step / 2, step)
    corr = correlation(visual, np.asarray(video_times, float), sound, audio_start, frame, lags)
    best = int(np.argmax(corr))
    confidence = peak_confidence(corr, best, int(round(_EXCLUDE_FRAMES * frame / step)))
    if confidence < settings.min_confidence:
        return SyncEstimate(None, confidence, "onsets", f"weak peak ({confidence:.2f})")
    offset = float(lags[0] + refine_peak(corr, best) * step)
    return SyncEstimate(offset * 1000.0, confidence, "onsets", f"{v_events} events")
