"""MPEG-TS stream sources against real peers: FFmpeg's CLI streams a synthetic clip with a
black defect over UDP (loopback unicast, and multicast inside a network namespace this test
creates) and SRT (through srt-live-transmit, caller and listener, with a passphrase); each
must give the same defects as the same clip served as plain HLS. A UDP relay in the test
drops and reorders datagrams, which must come out as continuity-error events.

The receiver binds before FFmpeg sends: the tests poll /proc/net/udp for the port (with a
deadline) instead of sleeping.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from monitor.app.scan import Defect, scan
from monitor.app.synthetic.channel import write_clip
from monitor.app.synthetic.defects import Defect as Injected
from monitor.core.bus import MemoryBus, Topics
from monitor.core.channels import ChannelConfig
from monitor.core.messages import SegmentMessage, StreamEvent, StreamEventKind, decode_message
from monitor.core.metrics import Metrics
from stream_ingest.config import IngestConfig
from stream_ingest.sources.base import SourceContext
from stream_ingest.sources.udp import UdpSource
from tests.static_http import serving

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FFMPEG = shutil.which("ffmpeg")
RELAY = shutil.which("srt-live-transmit")
BLACK = (2.0, 4.5)
CLIP_SECONDS = 6.0
RECORD = 30.0  # longer than the clip: a scan ends when the sender stops (input loss)
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="FFmpeg's CLI is not installed")


def udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def udp_bound(port: int) -> bool:
    """Whether some socket of this network namespace is bound to UDP ``port``."""
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        if any(int(line.split()[1].rsplit(":", 1)[1], 16) == port for line in lines):
            return True
    return False


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def send(clip: Path, url: str, **kwargs) -> subprocess.Popen[bytes]:  # type: ignore[no-untyped-def]
    """FFmpeg streaming the clip in real time, packets unchanged (``-c copy``)."""
    assert FFMPEG is not None
    command = [FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-i", str(clip)]
    command += ["-c", "copy", "-f", "mpegts", url]
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, **kwargs)


class ScanThread(threading.Thread):
    """``vqm scan URL`` in a thread, so the test can start the sender once it listens."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.defects: list[Defect] | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.defects = scan(self.url, record_seconds=RECORD)
        except BaseException as exc:  # noqa: BLE001 - reported by result()
            self.error = exc

    def result(self, timeout: float = 60.0) -> list[Defect]:
        self.join(timeout)
        assert not self.is_alive(), f"scan of {self.url} did not end"
        if self.error is not None:
            raise self.error
        assert self.defects is not None
        return self.defects


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ts") / "black.ts"
    schedule = [Injected(kind="black", start=BLACK[0], duration=BLACK[1] - BLACK[0])]
    write_clip(path, CLIP_SECONDS, seed=4242, schedule=schedule)
    return path


@pytest.fixture(scope="module")
def hls_defects(clip: Path) -> list[Defect]:
    """The reference: the same clip cut into an HLS playlist and scanned over HTTP."""
    if FFMPEG is None:
        pytest.skip("FFmpeg's CLI is not installed")
    folder = clip.parent / "hls"
    folder.mkdir(exist_ok=True)
    subprocess.run(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-i", str(clip), "-c", "copy", "-f", "hls"]
        + ["-hls_time", "2", "-hls_playlist_type", "vod", str(folder / "index.m3u8")],
        check=True,
    )
    with serving(folder) as base:
        defects = scan(f"{base}/index.m3u8")
    assert [d.detector for d in defects] == ["black"], defects
    assert defects[0].start == pytest.approx(BLACK[0], abs=0.1)
    return defects


def same_defects(got: list[Defect], reference: list[Defect]) -> None:
    assert [d.detector for d in got] == [d.detector for d in reference], got
    for mine, theirs in zip(got, reference, strict=True):
        assert mine.start == pytest.approx(theirs.start, abs=0.05), (got, reference)
        assert mine.end == pytest.approx(theirs.end, abs=0.05), (got, reference)


@needs_ffmpeg
def test_ffmpeg_over_loopback_udp_gives_the_hls_defects_at_the_same_times(
    clip: Path, hls_defects: list[Defect]
) -> None:
    port = udp_port()
    scanning = ScanThread(f"udp://127.0.0.1:{port}")
    scanning.start()
    wait_until(lambda: udp_bound(port), 10, f"vqm to listen on UDP {port}")
    sender = send(clip, f"udp://127.0.0.1:{port}?pkt_size=1316")
    try:
        same_defects(scanning.result(), hls_defects)
    finally:
        sender.wait(30)


@needs_ffmpeg
def test_ffmpeg_over_rtp_gives_the_hls_defects(clip: Path, hls_defects: list[Defect]) -> None:
    port = udp_port()
    scanning = ScanThread(f"rtp://127.0.0.1:{port}")
    scanning.start()
    wait_until(lambda: udp_bound(port), 10, f"vqm to listen on UDP {port}")
    assert FFMPEG is not None
    sender = subprocess.Popen(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-i", str(clip), "-c", "copy"]
        + ["-f", "rtp_mpegts", f"rtp://127.0.0.1:{port}"],
        stdin=subprocess.DEVNULL,
    )
    try:
        same_defects(scanning.result(), hls_defects)
    finally:
        sender.wait(30)


def _namespace_available() -> str | None:
    """Why a network namespace with multicast on loopback cannot be made here, or None."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare or ip is not installed"
    probe = subprocess.run(
        ["unshare", "-rn", "sh", "-c", _NAMESPACE_SETUP + " && true"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        return f"cannot create a network namespace here: {probe.stderr.strip()}"
    return None


_NAMESPACE_SETUP = (
    "ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo"
)


def multicast_child(clip: str, url: str, group: str, port: int) -> None:
    """Run inside the namespace: scan the group while FFmpeg sends to it; print the defects."""
    scanning = ScanThread(url)
    scanning.start()
    wait_until(lambda: udp_bound(port), 10, f"vqm to join {group}:{port}")
    sender = send(Path(clip), f"udp://{group}:{port}?pkt_size=1316&localaddr=127.0.0.1&ttl=1")
    defects = scanning.result()
    sender.wait(30)
    print(json.dumps([d.model_dump() for d in defects]))


@needs_ffmpeg
@pytest.mark.parametrize(
    "query", ["interface=127.0.0.1", "interface=127.0.0.1&source=127.0.0.1"], ids=["asm", "ssm"]
)
def test_a_multicast_group_in_a_network_namespace_gives_the_hls_defects(
    clip: Path, hls_defects: list[Defect], query: str
) -> None:
    reason = _namespace_available()
    if reason is not None:
        pytest.skip(reason)
    group, port = "239.1.1.1", 5000  # the namespace is ours: any port is free in it
    url = f"udp://@{group}:{port}?{query}"
    code = (
        "import sys; from tests.integration.test_ts_sources import multicast_child; "
        "multicast_child(*sys.argv[1:4], int(sys.argv[4]))"
    )
    child = subprocess.run(
        ["unshare", "-rn", "sh", "-c", f'{_NAMESPACE_SETUP} && exec "$0" "$@"']
        + [sys.executable, "-c", code, str(clip), url, group, str(port)],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=Path(__file__).parents[2],
    )
    assert child.returncode == 0, child.stderr
    got = [Defect.model_validate(d) for d in json.loads(child.stdout.strip().splitlines()[-1])]
    same_defects(got, hls_defects)


@needs_ffmpeg
@pytest.mark.skipif(RELAY is None, reason="srt-live-transmit (Debian srt-tools) is not installed")
def test_srt_listener_with_a_passphrase_gives_the_hls_defects(
    clip: Path, hls_defects: list[Defect], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "integration-secret-42"
    monkeypatch.setenv("VQM_TEST_SRT_KEY", key)
    port = udp_port()
    scanning = ScanThread(
        f"srt://:{port}?mode=listener&latency=120&passphrase_env=VQM_TEST_SRT_KEY"
    )
    scanning.start()
    wait_until(lambda: udp_bound(port), 10, f"the SRT relay to listen on {port}")
    # FFmpeg's srt latency is in microseconds.
    sender = send(clip, f"srt://127.0.0.1:{port}?mode=caller&latency=120000&passphrase={key}")
    try:
        same_defects(scanning.result(), hls_defects)
    finally:
        sender.wait(30)


@needs_ffmpeg
@pytest.mark.skipif(RELAY is None, reason="srt-live-transmit (Debian srt-tools) is not installed")
def test_srt_caller_to_an_ffmpeg_listener_gives_the_hls_defects(
    clip: Path, hls_defects: list[Defect]
) -> None:
    port = udp_port()
    sender = send(clip, f"srt://127.0.0.1:{port}?mode=listener&latency=120000")
    try:
        wait_until(lambda: udp_bound(port), 10, f"FFmpeg to listen on {port}")
        defects = ScanThread(f"srt://127.0.0.1:{port}?mode=caller&latency=120")
        defects.start()
        same_defects(defects.result(), hls_defects)
    finally:
        sender.wait(30)


class LossyRelay(asyncio.DatagramProtocol):
    """Forwards datagrams, dropping every ``drop_every``-th and swapping the pair after it."""

    def __init__(self, target: tuple[str, int], drop_every: int) -> None:
        self.target = target
        self.drop_every = drop_every
        self.count = 0
        self.held: bytes | None = None
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: object) -> None:
        assert self.transport is not None
        self.count += 1
        phase = self.count % self.drop_every
        if phase == 0:
            return  # dropped
        if phase == 1 and self.count > 1:
            self.held = data  # sent after the next one: reordered
            return
        self.transport.sendto(data, self.target)
        if self.held is not None:
            self.transport.sendto(self.held, self.target)
            self.held = None


@needs_ffmpeg
async def test_a_relay_that_drops_and_reorders_datagrams_gives_continuity_errors(
    clip: Path,
) -> None:
    vqm_port, relay_port = udp_port(), udp_port()
    bus, topics = MemoryBus(), Topics()
    context = SourceContext(IngestConfig(), bus, topics, Metrics(CollectorRegistry()))
    channel = ChannelConfig(id="lossy", url=f"udp://127.0.0.1:{vqm_port}")
    consumer = bus.consumer([topics.segments, topics.stream_events], "test")
    stop = asyncio.Event()
    source = asyncio.create_task(UdpSource(channel, context).run(stop))
    loop = asyncio.get_running_loop()
    relay, _ = await loop.create_datagram_endpoint(
        lambda: LossyRelay(("127.0.0.1", vqm_port), drop_every=50),
        local_addr=("127.0.0.1", relay_port),
    )
    sender = await asyncio.create_subprocess_exec(
        FFMPEG or "ffmpeg",
        *["-hide_banner", "-loglevel", "error", "-re", "-i", str(clip), "-c", "copy"],
        *["-f", "mpegts", f"udp://127.0.0.1:{relay_port}?pkt_size=1316"],
        stdin=asyncio.subprocess.DEVNULL,
    )
    segments: list[SegmentMessage] = []
    events: list[StreamEvent] = []
    try:
        deadline = time.monotonic() + 30
        while StreamEventKind.INPUT_LOSS not in {e.kind for e in events}:
            assert time.monotonic() < deadline, events
            for record in await consumer.getmany(timeout_ms=200):
                if record.topic == topics.segments:
                    segments.append(decode_message(record.value, SegmentMessage))
                else:
                    events.append(decode_message(record.value, StreamEvent))
    finally:
        await sender.wait()
        relay.close()
        stop.set()
        await asyncio.wait_for(source, 5)
    errors = [e for e in events if e.kind is StreamEventKind.CONTINUITY_ERROR]
    assert errors, events
    assert sum(int(e.detail.split()[0]) for e in errors) >= 2
    assert segments, "segments still flow between the errors"


@needs_ffmpeg
async def test_vqm_run_alerts_a_udp_channel_at_the_hls_times(
    clip: Path, hls_defects: list[Defect]
) -> None:
    """The one-process mode (`vqm run`) with a udp:// channel: the same black alert, at the
    media times the HLS scan of the same clip reports."""
    from alerting.config import AlertingConfig
    from alerting.models import AlertEvent, AlertTransition
    from monitor.app.config import VqmConfig
    from monitor.app.runtime import Runtime
    from monitor.core.settings import Settings
    from tests.conftest import free_port

    events: list[AlertEvent] = []

    async def record(event: AlertEvent) -> None:
        events.append(event)

    port = udp_port()
    config = VqmConfig.model_validate(
        {"channels": [{"id": "feed", "url": f"udp://127.0.0.1:{port}"}]}
    ).model_copy(update={"alerting": AlertingConfig(flap_window=0)})
    bus = MemoryBus()
    # Reads the segments too, so they stay on the bus: the first one's media time is the
    # stream's origin (a scan reports times from it, alerts on the stream's own clock).
    probe = bus.consumer([config.topics.segments], group="probe")
    runtime = Runtime(config, Settings(api_port=free_port()), bus=bus, listeners=[record])
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop))
    sender = None
    try:
        deadline = time.monotonic() + 30
        while not udp_bound(port):
            assert time.monotonic() < deadline and not task.done(), "vqm did not listen"
            await asyncio.sleep(0.05)
        sender = send(clip, f"udp://127.0.0.1:{port}?pkt_size=1316")
        deadline = time.monotonic() + 60
        while not any(e.transition is AlertTransition.RESOLVED for e in events):
            assert time.monotonic() < deadline and not task.done(), events
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        if sender is not None:
            sender.wait(30)
    segments = [decode_message(r.value, SegmentMessage) for r in await probe.getmany(0, 1000)]
    origin = min(m.media_start for m in segments)
    black = [e for e in events if e.alert.detector == "black"]
    [opened] = [e.alert for e in black if e.transition is AlertTransition.OPENED]
    assert opened.channel_id == "feed"
    assert opened.start - origin == pytest.approx(hls_defects[0].start, abs=0.05)
    [resolved] = [e.alert for e in black if e.transition is AlertTransition.RESOLVED]
    assert resolved.end - origin == pytest.approx(hls_defects[0].end, abs=0.05)
    # The clip ends and the sender with it: the channel's feed is lost, and paged as such.
    others = {(e.alert.detector, e.alert.label) for e in events if e.alert.detector != "black"}
    assert others <= {("stream", "input_loss")}, events
