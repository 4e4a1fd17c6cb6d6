"""Mouth motion against the speech envelope: a measured, non-learned offset per face track.

The sync model (:mod:`monitor.inference.avsync.syncnet`) learned drawn talking heads only; this
path needs no learning. For each face track the mouth crop's frame-to-frame change (mean
absolute luma difference, each crop's own mean removed so lighting drifts do not count) is
the visual signal; the audio signal is the absolute change of the log RMS of the speech band
(300-3000 Hz, 20 ms windows every 10 ms). The two are correlated over lags of -400..+400 ms in
10 ms steps (+ = audio lags), the peak refined by a parabola::

    estimate = measure(luma, video_times, audio, rate, audio_start, tracks)  # method "faces"

Windows whose speech band is too quiet or too steady to be speech are inconclusive before any
correlation: on real faces over room tone, chance correlations reach 0.5. A track is sure when
its peak correlation reaches ``min_peak`` and stands ``min_prominence`` above the best lag
further than ``exclude_ms`` from it; sure tracks agreeing within 240 ms give their median.
Silence, room tone and music without a matching mouth give flat, low curves: inconclusive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter
from scipy.signal import butter, resample_poly, sosfiltfilt

from monitor.inference.avsync import faces
from monitor.inference.avsync.result import SyncEstimate, inconclusive

ENV_RATE = 16_000
HOP_S = 0.010
WIN_S = 0.020


@dataclass(frozen=True)
class MotionSettings:
    """The conclusiveness rule and search range of the mouth-motion path."""

    max_lag_ms: float = 400.0
    step_ms: float = 10.0
    min_peak: float = 0.35
    min_prominence: float = 0.12
    exclude_ms: float = 120.0
    min_overlap_s: float = 3.0
    min_speech_dbfs: float = -50.0  # the speech band's loud hops (95th percentile) reach this
    min_speech_range_db: float = 15.0  # and stand this far above its quiet ones (20th)


def speech_change(audio: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(times s from the audio's start, |change of log speech-band RMS|) at 10 ms hops."""
    mono = audio.mean(axis=0) if audio.ndim == 2 else audio
    if rate != ENV_RATE:
        g = math.gcd(rate, ENV_RATE)
        mono = resample_poly(mono, ENV_RATE // g, rate // g)
    hop, win = int(HOP_S * ENV_RATE), int(WIN_S * ENV_RATE)
    if mono.size < win + 2 * hop:
        return np.zeros(0), np.zeros(0)
    sos = butter(4, (300.0, 3000.0), btype="bandpass", fs=ENV_RATE, output="sos")
    band = sosfiltfilt(sos, mono.astype(np.float64))
    count = 1 + (band.size - win) // hop
    idx = np.arange(win)[None, :] + hop * np.arange(count)[:, None]
    rms = np.sqrt(np.mean(band[idx] ** 2, axis=1))
    level = np.log(rms + 1e-4 * (rms.max() + 1e-9))
    change = np.abs(np.diff(level))
    times = (np.arange(count - 1) * hop + hop / 2 + win / 2) / ENV_RATE
    return times, change


def has_speech(audio: np.ndarray, rate: int, settings: MotionSettings) -> bool:
    """Whether the speech band is loud enough and modulated enough to be speech: room tone,
    hum and silence are not (their mouth correlations are chance)."""
    mono = audio.mean(axis=0) if audio.ndim == 2 else audio
    hop = int(HOP_S * rate)
    if mono.size < 10 * hop:
        return False
    sos = butter(4, (300.0, 3000.0), btype="bandpass", fs=rate, output="sos")
    band = sosfiltfilt(sos, mono.astype(np.float64))
    frames = band[: band.size // hop * hop].reshape(-1, hop)
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    loud, quiet = np.percentile(level, [95, 20])
    return bool(loud >= settings.min_speech_dbfs and loud - quiet >= settings.min_speech_range_db)


def mouth_change(crops: np.ndarray) -> np.ndarray:
    """Frame-to-frame change of the (raw) mouth crops, its slow drift removed; length n - 1."""
    centred = crops - crops.mean(axis=(1, 2), keepdims=True)
    diff = np.abs(np.diff(centred, axis=0)).mean(axis=(1, 2))
    return diff - median_filter(diff, size=9, mode="nearest")


def lag_curve(
    visual: np.ndarray,
    visual_times: np.ndarray,
    audio_times: np.ndarray,
    audio_change: np.ndarray,
    settings: MotionSettings,
) -> tuple[np.ndarray, np.ndarray]:
    """(lags ms, Pearson correlation of the visual signal with the audio at each lag)."""
    lags = np.arange(-settings.max_lag_ms, settings.max_lag_ms + 1e-9, settings.step_ms)
    corr = np.full(len(lags), np.nan)
    if audio_times.size < 2 or visual.size < 4:
        return lags, corr
    for k, lag in enumerate(lags):
        at = visual_times + lag / 1000.0
        ok = (at >= audio_times[0]) & (at <= audio_times[-1])
        if ok.sum() * np.median(np.diff(visual_times)) < settings.min_overlap_s:
            continue
        v = visual[ok]
        a = np.interp(at[ok], audio_times, audio_change)
        sv, sa = v.std(), a.std()
        if sv > 1e-9 and sa > 1e-9:
            corr[k] = float(np.mean((v - v.mean()) * (a - a.mean())) / (sv * sa))
    return lags, corr


def track_estimate(
    lags: np.ndarray, corr: np.ndarray, settings: MotionSettings
) -> tuple[float, float, float] | None:
    """(offset ms, peak, prominence) of one lag curve, or None when it has no finite value."""
    if not np.isfinite(corr).any():
        return None
    filled = np.where(np.isfinite(corr), corr, -1.0)
    best = int(np.argmax(filled))
    peak = float(filled[best])
    far = np.abs(lags - lags[best]) > settings.exclude_ms
    rival = float(filled[far].max()) if far.any() else -1.0
    offset = float(lags[best])
    if 0 < best < len(lags) - 1:
        y0, y1, y2 = filled[best - 1 : best + 2]
        denom = y0 - 2 * y1 + y2
        if denom < 0:
            offset += float(np.clip(0.5 * (y0 - y2) / denom, -0.5, 0.5)) * settings.step_ms
    return offset, peak, peak - rival


def track_estimates(
    luma: np.ndarray,
    video_times: np.ndarray,
    audio: np.ndarray,
    rate: int,
    audio_start: float,
    tracks: list[faces.Track],
    settings: MotionSettings = MotionSettings(),
) -> list[tuple[float, float, float]]:
    """(offset ms, peak, prominence) of each face track."""
    times, change = speech_change(audio, rate)
    out = []
    for track in tracks:
        crops = faces.raw_mouth_crops(luma, track)
        ft = video_times[track.first : track.first + track.frames] - audio_start
        visual = mouth_change(crops)
        mid = (ft[1:] + ft[:-1]) / 2
        got = track_estimate(*lag_curve(visual, mid, times, change, settings), settings)
        if got is not None:
            out.append(got)
    return out


def is_sure(estimate: tuple[float, float, float], settings: MotionSettings) -> bool:
    _, peak, prominence = estimate
    return peak >= settings.min_peak and prominence >= settings.min_prominence


def measure(
    luma: np.ndarray,
    video_times: np.ndarray,
    audio: np.ndarray,
    rate: int,
    audio_start: float,
    tracks: list[faces.Track],
    settings: MotionSettings = MotionSettings(),
) -> SyncEstimate:
    """The window's offset from its sure tracks (the median), or inconclusive."""
    if not tracks:
        return inconclusive("faces", "no face tracks")
    if not has_speech(audio, rate, settings):
        return inconclusive("faces", "no speech")
    estimates = track_estimates(luma, video_times, audio, rate, audio_start, tracks, settings)
    sure = [e for e in estimates if is_sure(e, settings)]
    if not sure:
        return inconclusive("faces", "no mouth moving with the speech")
    offsets = np.array([e[0] for e in sure])
    if len(sure) > 1 and np.ptp(offsets) > 2 * settings.exclude_ms:
        return inconclusive("faces", "mouth tracks disagree")
    peak = float(np.mean([e[1] for e in sure]))
    return SyncEstimate(
        float(np.median(offsets)),
        float(np.clip(peak, 0.0, 1.0)),
        "faces",
        f"mouth motion, {len(sure)} of {len(estimates)} tracks",
    )
