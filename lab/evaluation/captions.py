"""`vqm eval captions`: caption loss found by vqm beside what FFmpeg's probe says, same files.

Twenty-second clips of real footage (``lab.data.real``) are encoded with A/53 captions
(``lab.synth.captions``) in three variants: captioned throughout; captions that stop at a
random moment (4-10 s in) and do not come back; never captioned. vqm (``vqm scan --enable
captions``, the shipped defaults) is right when it reports a ``missing`` stretch exactly in
the last two, starting within a second of where captions stopped. The peer is FFmpeg's own
caption extraction (the ``subcc`` output of the ``movie`` source, read with ``ffprobe``: one
EIA-608 packet per captioned frame), with the same rule: a stretch of ten seconds or more
without a caption packet is missing captions.

    vqm eval captions            # --clips N, --out FILE for JSON
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from lab.data.real import catalogue
from lab.synth.captions import captioned_ts
from monitor.app.config import VqmConfig
from monitor.app.progress import track
from monitor.app.scan import scan
from monitor.inference.media import iter_decoded
from monitor.inference.segment import DecodeNeeds

FPS = 25
SECONDS = 20


def pictures(limit: int) -> list[tuple[str, np.ndarray]]:
    out = []
    for item in catalogue("video"):
        if item.duration < SECONDS or len(out) >= limit:
            continue
        frames = []
        try:
            for chunk in iter_decoded(str(item.path), DecodeNeeds(audio=False), chunk_seconds=5):
                frames += list(chunk.luma[:, ::2, ::2])
                if len(frames) >= SECONDS * FPS:
                    break
        except Exception:  # noqa: BLE001 - an undecodable catalogue file is skipped
            continue
        if len(frames) >= SECONDS * FPS:
            stack = np.stack(frames[: SECONDS * FPS])
            h, w = (stack.shape[1] // 2) * 2, (stack.shape[2] // 2) * 2
            out.append((f"{item.source}:{item.path.name}", np.ascontiguousarray(stack[:, :h, :w])))
    return out


def ffmpeg_missing(path: Path, duration: float, min_gap: float = 10.0) -> list[float]:
    """Starts of the stretches without caption packets (FFmpeg's ``subcc``) of ``min_gap``
    seconds or more, the end of the clip included."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        raise RuntimeError("ffprobe is not installed (Debian package 'ffmpeg')")
    source = f"movie={path}[out0+subcc]"
    cmd = [ffprobe, "-v", "error", "-f", "lavfi", source, "-show_entries"]
    out = subprocess.run([*cmd, "packet=pts_time,stream_index", "-of", "csv"],
                         capture_output=True, text=True)  # fmt: skip
    times = sorted(
        float(parts[2]) for line in out.stdout.splitlines()
        if len(parts := line.split(",")) >= 3 and parts[1] == "1"
    )  # fmt: skip
    edges = [-1.0 / FPS, *times, duration]
    return [
        round(a + 1.0 / FPS, 2) for a, b in zip(edges[:-1], edges[1:], strict=True)
        if b - a - 1.0 / FPS >= min_gap - 1e-6
    ]  # fmt: skip


def evaluate(clips: int = 8, seed: int = 3) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    config = VqmConfig().with_enabled(["captions"])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, frames in track(pictures(clips), "evaluating clips", total=clips):
            stop = float(rng.uniform(4, 10))
            for variant, until in (("captioned", SECONDS + 1.0), ("stops", stop), ("never", 0.0)):
                path = Path(tmp) / "clip.ts"
                captioned_ts(path, frames, FPS, [i / FPS < until for i in range(len(frames))])
                found = [d for d in scan(str(path), config) if d.detector == "captions"]
                lost = None if variant == "captioned" else until
                rows.append({
                    "clip": name, "variant": variant, "lost_at": lost,
                    "vqm": [round(d.start, 2) for d in found],
                    "ffmpeg": ffmpeg_missing(path, SECONDS),
                })  # fmt: skip
    return {"rows": rows, **_scores(rows)}


def _scores(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def right(who: str) -> Any:
        def check(r: dict[str, Any]) -> bool:
            if r["lost_at"] is None:
                return not r[who]
            return len(r[who]) == 1 and abs(r[who][0] - r["lost_at"]) <= 1.0

        return check

    by = {v: [r for r in rows if r["variant"] == v] for v in ("captioned", "stops", "never")}
    return {
        who: {v: round(sum(map(right(who), rs)) / max(1, len(rs)), 3) for v, rs in by.items()}
        for who in ("vqm", "ffmpeg")
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="vqm eval captions")
    parser.add_argument("command", nargs="?", default="eval")
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    result = evaluate(args.clips)
    print(f"{len(result['rows']) // 3} real clips, 3 variants each; share right per variant")
    print(f"{'':10} {'captioned':>10} {'stops':>8} {'never':>8}")
    for who in ("vqm", "ffmpeg"):
        s = result[who]
        print(f"{who:10} {s['captioned']:10.3f} {s['stops']:8.3f} {s['never']:8.3f}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
