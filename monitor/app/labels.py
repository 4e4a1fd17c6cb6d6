"""``vqm label export``: operator feedback as a training dataset.

Each answer (:class:`~alerting.feedback.Feedback`) becomes one line of ``labels.jsonl`` with
the samples under its alert's media span (:class:`~monitor.core.samples.SampleStore`): the
segment as it was fetched, and what a retraining reads from it, the frames of the span for
picture detectors (PNG, at most :data:`FRAMES_PER_SAMPLE` a segment, evenly spaced) or its
sound for audio detectors (16-bit WAV)::

    out/labels.jsonl                       one answer a line, with "samples": [...]
    out/samples/<alert id>/<seq>.ts        the segment
    out/samples/<alert id>/<seq>-f3.png    its frames inside the alert's span
    out/samples/<alert id>/<seq>.wav       its sound inside the span

An answer whose samples were evicted (or never kept) is exported with ``"samples": []``
and counted, so the caller sees how much of the feedback can train.
"""

from __future__ import annotations

import json
import logging
import re
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from alerting.feedback import Feedback
from monitor.core.samples import SampleMeta, SampleStore
from monitor.inference.media import DecodeError, decode_bytes
from monitor.inference.segment import DecodedSegment, DecodeNeeds

logger = logging.getLogger(__name__)

FRAMES_PER_SAMPLE = 8
AUDIO_DETECTORS = frozenset({"silence", "audio_artifact", "loudness", "audio_levels", "true_peak"})
BOTH = frozenset({"av_sync"})


@dataclass
class ExportReport:
    labels: int = 0
    with_samples: int = 0
    samples: int = 0
    unreadable: int = 0

    @property
    def without_samples(self) -> int:
        return self.labels - self.with_samples


def export_dataset(
    feedback: list[Feedback], samples: SampleStore | None, out: Path
) -> ExportReport:
    """Write the dataset under ``out`` (created; an existing ``labels.jsonl`` is replaced)."""
    out.mkdir(parents=True, exist_ok=True)
    report = ExportReport()
    with (out / "labels.jsonl").open("w", encoding="utf-8") as lines:
        for answer in feedback:
            found = [] if samples is None else samples.overlapping(
                answer.channel_id, answer.start, answer.end
            )  # fmt: skip
            files = [_export_sample(samples, meta, answer, out, report) for meta in found]
            exported = [f for f in files if f is not None]
            record = {**answer.model_dump(mode="json"), "samples": exported}
            lines.write(json.dumps(record) + "\n")
            report.labels += 1
            report.with_samples += bool(exported)
            report.samples += len(exported)
    return report


def _export_sample(
    store: SampleStore | None, meta: SampleMeta, answer: Feedback, out: Path, report: ExportReport
) -> dict[str, Any] | None:
    assert store is not None
    folder = out / "samples" / _safe(answer.alert_id)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        payload = store.payload(meta)
    except OSError as exc:
        logger.warning("sample %s:%d unreadable: %s", meta.channel_id, meta.seq, exc)
        report.unreadable += 1
        return None
    segment = folder / f"{meta.seq}.ts"
    segment.write_bytes(payload)
    entry: dict[str, Any] = {
        "seq": meta.seq,
        "media_start": meta.media_start,
        "media_end": meta.media_end,
        "segment": str(segment.relative_to(out)),
    }
    try:
        entry.update(_extract(payload, answer, folder, meta.seq, out))
    except DecodeError as exc:
        logger.warning("sample %s:%d does not decode: %s", meta.channel_id, meta.seq, exc)
        report.unreadable += 1
    return entry


def _extract(payload: bytes, answer: Feedback, folder: Path, seq: int, out: Path) -> dict[str, Any]:
    """The frames or the sound of the segment inside the alert's span."""
    audio = answer.detector in AUDIO_DETECTORS or answer.detector in BOTH
    picture = answer.detector not in AUDIO_DETECTORS
    decoded = decode_bytes(payload, DecodeNeeds(luma=picture, rgb=picture, audio=audio))
    found: dict[str, Any] = {}
    if picture:
        found["frames"] = [str(p.relative_to(out)) for p in _frames(decoded, answer, folder, seq)]
    if audio and decoded.audio.size:
        path = folder / f"{seq}.wav"
        _write_wav(path, decoded, answer.start, answer.end)
        found["audio"] = str(path.relative_to(out))
    return found


def _frames(decoded: DecodedSegment, answer: Feedback, folder: Path, seq: int) -> list[Path]:
    frames = decoded.rgb if decoded.rgb is not None else decoded.luma
    times = np.asarray(decoded.video_times)
    inside = np.flatnonzero((times >= answer.start) & (times <= answer.end))
    if inside.size == 0:
        inside = np.arange(len(frames))  # the span is shorter than a frame: keep the segment
    chosen = inside[
        np.linspace(0, inside.size - 1, min(FRAMES_PER_SAMPLE, inside.size)).astype(int)
    ]
    paths = []
    for i in sorted(set(chosen.tolist())):
        frame = frames[i]
        if frame.ndim == 3:
            frame = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR)
        path = folder / f"{seq}-f{i}.png"
        if not cv2.imwrite(str(path), frame):
            raise DecodeError(f"could not write {path}")
        paths.append(path)
    return paths


def _write_wav(path: Path, decoded: DecodedSegment, start: float, end: float) -> None:
    rate = decoded.audio_rate
    first = max(0, int((start - decoded.audio_start) * rate))
    last = max(first, int((end - decoded.audio_start) * rate))
    sound = decoded.audio[:, first:last]
    if sound.shape[1] == 0:
        sound = decoded.audio
    pcm = (np.clip(sound.T, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(sound.shape[0])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:128]
