"""TR 101 290 priority 1 (and PCR) on packets built here: each check fires on its defect,
clears when the stream is right again, and stays quiet on a clean stream."""

from __future__ import annotations

from monitor.core.messages import StreamEventKind as K
from stream_ingest.config import TsConfig
from stream_ingest.tr101290 import Finding, TransportChecks
from stream_ingest.ts import TsFramer, parse_packet
from tests.unit.stream_ingest.tsbuild import AUDIO_PID, PMT_PID, VIDEO_PID, Builder, packet, pat

FPS = 25


def run(
    frames: list[list[bytes]], settings: TsConfig | None = None, start: float = 100.0
) -> list[Finding]:
    """Feed one frame's packets per 1/25 s of arrival time, as one datagram each."""
    checks = TransportChecks(settings or TsConfig())
    framer = TsFramer()
    found: list[Finding] = []
    for n, packets in enumerate(frames):
        arrival = start + n / FPS
        for raw in framer.feed(b"".join(packets)):
            checks.packet(parse_packet(raw), arrival)
        checks.sync(framer, arrival)
        found += checks.poll(arrival)
    found += checks.poll(start + len(frames) / FPS + 1.0)
    return found


def kinds(found: list[Finding]) -> list[K]:
    return [f.kind for f in found]


def tables(found: list[Finding]) -> list[Finding]:
    """Without the continuity error a table's packets leave when they stop (its counter)."""
    return [f for f in found if f.kind is not K.CONTINUITY_ERROR]


def stream(seconds: float, builder: Builder | None = None) -> list[list[bytes]]:
    builder = builder or Builder(fps=FPS)
    return [builder.frame(n) for n in range(round(seconds * FPS))]


def test_a_clean_stream_raises_nothing() -> None:
    assert run(stream(4)) == []


def test_a_lost_packet_is_one_continuity_error_naming_its_pid() -> None:
    frames = stream(3)
    frames[30] = [p for p in frames[30] if parse_packet(p).pid != AUDIO_PID]
    (finding,) = run(frames)
    assert finding.kind is K.CONTINUITY_ERROR and finding.count == 1
    assert f"PID {AUDIO_PID} (aac audio) x1" in finding.detail


def test_one_duplicate_is_allowed_and_a_second_is_an_error() -> None:
    frames = stream(3)
    audio = next(p for p in frames[30] if parse_packet(p).pid == AUDIO_PID)
    frames[30].append(audio)
    assert run(frames) == []
    frames[30].append(audio)
    assert kinds(run(frames)) == [K.CONTINUITY_ERROR]


def test_reordered_packets_are_continuity_errors() -> None:
    frames = stream(3)
    frames[30], frames[31] = frames[31], frames[30]
    (finding,) = [f for f in run(frames) if f.kind is K.CONTINUITY_ERROR]
    assert finding.count >= 2 * 3  # video, audio and the PMT's, each out and back


def test_a_discontinuity_indicator_excuses_a_counter_jump() -> None:
    builder = Builder(fps=FPS)
    frames = [builder.frame(n) for n in range(20)]
    frames[-1].append(packet(AUDIO_PID, b"\x00" * 100, 9, discontinuity=True))
    builder.cc[AUDIO_PID] = 10  # the counter carries on from the new value
    frames += [builder.frame(n) for n in range(20, 50)]
    assert run(frames) == []


def test_counts_are_reported_once_per_period_with_their_sum() -> None:
    frames = stream(3)
    for n in (10, 20, 30):
        frames[n] = [p for p in frames[n] if parse_packet(p).pid != AUDIO_PID]
    found = run(frames, TsConfig(report_every=3.5))
    assert kinds(found) == [K.CONTINUITY_ERROR] and found[0].count == 3


def test_bad_sync_bytes_are_counted_and_two_in_a_row_lose_sync_until_it_returns() -> None:
    frames = stream(3)
    frames[20] = [b"\x00" + p[1:] for p in frames[20]]
    found = run(frames)
    assert kinds(found)[:1] == [K.TS_SYNC_LOSS]
    assert K.SYNC_BYTE_ERROR in kinds(found)
    assert found[-2:][0].kind is K.RECOVERED or K.RECOVERED in kinds(found)


def test_a_missing_pat_is_a_pat_error_until_it_comes_back() -> None:
    frames = stream(4)
    for n in range(25, 60):  # 1.4 s without PID 0
        frames[n] = [p for p in frames[n] if parse_packet(p).pid != 0]
    found = tables(run(frames))
    assert kinds(found) == [K.PAT_ERROR, K.RECOVERED]
    assert "no PAT for more than 0.5 s" in found[0].detail


def test_a_wrong_table_on_pid_0_is_a_pat_error() -> None:
    frames = stream(2)
    frames[20].append(packet(0, b"\x00" + bytes([0x02]) + pat()[1:], 5, pusi=True))
    found = run(frames)
    assert kinds(found)[:1] == [K.PAT_ERROR] and "table_id 0x02" in found[0].detail
    assert K.RECOVERED in kinds(found)


def test_a_missing_pmt_is_a_pmt_error() -> None:
    frames = stream(4)
    for n in range(25, 60):
        frames[n] = [p for p in frames[n] if parse_packet(p).pid != PMT_PID]
    found = tables(run(frames))
    assert kinds(found) == [K.PMT_ERROR, K.RECOVERED]
    assert f"PID {PMT_PID}" in found[0].detail


def test_audio_gone_for_longer_than_the_limit_is_a_pid_error_until_it_returns() -> None:
    builder = Builder(fps=FPS)
    frames = [builder.frame(n, audio=not 25 <= n < 100) for n in range(150)]
    found = run(frames, TsConfig(pid_loss_after=2.0))
    assert kinds(found) == [K.PID_ERROR, K.RECOVERED]
    assert f"PID {AUDIO_PID} (aac audio) absent" in found[0].detail


def test_a_short_audio_gap_is_not_a_pid_error() -> None:
    builder = Builder(fps=FPS)
    frames = [builder.frame(n, audio=not 25 <= n < 50) for n in range(100)]
    assert run(frames, TsConfig(pid_loss_after=2.0)) == []


def test_a_new_pmt_version_is_a_program_change() -> None:
    builder = Builder(fps=FPS)
    frames = [builder.frame(n) for n in range(25)]
    builder.pmt_version = 1
    frames += [builder.frame(n) for n in range(25, 50)]
    found = run(frames)
    assert kinds(found) == [K.PROGRAM_CHANGED] and "version 0 -> 1" in found[0].detail


def test_pcr_arriving_late_beyond_the_bound_is_a_pcr_error() -> None:
    checks = TransportChecks(TsConfig(pcr_jitter_max=0.1))
    builder = Builder(fps=FPS)
    found: list[Finding] = []
    for n in range(75):
        late = 0.3 if n == 50 else 0.0  # one frame held up in the network
        for raw in builder.frame(n):
            checks.packet(parse_packet(raw), 100 + n / FPS + late)
        found += checks.poll(100 + n / FPS + late)
    found += checks.poll(200.0)
    assert kinds(found) == [K.PCR_ERROR]
    assert "jitter 0.300 s" in found[0].detail


def test_a_pcr_jump_without_the_discontinuity_indicator_is_a_pcr_error() -> None:
    builder = Builder(fps=FPS)
    frames = [builder.frame(n) for n in range(25)]
    builder.start_pts += 90_000  # a second skipped in the stream's clock
    frames += [builder.frame(n) for n in range(25, 50)]
    found = run(frames, TsConfig(pcr_jitter_max=5.0))
    assert K.PCR_ERROR in kinds(found)


def test_a_quiet_input_is_not_a_missing_table() -> None:
    """No packets at all is input loss, the source's to report; not a PAT or PID error."""
    checks = TransportChecks(TsConfig())
    builder = Builder(fps=FPS)
    for n in range(25):
        for raw in builder.frame(n):
            checks.packet(parse_packet(raw), 100 + n / FPS)
    assert checks.poll(101.0) == []
    assert checks.poll(110.0) == []


def test_video_pid_and_pcr_pid_come_from_the_pmt() -> None:
    checks = TransportChecks(TsConfig())
    for n, raw in enumerate(Builder(fps=FPS).frames(0, 5)):
        checks.packet(parse_packet(raw), 100 + n / 100)
    (table,) = checks.pmts.values()
    assert table.video is not None and table.video.pid == VIDEO_PID
    assert table.pcr_pid == VIDEO_PID
