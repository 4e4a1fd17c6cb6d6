"""Where each defect began, carried on its spans, so alerting can name a defect it lost.

Detectors see one segment at a time, so a black picture that lasts a minute arrives as thirty
spans, each starting at its segment's start. Alerting's tracker joins them and names the alert
after the defect's first instant (``alert_id(channel, detector, label, start)``), which pagers
and webhook receivers use to deduplicate. If alerting loses its tracker state (a Redis
restarted without persistence), the next span alone would put the defect's start at that
segment: a new id, a second page for the same defect, and the first alert never resolved.

The inference worker sees one channel's segments in order (they are keyed by channel), so it
remembers, per channel, detector and label, where the unbroken defect began, and stamps that
on every span that continues it (``DefectSpan.run_start``). A tracker that starts without
state takes the defect's start from there and so finds the same id again.

    runs = DefectRuns()
    spans = runs.carry("news", "black", analysed_start, analysed_end, spans)

"Unbroken" is what the tracker joins before an alert opens: no more than ``gap_tolerance``
of analysed clean media between spans (media that was not analysed counts as neither), and no
jump of more than ``max_jump`` seconds; both default to the tracker's values. Once an alert is
open the tracker also bridges clean gaps shorter than the detector's ``recovery``; that needs
the tracker's rules and state, so here such a gap starts a new run, and an alert re-opened
after a state loss then starts at its latest unbroken stretch. What inference forgets
(a restart, a rebalance) costs nothing while alerting has its state: its tracker ignores
``run_start`` on defects it already follows.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.core.messages import DefectSpan

GAP_TOLERANCE = 0.1  # the tracker's default: shorter clean stretches do not split a defect
MAX_JUMP = 5.0  # the tracker's default: a longer hole or a jump back ends every defect
_EPS = 1e-6


@dataclass
class _Run:
    start: float
    end: float
    clean: float = 0.0  # analysed clean seconds since ``end``


class DefectRuns:
    """Unbroken defect runs per (channel, detector, label), in memory, for one worker."""

    def __init__(self, gap_tolerance: float = GAP_TOLERANCE, max_jump: float = MAX_JUMP) -> None:
        self.gap_tolerance = gap_tolerance
        self.max_jump = max_jump
        self._runs: dict[tuple[str, str], dict[str, _Run]] = {}
        self._analysed_end: dict[tuple[str, str], float] = {}

    def carry(
        self,
        channel_id: str,
        detector: str,
        analysed_start: float,
        analysed_end: float,
        spans: list[DefectSpan],
    ) -> list[DefectSpan]:
        """One verdict's spans, each continuing an earlier segment's defect with its start."""
        key = (channel_id, detector)
        previous = self._analysed_end.get(key)
        if previous is not None and self._jumped(previous, analysed_start, analysed_end):
            previous = None
            self._runs.pop(key, None)
        if previous is not None and analysed_end <= previous + _EPS:
            return spans  # a segment analysed again (a retry) tells nothing new
        runs = self._runs.setdefault(key, {})
        clean_from = analysed_start if previous is None else max(analysed_start, previous)
        by_label: dict[str, list[tuple[int, DefectSpan]]] = {}
        for i, span in sorted(enumerate(spans), key=lambda item: item[1].start):
            by_label.setdefault(span.label or "", []).append((i, span))
        out = list(spans)
        for label in set(runs) | set(by_label):
            for i, run_start in self._advance(
                runs, label, clean_from, analysed_end, by_label.get(label, [])
            ):
                out[i] = out[i].model_copy(update={"run_start": run_start})
        self._analysed_end[key] = analysed_end
        return out

    def _jumped(self, previous: float, analysed_start: float, analysed_end: float) -> bool:
        return analysed_start - previous > self.max_jump or analysed_end < previous - self.max_jump

    def _advance(
        self,
        runs: dict[str, _Run],
        label: str,
        clean_from: float,
        analysed_end: float,
        spans: list[tuple[int, DefectSpan]],
    ) -> list[tuple[int, float]]:
        """Walk one label's spans through one segment, as the tracker does before opening.

        Returns (index, run start) for each span that continues a run begun before it.
        """
        run = runs.get(label)
        cursor = clean_from if run is None else max(clean_from, run.end)
        out: list[tuple[int, float]] = []
        for i, span in spans:
            if run is not None:
                run.clean += max(0.0, span.start - cursor)
                if run.clean > self.gap_tolerance + _EPS:
                    run = None
            if run is None:
                run = _Run(start=span.start, end=span.end)
            elif run.start < span.start - _EPS:
                out.append((i, run.start))
            run.end, run.clean = max(run.end, span.end), 0.0
            cursor = max(cursor, span.end)
        if run is not None:
            run.clean += max(0.0, analysed_end - cursor)
        if run is None or run.clean > self.gap_tolerance + _EPS:
            runs.pop(label, None)
        else:
            runs[label] = run
        return out
