"""`vqm scan` with both learned detectors on one recording: damaged pictures and mains hum,
each reported where it was put and nowhere else."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from monitor.config import VqmConfig
from monitor.engine import default_model_dir
from monitor.scan import scan
from monitor.synth.audio_defects import db_to_amp, hum
from monitor.synth.channel import write_clip
from monitor.synth.corrupt import corrupt_stream

pytestmark = pytest.mark.skipif(
    not all(
        (default_model_dir() / f"{name}.onnx").exists()
        for name in ("block_corruption_light", "audio_artifact")
    ),
    reason="learned models not exported",
)

CORRUPT = (2.2, 3.0)  # damaged packets; the concealment lasts until the IDR at 4 s
HUM = (5.0, 7.0)


def add_hum(src: Path, dst: Path, start: float, end: float, level_db: float = -26.0) -> None:
    """Copy ``src`` to ``dst`` with 50 Hz mains hum mixed into its sound over [start, end):
    video packets are copied untouched, the sound is decoded, mixed and encoded again."""
    with av.open(str(src)) as inp:
        rate = inp.streams.audio[0].rate
        layout = inp.streams.audio[0].layout.name
        pcm = np.concatenate(
            [f.to_ndarray().reshape(-1, f.samples) for f in inp.decode(audio=0)], axis=1
        )
    rng = np.random.default_rng(50)
    n0, n1 = int(start * rate), int(end * rate)
    mains = hum(rng, n1 - n0, rate, "pure") * db_to_amp(level_db)
    pcm = pcm.astype(np.float32)
    pcm[:, n0:n1] += mains.astype(np.float32)
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
            frame.sample_rate, frame.pts, frame.time_base = rate, i, Fraction(1, rate)
            out.mux(sound.encode(frame))
        out.mux(sound.encode(None))


def test_scan_reports_damaged_pictures_and_hum_at_the_times_they_were_put_there(
    tmp_path: Path,
) -> None:
    clean, damaged, both = tmp_path / "clean.ts", tmp_path / "damaged.ts", tmp_path / "both.ts"
    write_clip(clean, 8.0, seed=88_001, scenes=["high_motion"])
    assert corrupt_stream(str(clean), str(damaged), *CORRUPT, seed=1, every=2) > 0
    add_hum(damaged, both, *HUM)
    config = VqmConfig.model_validate(
        {
            "detectors": [
                {"type": "block_corruption", "enabled": True},
                {"type": "audio_artifact", "enabled": True},
            ]
        }
    )
    found = list(scan(str(both), config))
    blocks = [d for d in found if d.detector == "block_corruption"]
    hums = [d for d in found if d.detector == "audio_artifact" and d.label == "hum"]
    assert blocks and hums, found
    assert all(d.start >= 2.0 and d.end <= 4.3 for d in blocks), blocks
    assert any(d.start < 3.0 and d.end > 3.5 for d in blocks), blocks
    assert all(d.start >= HUM[0] - 0.6 and d.end <= HUM[1] + 0.6 for d in hums), hums
    assert any(d.start < 5.5 and d.end > 6.5 for d in hums), hums
    others = [d for d in found if d.detector == "audio_artifact" and d.label != "hum"]
    assert not others, others
