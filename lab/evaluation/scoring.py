"""Event-level precision and recall, the same scoring for vqm and for the baseline.

A predicted interval matches a ground-truth event of the same detector when they overlap
by at least ``min_overlap`` of the shorter one; each event is matched at most once. So a
defect alerted as two pieces counts one true positive and one false positive.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Event:
    detector: str
    start: float
    end: float
    label: str | None = None


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    false_on_clean: int = 0
    misses: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def add(self, other: Score) -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        self.false_on_clean += other.false_on_clean
        self.misses.extend(other.misses)


def overlap(a: Event, b: Event) -> float:
    return max(0.0, min(a.end, b.end) - max(a.start, b.start))


def match(
    truth: list[Event], predicted: list[Event], min_overlap: float = 0.5, clean: bool = False
) -> Score:
    """Score one clip's predictions for one detector against its ground truth."""
    score = Score()
    unmatched = list(truth)
    for pred in sorted(predicted, key=lambda e: e.start):
        best = max(unmatched, key=lambda t: overlap(t, pred), default=None)
        shorter = min(best.end - best.start, pred.end - pred.start) if best else 0.0
        if best is not None and shorter > 0 and overlap(best, pred) >= min_overlap * shorter:
            score.tp += 1
            unmatched.remove(best)
        else:
            score.fp += 1
            score.misses.append(f"false {pred.detector} {pred.start:.2f}-{pred.end:.2f}")
    score.fn = len(unmatched)
    score.misses.extend(f"missed {t.detector} {t.start:.2f}-{t.end:.2f}" for t in unmatched)
    if clean:
        score.false_on_clean = score.fp
    return score
