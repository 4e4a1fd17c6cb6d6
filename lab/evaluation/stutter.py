"""`vqm eval stutter`: the stutter detector beside FFmpeg's ``mpdecimate`` on real footage.

Ten-second windows of real camera and film footage from the catalogue (``lab.data.real``) are
re-encoded (H.264, the source's frame rate) in five variants: **clean**; **repeats** (four to
six frames shown twice at irregular moments, as a stalling encoder or a dropped-and-concealed
frame shows them); **drops** (three to five frames missing, a gap in the timestamps); and two
that repeat by design and must not be flagged: **pulldown** (a 24 fps rhythm at 25: one
frame repeated every second) and **low rate** (a 10 fps picture at 25: a steady 2-3 pattern,
where the source is 25 fps). A window counts as found when the detector's alert rule fires in
it (three stutters within ten seconds, the shipped default).

The peer is FFmpeg's ``mpdecimate`` (the filter that finds frames that repeat the one before,
the usual way to find duplicates with the CLI), counted by the same rule: three duplicates
within ten seconds. ``freezedetect`` needs a still of a second or more, so it sees no
stutter at all and is not scored.

    vqm eval stutter             # --windows N per source, --out FILE for JSON
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import av
import numpy as np

from alerting.intervals import join_offline
from lab.data.real import catalogue
from monitor.inference.detectors.stutter import StutterConfig, StutterDetector
from monitor.inference.media import iter_decoded
from monitor.inference.segment import DecodeNeeds

SECONDS = 10.0
STUTTERS = ("repeats", "drops")
BY_DESIGN = ("pulldown", "low rate")
_DECISION = re.compile(r"\b(keep|drop) pts:(-?\d+)")


def windows(per_source: int, rng: np.random.Generator) -> list[tuple[str, np.ndarray, float]]:
    """(name, luma frames, fps) windows of real footage, a few per source."""
    out = []
    for item in catalogue("video"):
        fps = float(item.raw.get("fps") or 0)
        if item.duration < SECONDS + 1 or not 14 <= fps <= 31:
            continue
        starts = rng.uniform(0, item.duration - SECONDS - 0.5, size=per_source)
        for start in sorted(starts):
            frames = _frames(item.path, float(start), fps)
            if frames is not None:
                out.append((f"{item.source}:{item.path.name}@{start:.0f}s", frames, fps))
    return out


def _frames(path: Path, start: float, fps: float) -> np.ndarray | None:
    wanted = int(SECONDS * fps)
    collected = []
    try:
        for chunk in iter_decoded(str(path), DecodeNeeds(audio=False), chunk_seconds=2.0):
            keep = chunk.video_times >= start
            collected += list(chunk.luma[keep])
            if len(collected) >= wanted:
                break
    except Exception:  # noqa: BLE001 - an undecodable catalogue file is skipped
        return None
    if len(collected) < wanted:
        return None
    frames = np.stack(collected[:wanted])
    h, w = (frames.shape[1] // 2) * 2, (frames.shape[2] // 2) * 2
    return np.ascontiguousarray(frames[:, :h, :w])


def variant(kind: str, n: int, rng: np.random.Generator) -> tuple[list[int], list[int]]:
    """(frame order to show, frame indices whose timestamps are dropped)."""
    order = list(range(n))
    if kind == "repeats":
        for i in _irregular(rng, n, int(rng.integers(4, 7))):
            order[i] = order[i - 1]
    elif kind == "drops":
        return order, _irregular(rng, n, int(rng.integers(3, 6)))
    elif kind == "pulldown":
        order = [i - i // 25 for i in range(n)]
    elif kind == "low rate":
        order = [int(i // 2.5) * 3 % n for i in range(n)]
    return order, []


def _irregular(rng: np.random.Generator, n: int, count: int) -> list[int]:
    """``count`` positions in the middle of the window, no two at a steady spacing."""
    while True:
        picks = sorted(rng.choice(np.arange(10, n - 10), size=count, replace=False).tolist())
        steps = np.diff(picks)
        if len(set(steps.tolist())) == len(steps) and steps.min() > 2:
            return picks


def encode(
    frames: np.ndarray, order: list[int], dropped: list[int], fps: float, path: Path
) -> None:
    rate = round(fps)
    with av.open(str(path), "w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=rate, options={"preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        skipped = set(dropped)
        for i, source in enumerate(order):
            if i in skipped:
                continue
            gray = frames[source]
            frame = av.VideoFrame.from_ndarray(np.stack([gray] * 3, axis=-1), format="rgb24")
            frame.pts = i  # in frames: a dropped frame leaves a gap in the timestamps
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def vqm_alerts(path: Path) -> int:
    detector, config = StutterDetector(StutterConfig()), StutterConfig()
    results = []
    for chunk in iter_decoded(str(path), DecodeNeeds(audio=False), chunk_seconds=2.0):
        results.append((*chunk.video_span, detector.detect(chunk)))
    return len(join_offline("stutter", results, config.min_duration, config.recovery))


def mpdecimate_alerts(path: Path, window: float = 10.0, events: int = 3) -> int:
    """Alerts of the same rule over mpdecimate's duplicate decisions."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("ffmpeg is not installed (Debian package 'ffmpeg')")
    cmd = [ffmpeg, "-hide_banner", "-nostats", "-loglevel", "debug", "-i", str(path)]
    result = subprocess.run(
        [*cmd, "-vf", "mpdecimate", "-f", "null", "-"], capture_output=True, text=True
    )
    times = [
        int(m.group(2)) / 90_000 for m in _DECISION.finditer(result.stderr) if m.group(1) == "drop"
    ]
    times = [t for t in times if t > 0.2]  # the first frames are compared with nothing
    recent: list[float] = []
    for t in times:
        recent = [r for r in recent if r > t - window] + [t]
        if len(recent) >= events:
            return 1
    return 0


def evaluate(per_source: int = 2, seed: int = 7) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, frames, fps in windows(per_source, rng):
            for kind in ("clean", *STUTTERS, *BY_DESIGN):
                if kind == "low rate" and round(fps) != 25:
                    continue
                order, dropped = variant(kind, len(frames), rng)
                path = Path(tmp) / "clip.ts"
                encode(frames, order, dropped, fps, path)
                rows.append(
                    {"window": name, "kind": kind, "stutter": kind in STUTTERS,
                     "vqm": vqm_alerts(path) > 0, "mpdecimate": mpdecimate_alerts(path) > 0}
                )  # fmt: skip
    return {"rows": rows, "vqm": _scores(rows, "vqm"), "mpdecimate": _scores(rows, "mpdecimate")}


def _scores(rows: list[dict[str, Any]], who: str) -> dict[str, float]:
    tp = sum(r[who] and r["stutter"] for r in rows)
    fp = sum(r[who] and not r["stutter"] for r in rows)
    fn = sum(not r[who] and r["stutter"] for r in rows)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    by_kind = {
        kind: sum(r[who] for r in rows if r["kind"] == kind)
        / max(1, sum(r["kind"] == kind for r in rows))
        for kind in ("clean", *STUTTERS, *BY_DESIGN)
    }
    return {"precision": round(precision, 3), "recall": round(recall, 3), "f1": round(f1, 3),
            **{f"flagged_{k}": round(v, 3) for k, v in by_kind.items()}}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="vqm eval stutter")
    parser.add_argument("command", nargs="?", default="eval")
    parser.add_argument("--windows", type=int, default=2, help="windows per source clip")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    result = evaluate(args.windows)
    windows_seen = len({r["window"] for r in result["rows"]})
    print(f"{windows_seen} windows of real footage, {len(result['rows'])} variants")
    print(f"{'':12} {'precision':>9} {'recall':>7} {'F1':>6}   share flagged by variant")
    for who in ("vqm", "mpdecimate"):
        s = result[who]
        kinds = "  ".join(f"{k}={s[f'flagged_{k}']:.2f}" for k in ("clean", *STUTTERS, *BY_DESIGN))
        print(f"{who:12} {s['precision']:9.3f} {s['recall']:7.3f} {s['f1']:6.3f}   {kinds}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
