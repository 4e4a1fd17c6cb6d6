"""The event loop stays responsive whatever origins serve: a `vqm run` process with one channel
reloading a 100,000-entry playlist and another listing a FIFO answers ``/healthz`` within
100 ms (p99), probed from outside the process as a liveness probe would."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from tests.conftest import REPO, free_port
from tests.unit.stream_ingest.origin import Origin, Response


class HugeLivePlaylist:
    """100,000 entries, sliding by one on every load: each reload must be parsed anew."""

    def __init__(self, entries: int = 100_000) -> None:
        self.entries, self.first = entries, 0
        self.body = "".join(f"#EXTINF:2.000,\nseg{i}.ts\n" for i in range(entries))

    def __call__(self) -> Response:
        self.first += 1
        head = f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:{self.first}\n"
        return Response(body=(head + self.body).encode())


async def test_healthz_answers_within_100_ms_while_origins_misbehave(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.ts"
    os.mkfifo(fifo)
    origin = Origin()
    origin.routes["/huge.m3u8"] = HugeLivePlaylist()
    origin.routes["/fifo.m3u8"] = Response(
        body=f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nfile://{fifo}\n".encode()
    )
    await origin.start()
    config = tmp_path / "channels.yaml"
    channels = [{"id": "huge", "url": origin.url("/huge.m3u8")}]
    channels.append({"id": "fifo", "url": origin.url("/fifo.m3u8")})
    config.write_text(yaml.safe_dump({"channels": channels}))
    port = free_port()
    log = (tmp_path / "vqm.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor.app.cli", "run", "-c", str(config), "--port", str(port)],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    latencies: list[float] = []
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            deadline = time.monotonic() + 60
            while len(origin.hits("/huge.m3u8")) < 2:  # the big parse is under way
                assert process.poll() is None, (tmp_path / "vqm.log").read_text()
                assert time.monotonic() < deadline, "ingest never started"
                await asyncio.sleep(0.05)
            while len(latencies) < 100:
                started = time.perf_counter()
                response = await client.get("/healthz")
                latencies.append(time.perf_counter() - started)
                assert response.status_code == 200
                await asyncio.sleep(0.03)
        assert len(origin.hits("/huge.m3u8")) >= 3  # reloads went on while we measured
    finally:
        process.terminate()
        process.wait(15)
        log.close()
        await origin.stop()
    p99 = sorted(latencies)[98]
    assert p99 < 0.100, f"/healthz p99 {p99 * 1000:.0f} ms; all: {sorted(latencies)[-5:]}"
