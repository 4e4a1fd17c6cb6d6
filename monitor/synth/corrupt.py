"""Transmission errors in H.264, as a viewer sees them after the decoder has concealed them.

A clip of synthetic content is encoded once; its bitstream is then damaged the way a lossy
network damages it (random bytes overwritten and byte runs dropped inside non-key packets,
whole packets lost), and decoded with FFmpeg's own error concealment. The clean decode of the
same stream is the reference: a 32x32 region is *corrupted* when the mean absolute luma
difference between the damaged and the clean decode over it is above ``REGION_THRESHOLD``
codes, and a frame is corrupted when more than ``AREA_THRESHOLD`` of its regions are. So the
labels describe real concealment artifacts, not painted-on blocks, and compression noise of
the clean stream is never called corruption::

    clip = corrupted_clip(ClipSpec(seed=3, scenes=("crowd",), frames=48))
    clip.damaged.shape      # (48, 192, 320, 3) uint8 RGB, what the decoder showed
    clip.region_labels      # (48, 6, 10) bool
    clip.frame_labels       # (48,) bool

Splits (:func:`split_specs`) use disjoint seeds *and* disjoint scene mixes, so a model is never
measured on content it has seen: training clips are one scene kind each, validation clips cut
between two kinds, held-out clips cut between two other pairings (and include dark shots,
which training never sees).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import av
import numpy as np

from monitor.synth.scenes import SceneSpec
from monitor.synth.video import ChannelVideo, ScenePlan

logger = logging.getLogger(__name__)

REGION = 32
REGION_THRESHOLD = 6.0  # mean |clean - damaged| luma codes over a region
AREA_THRESHOLD = 0.07  # share of corrupted regions that makes a corrupted frame
FPS = 25
GOP = 12


@dataclass(frozen=True)
class ClipSpec:
    """One clip: content (seed, scenes, grain) and how its bitstream is damaged."""

    seed: int
    scenes: tuple[str, ...]
    frames: int = 48
    width: int = 320
    height: int = 192
    grain: float = 0.0  # sigma of added Gaussian noise in luma codes, before encoding
    damage: float = 0.5  # share of GOPs whose stream is damaged (0 = a clean clip)
    crf: int = 26
    slices: int = 1


@dataclass
class CorruptedClip:
    spec: ClipSpec
    clean: np.ndarray  # (N, H, W, 3) uint8, clean decode
    damaged: np.ndarray  # (N, H, W, 3) uint8, damaged decode (concealed)
    region_labels: np.ndarray  # (N, H/32, W/32) bool
    frame_labels: np.ndarray  # (N,) bool
    kinds: list[str] = field(default_factory=list)  # scene kind of each frame


def render(spec: ClipSpec) -> tuple[list[np.ndarray], list[str]]:
    """The clip's frames as I420 (with grain when asked) and the scene kind of each."""
    durations = spec.frames / FPS / len(spec.scenes)
    specs = [SceneSpec(kind=k, duration=durations) for k in spec.scenes]  # type: ignore[arg-type]
    plan = ScenePlan(spec.seed, FPS, specs)
    video = ChannelVideo(plan, spec.width, spec.height)
    rng = np.random.default_rng(spec.seed + 7919)
    frames: list[np.ndarray] = []
    kinds: list[str] = []
    for i in range(spec.frames):
        yuv = video.frame(i)
        if spec.grain > 0:
            luma = yuv[: spec.height].astype(np.float32)
            luma += rng.normal(0.0, spec.grain, luma.shape).astype(np.float32)
            yuv[: spec.height] = np.clip(luma, 16, 235).astype(np.uint8)
        frames.append(yuv)
        kinds.append(plan.scene_at_frame(i).kind)
    return frames, kinds


def encode(frames: Sequence[np.ndarray], spec: ClipSpec) -> list[av.Packet]:
    """H.264 packets of the frames (no B-frames: one packet per frame, GOP of ``GOP``)."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height = spec.width, spec.height
    codec.pix_fmt = "yuv420p"
    codec.time_base = Fraction(1, FPS)
    codec.framerate = Fraction(FPS, 1)
    codec.gop_size = GOP
    codec.options = {
        "preset": "veryfast",
        "crf": str(spec.crf),
        "x264-params": f"bframes=0:keyint={GOP}:min-keyint={GOP}:scenecut=0:slices={spec.slices}",
        "threads": "1",
    }
    packets: list[av.Packet] = []
    for i, yuv in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts = i
        packets.extend(codec.encode(frame))
    packets.extend(codec.encode(None))
    return packets


def damage(packets: Sequence[av.Packet], spec: ClipSpec) -> list[bytes | None]:
    """Packet payloads after the network: some overwritten, cut short or lost (None)."""
    rng = np.random.default_rng(spec.seed * 31 + 17)
    out: list[bytes | None] = [bytes(p) for p in packets]
    gops = (len(packets) + GOP - 1) // GOP
    for g in range(gops):
        if rng.random() >= spec.damage:
            continue
        first = g * GOP + 1  # never the key frame: its loss is a freeze, not blocks
        last = min(len(packets), (g + 1) * GOP)
        if first >= last:
            continue
        hits = int(rng.integers(1, 4))
        for i in rng.choice(np.arange(first, last), size=min(hits, last - first), replace=False):
            out[i] = _hurt(out[i], rng)  # type: ignore[arg-type]
    return out


def _hurt(data: bytes, rng: np.random.Generator) -> bytes | None:
    kind = rng.choice(["overwrite", "drop_run", "lose"], p=[0.5, 0.35, 0.15])
    if kind == "lose" or len(data) < 40:
        return None
    buf = bytearray(data)
    start = int(rng.integers(16, len(buf) - 8))
    run = int(rng.integers(1, max(2, min(256, len(buf) - start))))
    if kind == "overwrite":
        buf[start : start + run] = rng.integers(0, 256, run, dtype=np.uint8).tobytes()
    else:
        del buf[start : start + run]
    return bytes(buf)


def decode(payloads: Sequence[bytes | None], count: int) -> np.ndarray:
    """RGB frames as a player shows them: concealed by the decoder, lost ones held."""
    codec = av.CodecContext.create("h264", "r")
    codec.thread_count = 1
    shown: dict[int, np.ndarray] = {}
    for i, data in enumerate(payloads):
        if data is None:
            continue
        packet = av.Packet(data)
        packet.pts = i
        try:
            for frame in codec.decode(packet):
                shown[int(frame.pts) if frame.pts is not None else i] = frame.to_ndarray(
                    format="rgb24"
                )
        except av.error.FFmpegError:
            continue
    try:
        for frame in codec.decode(None):
            shown[int(frame.pts) if frame.pts is not None else len(shown)] = frame.to_ndarray(
                format="rgb24"
            )
    except av.error.FFmpegError:
        pass
    frames, last = [], None
    for i in range(count):
        last = shown.get(i, last)
        if last is None:
            last = next(iter(shown.values()))
        frames.append(last)
    return np.stack(frames)


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of RGB frames, float32 (labels only compare two decodes, so range is moot)."""
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def region_labels(clean: np.ndarray, damaged: np.ndarray) -> np.ndarray:
    """(N, H/32, W/32) bool: mean |clean - damaged| luma over the region > threshold."""
    diff = np.abs(luma(clean.astype(np.float32)) - luma(damaged.astype(np.float32)))
    n, h, w = diff.shape
    rh, rw = h // REGION, w // REGION
    diff = diff[:, : rh * REGION, : rw * REGION].reshape(n, rh, REGION, rw, REGION)
    return diff.mean(axis=(2, 4)) > REGION_THRESHOLD


def corrupted_clip(spec: ClipSpec) -> CorruptedClip:
    frames, kinds = render(spec)
    packets = encode(frames, spec)
    clean = decode([bytes(p) for p in packets], len(frames))
    damaged = decode(damage(packets, spec), len(frames)) if spec.damage > 0 else clean.copy()
    regions = region_labels(clean, damaged)
    labels = regions.mean(axis=(1, 2)) > AREA_THRESHOLD
    return CorruptedClip(spec, clean, damaged, regions, labels, kinds)


TRAIN_KINDS = ("studio", "slow_pan", "talking", "crowd", "high_motion", "fade")
VALIDATION_MIXES = (("studio", "crowd"), ("high_motion", "talking"), ("slow_pan", "fade"))
HELDOUT_MIXES = (
    ("crowd", "high_motion"),
    ("talking", "studio"),
    ("dark", "slow_pan"),
    ("high_motion", "crowd"),
)
_SEED_BASE = {"train": 10_000, "validation": 20_000, "heldout": 30_000}


def split_specs(split: str, clips: int, frames: int = 48) -> Iterator[ClipSpec]:
    """Clip recipes of a split; seeds and scene mixes never overlap between splits.

    train: one kind per clip (TRAIN_KINDS); validation: VALIDATION_MIXES; heldout:
    HELDOUT_MIXES (cuts the other splits never show, and dark shots). Grain, quality, slices
    and damage rate vary per clip; about one clip in six is left undamaged.
    """
    base = _SEED_BASE[split]
    for i in range(clips):
        seed = base + i
        rng = np.random.default_rng(seed)
        if split == "train":
            scenes: tuple[str, ...] = (TRAIN_KINDS[i % len(TRAIN_KINDS)],)
        else:
            mixes = VALIDATION_MIXES if split == "validation" else HELDOUT_MIXES
            scenes = mixes[i % len(mixes)]
        yield ClipSpec(
            seed=seed,
            scenes=scenes,
            frames=frames,
            grain=float(rng.choice([0.0, 0.0, 1.5, 3.0])),
            damage=0.0 if i % 6 == 5 else float(rng.uniform(0.4, 0.9)),
            crf=int(rng.integers(20, 32)),
            slices=int(rng.choice([1, 2, 4])),
        )
