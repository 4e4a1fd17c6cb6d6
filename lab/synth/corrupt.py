"""Transmission errors in H.264, as a viewer sees them after the decoder has concealed them.

A clip of synthetic content is encoded once; its bitstream is then damaged the way a lossy
network damages it (random bytes overwritten and byte runs dropped inside non-key packets,
whole packets lost), and decoded with FFmpeg's own error concealment. The clean decode of the
same stream is the reference, compared the way a viewer sees it (:func:`region_labels`): at
the scale of 8x8 blocks, so a fine texture the decoder drew a few pixels off (water, a crowd)
is not called corrupted, and against the clean pictures a few frames back too, so a lost frame
that merely repeats the previous picture is not called corrupted either. A frame is corrupted
when more than ``AREA_THRESHOLD`` of its regions are. So the labels describe real, visible
concealment artifacts, not painted-on blocks, and compression noise of the clean stream is
never called corruption::

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
from pathlib import Path

import av
import cv2
import numpy as np

from monitor.app.synthetic.scenes import SceneSpec
from monitor.app.synthetic.video import ChannelVideo, ScenePlan

logger = logging.getLogger(__name__)

REGION = 32
BLOCK = 8  # labels compare 8x8 block means: the scale at which concealment errors show
REGION_THRESHOLD = 6.0  # mean |clean - damaged| block-mean luma codes over a region
BLOCK_THRESHOLD = 12.0  # an 8x8 block this far off the clean one is plainly wrong...
BLOCKS_VISIBLE = 2  # ...and two such blocks in a region make a fault a viewer sees
HOLD_FRAMES = 3  # a damaged picture equal to one of the 3 clean pictures before it is a repeat
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
    overlay: str = "none"  # hard negative drawn over the scene: one of OVERLAYS
    family: int = 0  # overlay variant: 0 for training content, 1 only in the held-out split
    source: str = ""  # a catalogued real clip (lab.data.footage) instead of synthetic scenes
    start: float = 0.0  # seconds into ``source``
    scale: float = 1.0  # ``source`` pictures scaled by this before the crop


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
    if spec.source:
        return _render_real(spec)
    durations = spec.frames / FPS / len(spec.scenes)
    specs = [SceneSpec(kind=k, duration=durations) for k in spec.scenes]  # type: ignore[arg-type]
    plan = ScenePlan(spec.seed, FPS, specs)
    video = ChannelVideo(plan, spec.width, spec.height)
    rng = np.random.default_rng(spec.seed + 7919)
    frames: list[np.ndarray] = []
    kinds: list[str] = []
    painter = _OverlayPainter(spec, video.width, video.height)
    for i in range(spec.frames):
        yuv = painter.draw(video.frame(i), i)
        if spec.grain > 0:
            luma = yuv[: spec.height].astype(np.float32)
            luma += rng.normal(0.0, spec.grain, luma.shape).astype(np.float32)
            yuv[: spec.height] = np.clip(luma, 16, 235).astype(np.uint8)
        frames.append(yuv)
        kinds.append(plan.scene_at_frame(i).kind)
    return frames, kinds


def _render_real(spec: ClipSpec) -> tuple[list[np.ndarray], list[str]]:
    """Real footage, with the same overlays and grain as synthetic scenes get."""
    from lab.data import footage

    pictures = footage.frames(
        Path(spec.source), spec.start, spec.frames, spec.scale, (spec.height, spec.width), spec.seed
    )
    painter = _OverlayPainter(spec, spec.width, spec.height)
    rng = np.random.default_rng(spec.seed + 7919)
    for i, yuv in enumerate(pictures):
        pictures[i] = yuv = painter.draw(yuv, i)
        if spec.grain > 0:
            luma = yuv[: spec.height].astype(np.float32)
            luma += rng.normal(0.0, spec.grain, luma.shape).astype(np.float32)
            yuv[: spec.height] = np.clip(luma, 16, 235).astype(np.uint8)
    return pictures, ["real"] * len(pictures)


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
    kind = rng.choice(["overwrite", "drop_run", "lose", "lose_slice"], p=[0.4, 0.3, 0.1, 0.2])
    if kind == "lose" or len(data) < 40:
        return None
    if kind == "lose_slice":
        return lose_slice(data, rng)
    buf = bytearray(data)
    start = int(rng.integers(16, len(buf) - 8))
    run = int(rng.integers(1, max(2, min(256, len(buf) - start))))
    if kind == "overwrite":
        buf[start : start + run] = rng.integers(0, 256, run, dtype=np.uint8).tobytes()
    else:
        del buf[start : start + run]
    return bytes(buf)


_NAL_SLICE = 1


def slice_units(data: bytes) -> list[tuple[int, int]]:
    """``(start, end)`` byte spans, start code included, of the coded slices of a packet."""
    starts = []
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        starts.append(i - 1 if i > 0 and data[i - 1] == 0 else i)
        i = data.find(b"\x00\x00\x01", i + 3)
    spans = []
    for k, s in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(data)
        header = data.find(b"\x00\x00\x01", s) + 3
        if header < end and data[header] & 0x1F == _NAL_SLICE:
            spans.append((s, end))
    return spans


def lose_slice(data: bytes, rng: np.random.Generator) -> bytes | None:
    """One slice of the picture never arrives (a packet is lost whole if it has one slice)."""
    spans = slice_units(data)
    if len(spans) < 2:
        return None
    s, e = spans[int(rng.integers(len(spans)))]
    return data[:s] + data[e:]


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


def block_means(rgb: np.ndarray) -> np.ndarray:
    """(N, H/8, W/8) mean luma of each 8x8 block over the whole 32x32 regions of the picture."""
    y = luma(rgb.astype(np.float32))
    n, h, w = y.shape
    h, w = h // REGION * REGION, w // REGION * REGION
    return y[:, :h, :w].reshape(n, h // BLOCK, BLOCK, w // BLOCK, BLOCK).mean(axis=(2, 4))


def region_labels(clean: np.ndarray, damaged: np.ndarray) -> np.ndarray:
    """(N, H/32, W/32) bool: regions whose damage a viewer sees.

    Pictures are compared as 8x8 block means, so fine texture the decoder drew a few pixels
    off (ripples, grain) does not count. A region differs from a clean picture when its 16
    blocks are off by more than ``REGION_THRESHOLD`` luma codes on average, or when
    ``BLOCKS_VISIBLE`` of them are off by more than ``BLOCK_THRESHOLD`` (a wrong macroblock in
    an otherwise right region). It is corrupted when it differs from the clean decode of its
    own frame and from each of the ``HOLD_FRAMES`` clean pictures before it: a lost frame
    that shows the previous picture again is a stutter, not blocks.
    """
    seen, ref = block_means(damaged), block_means(clean)
    per = REGION // BLOCK
    corrupted = np.ones((len(seen), seen.shape[1] // per, seen.shape[2] // per), bool)
    for k in range(HOLD_FRAMES + 1):
        earlier = ref if k == 0 else np.concatenate([np.repeat(ref[:1], k, axis=0), ref[:-k]])
        error = np.abs(seen - earlier)
        n, bh, bw = error.shape
        error = error.reshape(n, bh // per, per, bw // per, per)
        wrong_blocks = (error > BLOCK_THRESHOLD).sum(axis=(2, 4))
        corrupted &= (error.mean(axis=(2, 4)) > REGION_THRESHOLD) | (wrong_blocks >= BLOCKS_VISIBLE)
    return corrupted


OVERLAYS = ("none", "noise", "text", "confetti", "water")


class _OverlayPainter:
    """Hard negatives drawn over the scene before encoding: what signal processing takes for
    blocks. ``noise`` is strong per-frame noise, ``text`` dense sharp captions and a ticker,
    ``confetti`` hundreds of small fast pieces, ``water`` a rippling, sparkling surface.
    ``family`` 1 draws other fonts, shapes (round confetti) and ripple scales than family 0,
    whose clips vary shape (quads, triangles, streamers) and ripple scale and speed.
    """

    def __init__(self, spec: ClipSpec, width: int, height: int) -> None:
        self.kind, self.family, self.w, self.h = spec.overlay, spec.family, width, height
        if spec.overlay not in OVERLAYS:
            raise ValueError(f"unknown overlay {spec.overlay!r}; known: {', '.join(OVERLAYS)}")
        rng = np.random.default_rng([spec.seed, 0x0BE7])
        self.seed = int(rng.integers(0, 2**31))
        self.strength = float(rng.uniform(0.0, 1.0))
        n = int(rng.integers(80, 300))
        self.pieces = np.column_stack(
            [
                rng.uniform(0, width, n),
                rng.uniform(0, 2 * height, n),
                rng.uniform(2.0, 8.0, n) * height / 192,
                rng.uniform(1.5, 4.0, n) * height / 192,
                rng.uniform(0, np.pi, n),
            ]
        )
        self.colors = rng.integers(0, 256, (n, 3))
        self.water_top = int(height * rng.uniform(0.3, 0.6))
        fonts = (
            (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX)
            if spec.family == 0
            else (cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_PLAIN)
        )
        self.font = fonts[int(rng.integers(len(fonts)))]
        letters = list("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .:%+-")
        self.lines = [
            "".join(rng.choice(letters, int(rng.integers(14, 30))))
            for _ in range(int(rng.integers(3, 7)))
        ]
        self.ticker = "".join(rng.choice(letters, 80))
        self.text_scale = float(rng.uniform(0.3, 0.55)) * height / 192
        # Family 0 varies its shapes and scales per clip, so a model learns "many small moving
        # things" rather than one style; drawn last, so family 1 clips keep their random stream.
        self.shape, self.ripple = "quad", (3.0, 9.0, 3.1, 2.3)
        if spec.family == 0:
            self.shape = str(rng.choice(["quad", "triangle", "streamer"]))
            self.ripple = (
                float(rng.uniform(2.6, 4.5)),
                float(rng.uniform(6.5, 12.0)),
                float(rng.uniform(2.0, 4.5)),
                float(rng.uniform(1.5, 3.5)),
            )

    def draw(self, yuv: np.ndarray, index: int) -> np.ndarray:
        if self.kind == "none":
            return yuv
        if self.kind == "noise":
            amp = int(6 + 14 * self.strength)
            noise = np.random.default_rng([self.seed, index]).integers(
                -amp, amp + 1, (self.h, self.w), dtype=np.int16
            )
            yuv[: self.h] = np.clip(yuv[: self.h] + noise, 16, 235).astype(np.uint8)
            return yuv
        rgb = cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420)
        {"text": self._text, "confetti": self._confetti, "water": self._water}[self.kind](
            rgb, index
        )
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)

    def _text(self, rgb: np.ndarray, index: int) -> None:
        s = self.text_scale
        step = int(24 * s + 6)
        y0 = int(self.h * 0.15) + step
        cv2.rectangle(
            rgb, (8, y0 - step), (int(self.w * 0.8), y0 + step * len(self.lines)), (10, 20, 60), -1
        )
        for k, line in enumerate(self.lines):
            cv2.putText(
                rgb, line, (12, y0 + k * step), self.font, s, (250, 250, 250), 1, cv2.LINE_8
            )
        bar = int(self.h * 0.9)
        cv2.rectangle(rgb, (0, bar - int(12 * s + 6)), (self.w, self.h), (200, 20, 20), -1)
        shift = (index * 4) % (self.w * 2)
        cv2.putText(rgb, self.ticker, (self.w - shift, bar + 4), self.font, s, (255, 255, 0), 1)

    def _confetti(self, rgb: np.ndarray, index: int) -> None:
        t = index / FPS
        for (x, y, v, r, a), color in zip(self.pieces, self.colors, strict=True):
            yy = (y + v * index) % (2 * self.h) - self.h / 2
            xx = x + 6 * np.sin(3 * t + a)
            c = tuple(int(k) for k in color)
            if self.family == 1:
                cv2.circle(rgb, (int(xx), int(yy)), max(1, int(r * 0.7)), c, -1)
                continue
            dx, dy = r * np.cos(a + 4 * t), r * np.sin(a + 4 * t)
            if self.shape == "quad":
                pts = [
                    [xx - dx, yy - dy],
                    [xx + dy, yy - dx],
                    [xx + dx, yy + dy],
                    [xx - dy, yy + dx],
                ]
            elif self.shape == "triangle":
                pts = [[xx - dx, yy - dy], [xx + dy, yy - dx], [xx + dx * 0.3, yy + dy * 1.2]]
            else:  # a thin twisting streamer
                pts = [
                    [xx - 2 * dx, yy - 2 * dy],
                    [xx + 2 * dx, yy + 2 * dy],
                    [xx + 2 * dx + 1, yy + 2 * dy + 1],
                ]
            cv2.fillConvexPoly(rgb, np.array(pts).astype(np.int32), c)

    def _water(self, rgb: np.ndarray, index: int) -> None:
        top = self.water_top
        yy, xx = np.mgrid[0 : self.h - top, 0 : self.w].astype(np.float32)
        t = index / FPS
        a, b, u, v = self.ripple if self.family == 0 else (2.0, 5.5, 3.1, 2.3)
        a, b = a * self.h / 192, b * self.h / 192
        phase = np.sin(xx / a + u * t) * np.cos(yy / b - v * t)
        phase += 0.5 * np.sin((xx + yy) / (a * 0.7) + 4 * t)
        base = np.array([20, 70, 110], np.float32) + 25 * np.sin(yy[..., None] / 40.0)
        water = base + 30 * phase[..., None] + (phase > 1.15)[..., None] * 120.0
        rgb[top:] = np.clip(water, 0, 255).astype(np.uint8)


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
    HELDOUT_MIXES (cuts the other splits never show, and dark shots). Grain, quality, slices,
    overlay, size and damage rate vary per clip; about one clip in six is left undamaged.
    Held-out overlays are drawn from another family (fonts, confetti shapes, ripple scales).
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
            overlay=str(rng.choice(OVERLAYS, p=[0.45, 0.15, 0.15, 0.125, 0.125])),
            family=1 if split == "heldout" else 0,
            # a third of the clips at 640x352: the same macroblocks over smoother content
            width=640 if i % 3 == 2 else 320,
            height=_height(i % 3 == 2, scenes),
        )


def _height(large: bool, scenes: tuple[str, ...]) -> int:
    """352 or 192 lines; night shots need 360 or 256, since their canvas is 1.3x the height
    and must stay even for 4:2:0."""
    if "dark" in scenes:
        return 360 if large else 256
    return 352 if large else 192


def corrupt_stream(
    src: str,
    dst: str,
    start: float,
    end: float,
    seed: int = 0,
    every: int = 2,
) -> int:
    """Copy the MPEG-TS file ``src`` to ``dst``, damaging every ``every``-th non-key video
    packet whose time is in ``[start, end)``; returns how many were damaged.

    End-to-end tests use it: the damage then reaches a detector through the same demuxer and
    decoder the monitor runs on air.
    """
    rng = np.random.default_rng(seed)
    damaged = 0
    with av.open(src) as inp, av.open(dst, "w", format="mpegts") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        seen = 0
        for packet in inp.demux():
            if packet.size == 0 or packet.stream.index not in streams:
                continue
            data: bytes | None = bytes(packet)
            t = float(packet.pts * packet.time_base) if packet.pts is not None else -1.0
            if packet.stream.type == "video" and not packet.is_keyframe and start <= t < end:
                seen += 1
                if seen % every == 0:
                    data = _hurt(data, rng)  # type: ignore[arg-type]
                    damaged += 1
            if data is None:
                continue
            copy = av.Packet(data)
            copy.pts, copy.dts, copy.time_base = packet.pts, packet.dts, packet.time_base
            copy.is_keyframe = packet.is_keyframe
            copy.stream = streams[packet.stream.index]
            out.mux(copy)
    return damaged
