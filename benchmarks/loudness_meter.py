"""The loudness meter against libebur128: CPU per second of sound, and how far they read apart.

The same programme (stereo 48 kHz noise with a slow swell, a hum and a whistle, never
silent) is fed to both in 2 s segments as a worker feeds them, both keeping a 60 s sliding
window and reading the integrated loudness after every 100 ms, as the loudness detector
does. libebur128 (through pyebur128) is the baseline; the true peak is left out of both
(it is its own meter). Each is timed (CPU time) over the whole programme, five rounds
alternating, and the median taken; the largest difference between their readings is
printed beside the ratio.

    python benchmarks/loudness_meter.py --seconds 120
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from lab.evaluation.loudness import libebur128_sliding, programme
from monitor.inference.detectors.loudness_meter import LoudnessMeter

RATE, SEGMENT, WINDOW = 48_000, 2.0, 60.0


def segments(audio: np.ndarray) -> list[np.ndarray]:
    step = int(SEGMENT * RATE)
    return [audio[:, i : i + step] for i in range(0, audio.shape[-1], step)]


def ours(parts: list[np.ndarray]) -> np.ndarray:
    meter = LoudnessMeter(window=WINDOW, channels=2, rate=RATE)
    return np.concatenate([meter.add(part) for part in parts])


def libebur128(parts: list[np.ndarray]) -> np.ndarray:
    return libebur128_sliding(parts, WINDOW)


def timed(meter, parts: list[np.ndarray]) -> tuple[float, np.ndarray]:
    started = time.process_time()
    readings = meter(parts)
    return time.process_time() - started, readings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    parts = segments(programme(args.seconds, seed=1))
    spent: dict[str, list[float]] = {"vqm": [], "libebur128": []}
    readings = {}
    for _ in range(args.rounds):
        for name, meter in (("vqm", ours), ("libebur128", libebur128)):
            seconds, readings[name] = timed(meter, parts)
            spent[name].append(seconds)
    per_second = {k: statistics.median(v) / args.seconds * 1e3 for k, v in spent.items()}
    finite = np.isfinite(readings["libebur128"])
    assert (np.isfinite(readings["vqm"]) == finite).all(), "the two disagree on what is gated"
    deviation = np.abs(readings["vqm"][finite] - readings["libebur128"][finite]).max()
    print(f"{args.seconds:.0f} s of stereo 48 kHz, {len(parts)} segments, {finite.sum()} readings")
    for name, ms in per_second.items():
        print(f"  {name:<11} {ms:.3f} ms CPU per second of sound")
    print(f"vqm / libebur128: {per_second['vqm'] / per_second['libebur128']:.2f}")
    print(f"largest difference in integrated loudness: {deviation:.1e} LU")


if __name__ == "__main__":
    main()
