"""What loudness, stutter and captions add to a channel's CPU time, beside the default set.

Segments of a 720p25 (and 1080p25) synthetic channel with speech and music are decoded once,
with what a worker running all six decodes (the luma views its detectors read, taken at
decode, and caption side data). Then, as a worker does, all six detectors run over every
segment in turn, seven rounds, each detector's call timed (CPU time) and the quickest round
taken (a busy spell of a shared machine only ever adds time, so the least of the rounds is
the nearest to the cost itself, as Python's ``timeit`` reports it). Each round starts from
segments with nothing shared yet; inside a round the broadcast detectors reuse what the
default ones derived from the segment (stutter reads freeze's averaged pictures), as they do
in a worker. The baseline, timed in the same calls, is the default set, black + freeze +
silence. Timing both sets call by call in the same passes puts a busy spell of the machine on
both alike. Each detector alone is shown too.

The views (block means, subsampled pictures) are taken at decode, so part of each set's cost
is there, not in its calls: the decode is timed bare (nothing kept), with the default set's
views and with all six's, and the differences are counted to each set in the headline ratio,
what the three broadcast detectors add to the default set (the issue's target: at most 10 %).

    python benchmarks/broadcast_detectors.py --segments 10
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

from monitor.app.synthetic.channel import SyntheticChannel
from monitor.inference.detectors.base import Detector
from monitor.inference.detectors.registry import build, default_configs
from monitor.inference.media import decode_bytes
from monitor.inference.segment import DecodedSegment, DecodeNeeds
from monitor.inference.worker import union_needs

DEFAULT = ("black", "freeze", "silence")
BROADCAST = ("loudness", "stutter", "captions")


def unshared(segments: list[DecodedSegment]) -> list[DecodedSegment]:
    """The same frames and sound with nothing derived from them yet."""
    return [dataclasses.replace(s) for s in segments]


def cpu_seconds(keys: tuple[str, ...], segments: list[DecodedSegment]) -> dict[str, float]:
    """CPU time of each detector of ``keys`` in one pass over ``segments``, as a worker runs
    them (in order, segment by segment)."""
    # fresh detectors each pass: loudness and stutter keep state
    detectors = dict(zip(keys, built(keys), strict=True))
    spent = dict.fromkeys(keys, 0.0)
    for segment in unshared(segments):
        for key, detector in detectors.items():
            started = time.process_time()
            detector.detect(segment)
            spent[key] += time.process_time() - started
    return spent


def built(keys: tuple[str, ...]) -> list[Detector]:
    configs = default_configs()
    return [build(configs[k].model_copy(update={"enabled": True})) for k in keys]


def decode_seconds(payload: bytes, needs: DecodeNeeds) -> float:
    """CPU time of decoding ``payload`` with ``needs``."""
    started = time.process_time()
    decode_bytes(payload, needs)
    return time.process_time() - started


def view_costs(
    payloads: list[bytes], every: DecodeNeeds, rounds: int
) -> tuple[float, float, float]:
    """CPU seconds of decoding: bare (sound and pictures, nothing kept), with the views the
    default detectors read, and with ``every`` (what all six read). A worker takes the luma
    views at decode, so what they cost belongs to the detectors that read them. The views are
    a small difference between large decode times, so each segment is decoded the three ways
    in turn, ``rounds`` times, and its quickest decode of each way is the one counted: a busy
    spell then has to last through every round of one segment to move the figures."""
    needs = (
        DecodeNeeds(luma=False, luma_full=False, audio=True),
        union_needs(built(DEFAULT)),
        every,
    )
    totals = [0.0, 0.0, 0.0]
    for payload in payloads:
        spent: list[list[float]] = [[], [], []]
        for _ in range(rounds):
            for times, wanted in zip(spent, needs, strict=True):
                times.append(decode_seconds(payload, wanted))
        totals = [total + min(times) for total, times in zip(totals, spent, strict=True)]
    bare, default, all_six = totals
    return bare, default, all_six


def measure(width: int, height: int, count: int, rounds: int) -> None:
    channel = SyntheticChannel(seed=11, width=width, height=height)
    payloads = [channel.segment_bytes(i) for i in range(count)]
    needs = union_needs(built(DEFAULT + BROADCAST))  # what a worker running all six decodes
    segments = [decode_bytes(p, needs) for p in payloads]
    seconds = sum(s.end - s.start for s in segments)
    bare, with_default, with_every = (c / seconds for c in view_costs(payloads, needs, rounds))
    alone = {
        k: min(cpu_seconds((k,), segments)[k] for _ in range(rounds)) / seconds
        for k in DEFAULT + BROADCAST
    }
    base, extra = [], []
    for _ in range(rounds):
        spent = cpu_seconds(DEFAULT + BROADCAST, segments)
        base.append(sum(spent[k] for k in DEFAULT) / seconds)
        extra.append(sum(spent[k] for k in BROADCAST) / seconds)
    ratios = [b / a for a, b in zip(base, extra, strict=True)]
    default, added, ratio = min(base), min(extra), statistics.median(ratios)
    views, added_views = with_default - bare, with_every - with_default
    print(f"{width}x{height}, {seconds:.0f} s of media: CPU seconds per second of media")
    print(
        f"  decode {bare:.4f}, views taken at decode: default {views:.4f}, "
        f"broadcast beside them {added_views:.4f}"
    )
    print("  alone: " + "  ".join(f"{k} {v:.4f}" for k, v in alone.items()))
    print(f"  default set {default:.4f}; the broadcast detectors beside it add {added:.4f}")
    print(f"  broadcast detectors / default detectors' calls: {ratio:.3f}")
    total = (added + added_views) / (default + views)
    print(f"  broadcast / default, views at decode included: {total:.3f} (target <= 0.10)")
    whole = (added + added_views) / (with_default + default)
    print(f"  broadcast / (decode + views + default): {whole:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    for width, height in ((1280, 720), (1920, 1080)):
        measure(width, height, args.segments, args.rounds)


if __name__ == "__main__":
    main()
