"""CPU time of the block means a worker takes at decode, with OpenCV's thread pool and on the
calling thread alone (what the decoder sets, since a worker's parallelism is its channels).

The luma planes of a 720p25 (and 1080p25) synthetic channel are decoded once; then the 4x4
block means of every plane are taken with OpenCV on as many threads as the machine has and
on one, in alternating rounds (medians), CPU time counted over all threads.

    python benchmarks/opencv_threads.py --rounds 7
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import cv2
import numpy as np

from monitor.app.synthetic.channel import SyntheticChannel
from monitor.inference.media import decode_bytes
from monitor.inference.segment import DecodeNeeds, frame_means


def planes(width: int, height: int, count: int) -> np.ndarray:
    channel = SyntheticChannel(seed=11, width=width, height=height)
    needs = DecodeNeeds(luma=True, luma_full=True, audio=False)
    return np.concatenate(
        [decode_bytes(channel.segment_bytes(i), needs).luma for i in range(count)]
    )


def means_seconds(pictures: np.ndarray, threads: int) -> float:
    """CPU seconds per picture of its 4x4 block means with OpenCV on ``threads`` threads."""
    cv2.setNumThreads(threads)
    started = time.process_time()
    for picture in pictures:
        frame_means(picture, 4)
    return (time.process_time() - started) / len(pictures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    pool = os.cpu_count() or 1
    for width, height in ((1280, 720), (1920, 1080)):
        pictures = planes(width, height, args.segments)
        spent: dict[int, list[float]] = {pool: [], 1: []}
        for _ in range(args.rounds):
            for threads, times in spent.items():
                times.append(means_seconds(pictures, threads))
        pooled, alone = (statistics.median(spent[t]) for t in (pool, 1))
        print(
            f"{width}x{height}: block means {pooled * 1e3:.3f} ms of CPU a picture on {pool} "
            f"threads, {alone * 1e3:.3f} ms on one: {pooled / alone:.2f}x"
        )


if __name__ == "__main__":
    main()
