"""What loudness, stutter and captions add to a channel's CPU time, beside the default set.

Segments of a 720p25 (and 1080p25) synthetic channel with speech and music are decoded once
(the worker decodes once for all detectors); then each detector runs over the same decoded
segments, three rounds, CPU time per second of media taken as the median. The baseline,
measured in the same run, is black + freeze + silence; the ratio is what the three broadcast
detectors add to it (the issue's target: at most 10 %), and to decode + default detectors.

    python benchmarks/broadcast_detectors.py --segments 10
"""

from __future__ import annotations

import argparse
import statistics
import time

from monitor.app.synthetic.channel import SyntheticChannel
from monitor.inference.detectors.registry import build, default_configs
from monitor.inference.media import decode_bytes
from monitor.inference.segment import DecodeNeeds

DEFAULT = ("black", "freeze", "silence")
BROADCAST = ("loudness", "stutter", "captions")


def cpu_per_media_second(detector_key: str, segments: list, seconds: float, rounds: int) -> float:
    config = default_configs()[detector_key].model_copy(update={"enabled": True})
    times = []
    for _ in range(rounds):
        detector = build(config)  # fresh per round: loudness and stutter keep state
        started = time.process_time()
        for segment in segments:
            detector.detect(segment)
        times.append((time.process_time() - started) / seconds)
    return statistics.median(times)


def measure(width: int, height: int, count: int, rounds: int) -> None:
    channel = SyntheticChannel(seed=11, width=width, height=height)
    payloads = [channel.segment_bytes(i) for i in range(count)]
    needs = DecodeNeeds(luma=True, audio=True, captions=True)
    started = time.process_time()
    segments = [decode_bytes(p, needs) for p in payloads]
    seconds = sum(s.end - s.start for s in segments)
    decode = (time.process_time() - started) / seconds
    cost = {k: cpu_per_media_second(k, segments, seconds, rounds) for k in DEFAULT + BROADCAST}
    base = sum(cost[k] for k in DEFAULT)
    added = sum(cost[k] for k in BROADCAST)
    print(f"{width}x{height}, {seconds:.0f} s of media: CPU seconds per second of media")
    print(f"  decode {decode:.4f}  " + "  ".join(f"{k} {v:.4f}" for k, v in cost.items()))
    print(f"  broadcast detectors / default detectors: {added / base:.3f} (target <= 0.10)")
    print(f"  broadcast detectors / (decode + default): {added / (decode + base):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for width, height in ((1280, 720), (1920, 1080)):
        measure(width, height, args.segments, args.rounds)


if __name__ == "__main__":
    main()
