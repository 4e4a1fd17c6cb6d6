"""Scoring mouths against speech with the SyncNet-style model (ONNX, no torch).

The model has two streams: 5 consecutive mouth crops (5, 32, 48) and 0.2 s of log-mel audio
(1, 40, 20: 40 mel bands, 10 ms hops) each become a unit embedding. For a face track, every
5-frame window is compared with the audio around it shifted by -15..+15 frames; the distance
curve's minimum is the offset (refined between frames by a parabola), and its median minus its
minimum is the confidence, as in SyncNet::

    scorer = SyncScorer(models.model("av_sync", SyncNetModel), learned_faces=None)
    estimate = scorer.measure(window)       # SyncEstimate, method "faces"

Tracks vote in_sync / out_of_sync under the BT.1359 limits; a tie, or no track sure enough,
is inconclusive and the detector falls back to onsets.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import resample_poly

from monitor.inference.avsync import faces
from monitor.inference.avsync.onsets import refine_peak
from monitor.inference.avsync.result import (
    LAG_THRESHOLD_MS,
    LEAD_THRESHOLD_MS,
    SyncEstimate,
    inconclusive,
    verdict,
)
from monitor.inference.engine import OnnxModel
from monitor.inference.segment import DecodedSegment

MODEL_NAME = "av_sync"
CONTEXT_FRAMES = 5
MAX_SHIFT = 15
MEL_RATE = 16_000
MEL_HOP = 160  # 10 ms
MEL_FFT = 512
MEL_BANDS = 40
MEL_FRAMES = 20  # 0.2 s


def _mel_filters(rate: int = MEL_RATE, n_fft: int = MEL_FFT, bands: int = MEL_BANDS) -> np.ndarray:
    """Triangular mel filters (HTK mel scale), (bands, n_fft // 2 + 1)."""

    def mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    edges = hz(np.linspace(mel(np.array(60.0)), mel(np.array(7600.0)), bands + 2))
    freqs = np.linspace(0, rate / 2, n_fft // 2 + 1)
    lower = (freqs[None, :] - edges[:-2, None]) / (edges[1:-1, None] - edges[:-2, None])
    upper = (edges[2:, None] - freqs[None, :]) / (edges[2:, None] - edges[1:-1, None])
    return np.maximum(0.0, np.minimum(lower, upper)).astype(np.float32)


_FILTERS = _mel_filters()


def log_mel(audio: np.ndarray, rate: int) -> np.ndarray:
    """(40, frames) log-mel of the mono mix at 16 kHz; frame ``j`` centred at ``j * 10 ms``.

    Normalised over the whole input (mean 0, unit spread), so level does not matter.
    """
    mono = audio.mean(axis=0) if audio.ndim == 2 else audio
    if rate != MEL_RATE:
        g = math.gcd(rate, MEL_RATE)
        mono = resample_poly(mono, MEL_RATE // g, rate // g)
    padded = np.pad(mono.astype(np.float32), MEL_FFT // 2)
    count = max(0, 1 + (padded.size - MEL_FFT) // MEL_HOP)
    if count == 0:
        return np.zeros((MEL_BANDS, 0), np.float32)
    idx = np.arange(MEL_FFT)[None, :] + MEL_HOP * np.arange(count)[:, None]
    frames = padded[idx] * np.hanning(MEL_FFT).astype(np.float32)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    mel = np.log(_FILTERS @ power.T + 1e-6)
    return ((mel - mel.mean()) / (mel.std() + 1e-3)).astype(np.float32)


def video_windows(crops: np.ndarray) -> np.ndarray:
    """(n - 4, 5, 32, 48): every run of 5 consecutive crops."""
    n = len(crops) - CONTEXT_FRAMES + 1
    return np.stack([crops[i : i + CONTEXT_FRAMES] for i in range(max(n, 0))])


def audio_windows(mel: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """(k, 1, 40, 20): 0.2 s of mel around each centre time (seconds from the mel's start);
    mel frames outside the audio are zero (the normalised mean)."""
    out = np.zeros((len(centres), 1, MEL_BANDS, MEL_FRAMES), np.float32)
    for k, t in enumerate(centres):
        first = int(round(t / (MEL_HOP / MEL_RATE))) - MEL_FRAMES // 2
        lo, hi = max(first, 0), min(first + MEL_FRAMES, mel.shape[1])
        if hi > lo:
            out[k, 0, :, lo - first : hi - first] = mel[:, lo:hi]
    return out


class SyncNetModel(OnnxModel):
    """The two-stream ONNX model: ``embed(video, audio)`` -> (video, audio) unit embeddings."""

    def embed(self, video: np.ndarray, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        feeds = {
            "video": np.ascontiguousarray(video, np.float32),
            "audio": np.ascontiguousarray(audio, np.float32),
        }
        v, a = self._session.run(None, feeds)
        return np.asarray(v), np.asarray(a)

    def warm_up(self) -> None:
        self.embed(
            np.zeros((1, CONTEXT_FRAMES, faces.CROP_H, faces.CROP_W), np.float32),
            np.zeros((1, 1, MEL_BANDS, MEL_FRAMES), np.float32),
        )


def track_distances(
    model: SyncNetModel,
    crops: np.ndarray,
    mel: np.ndarray,
    frame_times: np.ndarray,
    fps: float,
) -> np.ndarray:
    """Mean embedding distance for each shift -15..+15 frames (index 15 is no shift).

    ``frame_times`` are the crops' times in seconds from the mel's start.
    """
    video = video_windows(crops)
    if len(video) == 0:
        return np.zeros(0)
    frame = 1.0 / fps
    centres = frame_times[: len(video)] + (CONTEXT_FRAMES / 2) * frame
    shifts = np.arange(-MAX_SHIFT, MAX_SHIFT + 1)
    grid = centres[0] + frame * np.arange(-MAX_SHIFT, len(video) + MAX_SHIFT)
    v, a = model.embed(video, audio_windows(mel, grid))
    dists = np.empty(len(shifts))
    for k, s in enumerate(shifts):
        pair = a[MAX_SHIFT + s : MAX_SHIFT + s + len(video)]
        dists[k] = float(np.mean(1.0 - np.sum(v * pair, axis=1)))
    return dists


def offset_from_distances(dists: np.ndarray, fps: float) -> tuple[float, float]:
    """(offset in ms, confidence = median minus minimum distance) of one distance curve."""
    best = int(np.argmin(dists))
    shift = refine_peak(-dists, best) - MAX_SHIFT
    return 1000.0 * shift / fps, float(np.median(dists) - dists[best])


class SyncScorer:
    """Face tracks of a window scored by the model, aggregated by majority vote."""

    def __init__(
        self,
        model: SyncNetModel,
        min_confidence: float | None = None,
        learned_faces: faces.LearnedFaces | None = None,
        face_stride: int = 3,
    ) -> None:
        self.model = model
        self.face_stride = face_stride  # frames between face searches (see FaceFinder.tracks)
        # The learned face detector (``face_detector.onnx``) adds the faces the Haar cascades
        # miss; None leaves the cascades alone.
        self.finder = faces.FaceFinder(learned_faces)
        card = model.card.thresholds
        self.min_confidence = (
            min_confidence if min_confidence is not None else card.get("min_confidence", 0.3)
        )

    def warm_up(self) -> None:
        self.model.warm_up()

    def track_estimates(self, window: DecodedSegment) -> list[tuple[float, float]]:
        """(offset ms, confidence) of each face track in the window."""
        if len(window.luma) < 2 * CONTEXT_FRAMES:
            return []
        mel = log_mel(window.audio, window.audio_rate)
        out = []
        for track in self.finder.tracks(window.luma, stride=self.face_stride):
            crops = faces.mouth_crops(window.luma, track)
            times = window.video_times[track.first : track.first + track.frames]
            dists = track_distances(self.model, crops, mel, times - window.audio_start, window.fps)
            if dists.size:
                out.append(offset_from_distances(dists, window.fps))
        return out

    def measure(
        self,
        window: DecodedSegment,
        lead_threshold_ms: float = LEAD_THRESHOLD_MS,
        lag_threshold_ms: float = LAG_THRESHOLD_MS,
    ) -> SyncEstimate:
        sure = [e for e in self.track_estimates(window) if e[1] >= self.min_confidence]
        if not sure:
            return inconclusive("faces", "no face track sure enough")
        votes: dict[str, list[tuple[float, float]]] = {"in_sync": [], "out_of_sync": []}
        for offset, conf in sure:
            label = verdict(
                SyncEstimate(offset, conf, "faces"), lead_threshold_ms, lag_threshold_ms
            )
            votes[label].append((offset, conf))
        if len(votes["in_sync"]) == len(votes["out_of_sync"]):
            return inconclusive(
                "faces", f"tracks tie {len(votes['in_sync'])} to {len(votes['in_sync'])}"
            )
        winner = max(votes.values(), key=len)
        offset = float(np.median([o for o, _ in winner]))
        # Confidence in [0, 1]: the distance margin against what a clear track shows (0.6).
        confidence = float(np.clip(np.mean([c for _, c in winner]) / 0.6, 0.0, 1.0))
        return SyncEstimate(offset, confidence, "faces", f"{len(winner)} of {len(sure)} tracks")
