"""Turning per-frame or per-window flags into defect spans."""

from __future__ import annotations

import numpy as np

from monitor.core.messages import DefectSpan


def runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """Half-open index ranges ``[i, j)`` where ``flags`` is true."""
    padded = np.concatenate([[False], np.asarray(flags, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def spans_from_flags(
    flags: np.ndarray,
    times: np.ndarray,
    step: float,
    confidence: np.ndarray,
    min_items: int = 1,
) -> list[DefectSpan]:
    """One span per run of flagged items; item ``i`` covers ``[times[i], times[i] + step)``."""
    out = []
    for a, b in runs(flags):
        if b - a < min_items:
            continue
        conf = float(np.clip(np.mean(confidence[a:b]), 0.0, 1.0))
        out.append(
            DefectSpan(start=float(times[a]), end=float(times[b - 1] + step), confidence=conf)
        )
    return out
