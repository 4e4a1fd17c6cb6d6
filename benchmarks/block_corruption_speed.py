"""CPU time per frame of the block corruption models against FFmpeg's ``blockdetect``.

    python benchmarks/block_corruption_speed.py [--width 640 --height 360 --frames 50]

Runs the shipped models (ONNX Runtime, CPU provider, 2 threads, batch 1): ``light``, its trunk
in int8, and ``light_fp32``, the float32 model it was quantized from (the baseline of the
speed-up printed last), on synthetic channel frames, and FFmpeg's ``blockdetect`` on the
same frames (the filter's cost is the run with the filter minus the same run without it).
Prints milliseconds per frame, the ratios to blockdetect, and the detector's cost per 2 s
segment at its stride.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import time

import numpy as np

from monitor.app.synthetic.scenes import ScenePlan
from monitor.app.synthetic.video import ChannelVideo
from monitor.inference.detectors.block_corruption import MODEL_NAMES
from monitor.inference.models import ModelCache


def frames(width: int, height: int, count: int) -> np.ndarray:
    video = ChannelVideo(ScenePlan(5, 25, ["crowd", "high_motion"]), width, height)
    return np.stack([video.frame_rgb(i * 7) for i in range(count)])


def model_ms(name: str, rgb: np.ndarray) -> float:
    model = ModelCache().model(name)
    x = rgb.transpose(0, 3, 1, 2).astype(np.float32)
    model.run_all(x[:1])
    started = time.perf_counter()
    for i in range(len(x)):
        model.run_all(x[i : i + 1])
    return (time.perf_counter() - started) / len(x) * 1000


def ffmpeg_ms(rgb: np.ndarray) -> float:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise SystemExit("ffmpeg CLI not found")
    n, h, w, _ = rgb.shape
    data = rgb.tobytes()

    def run(filters: str) -> float:
        cmd = [
            ffmpeg, "-hide_banner", "-loglevel", "error", "-threads", "1", "-f", "rawvideo",
            "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-i", "-", "-vf", filters, "-f", "null", "-",
        ]  # fmt: skip
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            subprocess.run(cmd, input=data, check=True)
            best = min(best, time.perf_counter() - started)
        return best

    with_filter = run("format=yuv420p,blockdetect")
    without = run("format=yuv420p")
    return max(with_filter - without, 0.0) / n * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--stride", type=int, default=5)
    args = parser.parse_args()
    rgb = frames(args.width, args.height, args.frames)
    peer = ffmpeg_ms(rgb)
    print(f"{args.width}x{args.height}, {args.frames} frames, CPU")
    print(f"{'what':42} {'ms/frame':>9} {'x blockdetect':>14}")
    print(f"{'ffmpeg blockdetect (1 thread)':42} {peer:9.2f} {1.0:14.1f}")
    per_segment, per_frame = {}, {}
    for trunk, name in MODEL_NAMES.items():
        ms = per_frame[trunk] = model_ms(name, rgb)
        per_segment[trunk] = ms * len(range(0, 50, args.stride)) / 1000
        print(f"{name + ' (ORT, 2 threads)':42} {ms:9.2f} {ms / max(peer, 1e-6):14.1f}")
    for trunk, seconds in per_segment.items():
        print(f"{trunk}: {seconds:.3f} s of model time per 2 s segment at stride {args.stride}")
    if {"light", "light_fp32"} <= per_frame.keys():
        ratio = per_frame["light_fp32"] / per_frame["light"]
        print(f"int8 trunk speed-up over float32, same frames, same run: {ratio:.2f}x")


if __name__ == "__main__":
    main()
