"""Channels per core: `vqm scan` with the default detectors against decoding alone and FFmpeg.

Each clip (20 s of the synthetic channel at 720p25 and 1080p30, libx264 at its default rate
factor, speech and music, an IDR every 2 s; the bit rate is printed) is processed pinned to
one core, in turns:

- **decode**: PyAV decoding every video and audio frame and nothing else, the least any
  monitor does;
- **vqm**: `vqm scan` with the default detectors (black, freeze, silence, loudness), start-up
  excluded (the scan's own time for the clip, from its process CPU time minus an empty run);
- **FFmpeg**: `ffmpeg` with `blackdetect`, `freezedetect` and `silencedetect`.

Each runs ``--rounds`` times alternating, medians kept; the table prints times real time per
core, vqm against decoding (the capacity issue's target: at least 0.8) and against FFmpeg
(at least 1.0), channels of that format one core holds in real time, and peak RSS.

    python benchmarks/capacity.py --rounds 3
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from monitor.app.synthetic.channel import write_clip  # noqa: E402

DURATION = 20.0
FORMATS = {"720p25": (1280, 720, 25), "1080p30": (1920, 1080, 30)}  # width, height, fps
CORE = "0"

DECODE_ONLY = """
import sys, av
with av.open(sys.argv[1]) as c:
    for frame in c.decode(*c.streams):
        pass
"""
EMPTY = "import monitor.app.cli, monitor.app.scan, monitor.inference.detectors.registry"


def pinned(cmd: list[str]) -> float:
    """CPU seconds of ``cmd`` run on one core (its peak RSS is :func:`peak_rss`'s: the
    children's maximum here would be that of any child so far)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(["taskset", "-c", CORE, *cmd], check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(kind: str, clip: Path) -> list[str]:
    python, vqm = sys.executable, str(Path(sys.executable).with_name("vqm"))
    return {
        "decode": [python, "-c", DECODE_ONLY, str(clip)],
        "vqm": [vqm, "scan", str(clip), "--format", "jsonl"],
        "empty": [python, "-c", EMPTY],
        "ffmpeg": [
            "ffmpeg", "-hide_banner", "-nostats", "-threads", "1", "-i", str(clip),
            "-vf", "blackdetect=d=2,freezedetect=d=2", "-af", "silencedetect=d=2",
            "-f", "null", "-",
        ],
    }[kind]  # fmt: skip


def peak_rss(cmd: list[str]) -> float:
    """Peak RSS (MB) of one run, read by GNU time in its own process."""
    out = subprocess.run(
        ["/usr/bin/time", "-f", "%M", "taskset", "-c", CORE, *cmd],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(out.stderr.strip().splitlines()[-1]) / 1024


def row(name: str, clip: Path, rounds: int) -> str:
    times: dict[str, list[float]] = {k: [] for k in ("decode", "vqm", "empty", "ffmpeg")}
    for _ in range(rounds):
        for kind in times:  # in turns, so a busy spell falls on all alike
            times[kind].append(pinned(measure(kind, clip)))
    cpu = {k: statistics.median(v) for k, v in times.items()}
    vqm = cpu["vqm"] - cpu["empty"]
    speed = {k: DURATION / v for k, v in (("decode", cpu["decode"]), ("vqm", vqm),
                                          ("ffmpeg", cpu["ffmpeg"]))}  # fmt: skip
    rss = {k: peak_rss(measure(k, clip)) for k in ("decode", "vqm", "ffmpeg")}
    return (
        f"| {name} | {speed['decode']:.1f}x | {speed['vqm']:.1f}x | {speed['ffmpeg']:.1f}x "
        f"| {speed['vqm'] / speed['decode']:.2f} | {speed['vqm'] / speed['ffmpeg']:.2f} "
        f"| {int(speed['vqm'])} | {rss['decode']:.0f} / {rss['vqm']:.0f} / {rss['ffmpeg']:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--formats", nargs="*", default=list(FORMATS))
    args = parser.parse_args()
    if shutil.which("taskset") is None or shutil.which("ffmpeg") is None:
        sys.exit("needs taskset and ffmpeg (make system-deps)")
    tmp = Path(tempfile.mkdtemp(prefix="vqm-capacity-"))
    print(f"one core ({CORE}) of {os.cpu_count()}; {DURATION:.0f} s clips; times real time")
    print("| clip | decode | vqm scan, defaults | FFmpeg black+freeze+silence "
          "| vqm / decode (>= 0.8) | vqm / FFmpeg (>= 1.0) | channels per core "
          "| peak RSS MB (decode / vqm / FFmpeg) |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.formats:
        width, height, fps = FORMATS[name]
        clip = tmp / f"{name}.ts"
        write_clip(clip, DURATION, seed=18, width=width, height=height, fps=fps)
        rate = clip.stat().st_size * 8 / DURATION / 1e6
        print(row(f"{name}, {rate:.1f} Mb/s", clip, args.rounds), flush=True)
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
