"""Operator answers as retraining units: the frames each answer speaks for.

* an alert's feedback: the frames the detector would judge (every ``stride``-th, RGB at most
  960x540) of the kept segments under the alert's media span (:mod:`monitor.core.samples`);
* a labelled annotation candidate: its one kept frame (a PNG in the candidates store).

An answer whose samples were evicted has no frames and is counted, not used.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from alerting.annotation import CandidateLabel
from alerting.feedback import Feedback, Verdict
from monitor.app.retrain import Unit
from monitor.core.samples import SampleStore
from monitor.inference.detectors.block_corruption import RGB_LIMIT
from monitor.inference.media import DecodeError, decode_bytes
from monitor.inference.segment import DecodeNeeds

logger = logging.getLogger(__name__)

DETECTOR = "block_corruption"


def feedback_units(
    feedback: list[Feedback], samples: SampleStore | None, stride: int
) -> list[Unit]:
    units = []
    for answer in feedback:
        if answer.detector != DETECTOR:
            continue
        frames = [] if samples is None else _span_frames(samples, answer, stride)
        regions = answer.regions
        units.append(
            Unit(
                key=f"alert/{answer.alert_id}",
                defect=answer.verdict == Verdict.REAL_DEFECT,
                frames=frames,
                grid=regions.grid if regions is not None and regions.cells else None,
                cells=list(regions.cells) if regions is not None else [],
            )
        )
    return units


def _span_frames(samples: SampleStore, answer: Feedback, stride: int) -> list[np.ndarray]:
    needs = DecodeNeeds(luma=False, rgb=True, audio=False, rgb_limit=RGB_LIMIT, rgb_stride=stride)
    frames: list[np.ndarray] = []
    for meta in samples.overlapping(answer.channel_id, answer.start, answer.end):
        try:
            decoded = decode_bytes(samples.payload(meta), needs)
        except (OSError, DecodeError) as exc:
            logger.warning("sample %s:%d unusable: %s", meta.channel_id, meta.seq, exc)
            continue
        picks, rgb = decoded.rgb_every(stride)
        times = np.asarray(decoded.video_times)[picks]
        inside = (times >= answer.start) & (times <= answer.end)
        frames.extend(np.ascontiguousarray(f) for f in rgb[inside])
    return frames


def candidate_units(labels: list[CandidateLabel], candidates: SampleStore | None) -> list[Unit]:
    kept = {} if candidates is None else {m.key: m for m in candidates.all()}
    units = []
    for label in labels:
        if label.detector != DETECTOR:
            continue
        meta = kept.get((label.channel_id, label.seq))
        frames = []
        if meta is not None and candidates is not None:
            picture = cv2.imdecode(
                np.frombuffer(candidates.payload(meta), np.uint8), cv2.IMREAD_COLOR
            )
            if picture is None:
                logger.warning("candidate %s:%d does not decode", label.channel_id, label.seq)
            else:
                frames = [cv2.cvtColor(picture, cv2.COLOR_BGR2RGB)]
        regions = label.regions
        units.append(
            Unit(
                key=f"candidate/{label.key}",
                defect=label.verdict == "defect",
                frames=frames,
                grid=regions.grid if regions is not None and regions.cells else None,
                cells=list(regions.cells) if regions is not None else [],
            )
        )
    return units
