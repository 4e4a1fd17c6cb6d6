"""Transport checks on received MPEG-TS: the first priority of ETSI TR 101 290, and PCR.

    checks = TransportChecks(settings.ts)
    checks.packet(packet, arrival)          # every packet, with the loop time it arrived
    checks.sync(framer, arrival)            # after each datagram: the framer's sync state
    for finding in checks.poll(arrival):    # after each batch, and at least once a second
        ...                                 # Finding(kind, detail, count)

Two sorts of finding. *Conditions* last until the stream is right again: ``ts_sync_loss``
(1.1), ``pat_error`` (1.3: no valid PAT on PID 0 within ``psi_interval``, or a section on it
that is not one), ``pmt_error`` (1.5, the same for each PMT PID) and ``pid_error`` (1.6: an
audio or video PID the PMT lists absent for ``pid_loss_after``). A condition is one finding
when it starts; when the last one clears, a ``recovered`` finding says so. *Counts* are
summed and reported at most once per ``report_every``: ``sync_byte_error`` (1.2),
``continuity_error`` (1.4: a lost, repeated or out-of-order packet) and ``pcr_error`` (a PCR
step backwards or over 100 ms without the discontinuity indicator, or PCR arrival jitter
over ``pcr_jitter_max``). A new PAT or PMT version is a ``program_changed`` finding.

Intervals are measured on the stream's own clock (its PCR) while PCRs arrive, so a pause of
the receiving process is not mistaken for a missing table; on arrival time otherwise. Input
loss (no packets at all) is the source's to report: while it lasts, nothing here is raised.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

from monitor.core.messages import StreamEventKind
from stream_ingest.config import TsConfig
from stream_ingest.ts import (
    NULL_PID,
    PAT_PID,
    PCR_HZ,
    PCR_WRAP,
    Packet,
    Pat,
    Pmt,
    PsiError,
    SectionReader,
    TsFramer,
    Unwrapper,
    parse_pat,
    parse_pmt,
)

K = StreamEventKind
CONDITIONS = frozenset({K.TS_SYNC_LOSS, K.PAT_ERROR, K.PMT_ERROR, K.PID_ERROR})
_PCR_STEP_MAX = PCR_HZ // 10  # TR 101 290 2.3: consecutive PCRs at most 100 ms apart
_PCR_FRESH = 1.0  # seconds of arrival time a PCR keeps the stream clock in use
_JITTER_WINDOW = 10.0


@dataclass(frozen=True)
class Finding:
    kind: StreamEventKind
    detail: str
    count: int = 1


@dataclass
class _Stamp:
    """When something was last seen: on the stream clock (None: no PCR then) and arrival."""

    stream: float | None
    arrival: float


@dataclass
class _Counts:
    by_pid: Counter[int] = field(default_factory=Counter)

    def add(self, pid: int, n: int = 1) -> None:
        self.by_pid[pid] += n

    def total(self) -> int:
        return sum(self.by_pid.values())


class TransportChecks:
    """TR 101 290 priority 1 (and PCR) over one stream's packets; see the module docstring."""

    def __init__(self, settings: TsConfig) -> None:
        self.settings = settings
        self.pat: Pat | None = None
        self.pmts: dict[int, Pmt] = {}  # PMT PID -> its newest valid PMT
        self.active: dict[StreamEventKind, str] = {}
        self._readers: dict[int, SectionReader] = {PAT_PID: SectionReader()}
        self._cc: dict[int, tuple[int, int]] = {}  # PID -> (last cc, times repeated)
        self._seen: dict[int, _Stamp] = {}
        self._psi_seen: dict[int, _Stamp] = {}
        self._bad_psi: dict[int, str] = {}
        self._counts: dict[StreamEventKind, _Counts] = {}
        self._findings: list[Finding] = []
        self._pcr = Unwrapper(PCR_WRAP)
        self._pcr_pid: int | None = None
        self._pcr_last: int | None = None
        self._pcr_arrival: float | None = None
        self._jitter: deque[tuple[float, float]] = deque()  # (arrival, offset): rising offsets
        self._jitter_worst = 0.0
        self._reported_at: float | None = None
        self._started: float | None = None
        self._last_packet: float | None = None
        self._sync_errors = 0
        self._sync_lost = 0

    # Feeding

    def packet(self, packet: Packet, arrival: float) -> None:
        """Check one packet that arrived at ``arrival`` (loop time, seconds)."""
        if self._started is None:
            self._started = arrival
        self._last_packet = arrival
        pid = packet.pid
        if pid == NULL_PID:
            return
        if packet.pcr is not None and pid == self._pcr_pid:
            self._check_pcr(packet, arrival)
        self._check_cc(packet)
        self._seen[pid] = self._stamp(arrival)
        if pid == PAT_PID or pid in self.pmts or self._is_pmt_pid(pid):
            self._psi(packet, arrival)

    def sync(self, framer: TsFramer, arrival: float) -> None:
        """Take the framer's sync-byte counts and sync state after a datagram."""
        new_errors = framer.sync_errors - self._sync_errors
        if new_errors:
            self._count(K.SYNC_BYTE_ERROR, PAT_PID, new_errors)
        self._sync_errors = framer.sync_errors
        if framer.sync_lost != self._sync_lost or not framer.in_sync:
            self._raise(K.TS_SYNC_LOSS, "two or more sync bytes in a row were not 0x47")
        elif framer.in_sync:
            self._clear(K.TS_SYNC_LOSS)
        self._sync_lost = framer.sync_lost

    def restart(self, arrival: float) -> None:
        """Input came back after a loss: time everything from now, not from before it."""
        stamp = _Stamp(None, arrival)
        for table in (self._seen, self._psi_seen):
            for pid in table:
                table[pid] = stamp
        self._pcr_arrival = None
        self._pcr_last = None
        self._jitter.clear()
        self._cc.clear()

    # Timers and reporting

    def poll(self, arrival: float) -> list[Finding]:
        """Conditions that timed out by ``arrival``, and the counts due for a report."""
        if self._last_packet is not None:
            # Timed up to the newest packet: when nothing arrives at all, that is input
            # loss (the source's to report), not a missing table.
            self._check_tables(self._last_packet)
            self._check_pids(self._last_packet)
        if self._reported_at is None:
            self._reported_at = arrival
        if arrival - self._reported_at >= self.settings.report_every:
            self._report_counts()
            self._reported_at = arrival
        findings, self._findings = self._findings, []
        return findings

    def counts_now(self) -> list[Finding]:
        """The counts not yet reported, now (the input stopped: nothing more will come)."""
        self._report_counts()
        findings = [f for f in self._findings if f.kind not in CONDITIONS]
        self._findings = [f for f in self._findings if f.kind in CONDITIONS]
        return findings

    def _report_counts(self) -> None:
        for kind, counts in self._counts.items():
            total = counts.total()
            if not total:
                continue
            if kind is K.PCR_ERROR:
                detail = f"{total} PCR problems; worst arrival jitter {self._jitter_worst:.3f} s"
                self._jitter_worst = 0.0
            elif kind is K.SYNC_BYTE_ERROR:
                detail = f"{total} packets without the 0x47 sync byte"
            else:
                pids = ", ".join(f"{self._name(p)} x{n}" for p, n in sorted(counts.by_pid.items()))
                detail = f"{total} continuity counter errors: {pids}"
            self._findings.append(Finding(kind, detail, total))
            counts.by_pid.clear()

    def _name(self, pid: int) -> str:
        for pmt in self.pmts.values():
            for stream in pmt.streams:
                if stream.pid == pid:
                    return f"PID {pid} ({stream.codec} {stream.kind})"
        return f"PID {pid}"

    def _count(self, kind: StreamEventKind, pid: int, n: int = 1) -> None:
        self._counts.setdefault(kind, _Counts()).add(pid, n)

    def _raise(self, kind: StreamEventKind, detail: str) -> None:
        if kind in self.active:
            return
        self.active[kind] = detail
        self._findings.append(Finding(kind, detail))

    def _clear(self, kind: StreamEventKind) -> None:
        detail = self.active.pop(kind, None)
        if detail is not None and not self.active:
            self._findings.append(Finding(K.RECOVERED, f"{kind.value} cleared: transport fine"))

    # Clocks

    def _stamp(self, arrival: float) -> _Stamp:
        return _Stamp(self._stream_now(arrival), arrival)

    def _stream_now(self, arrival: float) -> float | None:
        fresh = self._pcr_arrival is not None and arrival - self._pcr_arrival <= _PCR_FRESH
        return self._pcr.value / PCR_HZ if fresh and self._pcr_last is not None else None

    def _elapsed(self, stamp: _Stamp, arrival: float) -> float:
        now = self._stream_now(arrival)
        if now is not None and stamp.stream is not None:
            return now - stamp.stream
        return arrival - stamp.arrival

    # Checks

    def _check_cc(self, packet: Packet) -> None:
        """1.4: the counter steps by one for each packet with a payload; the same value
        once more is a legal duplicate; anything else, unannounced, is an error."""
        pid, cc = packet.pid, packet.cc
        last = self._cc.get(pid)
        if last is None or packet.discontinuity:
            self._cc[pid] = (cc, 0)
            return
        last_cc, repeats = last
        if not packet.has_payload:
            if cc != last_cc:
                self._count(K.CONTINUITY_ERROR, pid)
            self._cc[pid] = (cc, 0)
            return
        if cc == last_cc:
            if repeats >= 1:
                self._count(K.CONTINUITY_ERROR, pid)
            self._cc[pid] = (cc, repeats + 1)
            return
        if cc != (last_cc + 1) & 0x0F:
            self._count(K.CONTINUITY_ERROR, pid)
            self._readers.get(pid, SectionReader()).reset()
        self._cc[pid] = (cc, 0)

    def _check_pcr(self, packet: Packet, arrival: float) -> None:
        raw = packet.pcr
        assert raw is not None
        if self._pcr_last is not None and not packet.discontinuity:
            step = (raw - self._pcr_last) % PCR_WRAP
            if step > PCR_WRAP // 2 or step > _PCR_STEP_MAX:
                self._count(K.PCR_ERROR, packet.pid)
                self._jitter.clear()
        elif packet.discontinuity:
            self._jitter.clear()
        value = self._pcr(raw)
        self._pcr_last, self._pcr_arrival = raw, arrival
        self._check_jitter(arrival - value / PCR_HZ, arrival, packet.pid)

    def _check_jitter(self, offset: float, arrival: float, pid: int) -> None:
        """Arrival against PCR time: how much later than the earliest in the window."""
        window = self._jitter
        while window and window[-1][1] >= offset:
            window.pop()
        window.append((arrival, offset))
        while window and window[0][0] < arrival - _JITTER_WINDOW:
            window.popleft()
        jitter = offset - window[0][1]
        if jitter > self.settings.pcr_jitter_max:
            self._count(K.PCR_ERROR, pid)
            self._jitter_worst = max(self._jitter_worst, jitter)

    def _is_pmt_pid(self, pid: int) -> bool:
        return self.pat is not None and pid in self.pat.programs.values()

    def _psi(self, packet: Packet, arrival: float) -> None:
        pid = packet.pid
        what = "PAT" if pid == PAT_PID else "PMT"
        if packet.scrambling:
            self._bad_psi[pid] = f"{what} on PID {pid} is scrambled"
            return
        reader = self._readers.setdefault(pid, SectionReader())
        for section in reader.feed(packet):
            try:
                if pid == PAT_PID:
                    self._take_pat(parse_pat(section))
                else:
                    self._take_pmt(pid, parse_pmt(section))
            except PsiError as exc:
                if section[:1] in (b"\x00", b"\x02") or pid == PAT_PID:
                    self._bad_psi[pid] = f"{what} on PID {pid}: {exc}"
                continue
            self._bad_psi.pop(pid, None)
            self._psi_seen[pid] = self._stamp(arrival)

    def _take_pat(self, pat: Pat) -> None:
        if self.pat is not None and (pat.version, pat.programs) != (
            self.pat.version,
            self.pat.programs,
        ):
            self._findings.append(
                Finding(K.PROGRAM_CHANGED, f"PAT version {self.pat.version} -> {pat.version}")
            )
        self.pat = pat
        gone = [pid for pid in self.pmts if pid not in pat.programs.values()]
        for pid in gone:
            del self.pmts[pid]
            self._psi_seen.pop(pid, None)

    def _take_pmt(self, pid: int, pmt: Pmt) -> None:
        old = self.pmts.get(pid)
        if old is not None and old != pmt:
            streams = ", ".join(f"{s.pid} {s.codec}" for s in pmt.streams)
            self._findings.append(
                Finding(
                    K.PROGRAM_CHANGED,
                    f"PMT of program {pmt.program} version {old.version} -> {pmt.version}: "
                    f"{streams}",
                )
            )
        self.pmts[pid] = pmt
        self._pcr_pid = next(iter(self.pmts.values())).pcr_pid

    def _check_tables(self, arrival: float) -> None:
        """1.3 and 1.5: PAT and every PMT valid, and repeated within ``psi_interval``."""
        limit = self.settings.psi_interval
        assert self._started is not None
        since_start = _Stamp(None, self._started)
        pat_problem = self._bad_psi.get(PAT_PID)
        pat_seen = self._psi_seen.get(PAT_PID, since_start)
        if pat_problem is None and self._elapsed(pat_seen, arrival) > limit:
            pat_problem = f"no PAT for more than {limit:g} s"
        self._condition(K.PAT_ERROR, pat_problem)
        pmt_problem = None
        pmt_pids = sorted(set(self.pat.programs.values())) if self.pat else []
        for pid in pmt_pids:
            problem = self._bad_psi.get(pid)
            if (
                problem is None
                and self._elapsed(self._psi_seen.get(pid, since_start), arrival) > limit
            ):
                problem = f"no PMT on PID {pid} for more than {limit:g} s"
            pmt_problem = pmt_problem or problem
        self._condition(K.PMT_ERROR, pmt_problem)

    def _check_pids(self, arrival: float) -> None:
        """1.6: each audio and video PID a PMT lists keeps arriving."""
        limit = self.settings.pid_loss_after
        problem = None
        for pmt in self.pmts.values():
            for stream in pmt.streams:
                if stream.kind == "other":
                    continue
                seen = self._seen.get(stream.pid)
                if seen is None:
                    seen = self._seen.setdefault(stream.pid, _Stamp(None, arrival))
                if self._elapsed(seen, arrival) > limit:
                    problem = problem or (
                        f"{self._name(stream.pid)} absent for more than {limit:g} s"
                    )
        self._condition(K.PID_ERROR, problem)

    def _condition(self, kind: StreamEventKind, problem: str | None) -> None:
        if problem is None:
            self._clear(kind)
        else:
            self._raise(kind, problem)
