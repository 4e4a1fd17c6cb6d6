"""What a sync measurement says about one window, and the BT.1359 verdict on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Verdict = Literal["in_sync", "out_of_sync", "inconclusive"]

# ITU-R BT.1359: viewers detect audio leading by more than 45 ms or lagging by more than 125 ms.
LEAD_THRESHOLD_MS = 45.0
LAG_THRESHOLD_MS = 125.0


@dataclass(frozen=True)
class SyncEstimate:
    """One window's measurement: ``offset_ms`` (+ means audio lags) or ``None`` when the
    window held too little evidence; ``method`` says which path measured it."""

    offset_ms: float | None
    confidence: float
    method: Literal["faces", "onsets", "none"]
    reason: str = ""

    @property
    def conclusive(self) -> bool:
        return self.offset_ms is not None


def verdict(
    estimate: SyncEstimate,
    lead_threshold_ms: float = LEAD_THRESHOLD_MS,
    lag_threshold_ms: float = LAG_THRESHOLD_MS,
) -> Verdict:
    """``out_of_sync`` when audio leads by more than the lead or lags by more than the lag."""
    if estimate.offset_ms is None:
        return "inconclusive"
    if estimate.offset_ms > lag_threshold_ms or estimate.offset_ms < -lead_threshold_ms:
        return "out_of_sync"
    return "in_sync"


def inconclusive(method: Literal["faces", "onsets", "none"], reason: str) -> SyncEstimate:
    return SyncEstimate(offset_ms=None, confidence=0.0, method=method, reason=reason)
