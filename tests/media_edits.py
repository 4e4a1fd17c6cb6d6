"""Damage put into recorded MPEG-TS for tests: mains hum mixed into the sound.

(Picture damage is :func:`lab.synth.corrupt.corrupt_stream`.)
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from lab.synth.audio_defects import db_to_amp, hum


def add_hum(
    src: Path, dst: Path, start: float, end: float, level_db: float = -26.0, seed: int = 50
) -> None:
    """Copy ``src`` to ``dst`` with 50 or 60 Hz mains hum mixed into its sound over the media
    times [start, end): video packets are copied untouched, the sound is decoded, mixed and
    encoded again on its original timeline."""
    with av.open(str(src)) as inp:
        stream = inp.streams.audio[0]
        rate, layout = stream.rate, stream.layout.name
        frames = list(inp.decode(audio=0))
        first = float(frames[0].pts * frames[0].time_base)
        pcm = np.concatenate([f.to_ndarray().reshape(-1, f.samples) for f in frames], axis=1)
    pcm = pcm.astype(np.float32)
    n0 = max(0, int((start - first) * rate))
    n1 = min(pcm.shape[1], int((end - first) * rate))
    if n1 > n0:
        mains = hum(np.random.default_rng(seed), n1 - n0, rate, "pure") * db_to_amp(level_db)
        pcm[:, n0:n1] += mains.astype(np.float32)
    offset = int(round(first * rate))
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mpegts") as out:
        video = out.add_stream_from_template(inp.streams.video[0])
        sound = out.add_stream("aac", rate=rate, layout=layout)
        for packet in inp.demux(video=0):
            if packet.size:
                packet.stream = video
                out.mux(packet)
        for i in range(0, pcm.shape[1], 1024):
            chunk = np.ascontiguousarray(pcm[:, i : i + 1024])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
            frame.sample_rate, frame.time_base = rate, Fraction(1, rate)
            frame.pts = offset + i
            out.mux(sound.encode(frame))
        out.mux(sound.encode(None))
