"""Procedural pictures that move like television, cheap enough to render live.

Each scene kind is one renderer class. A renderer draws its expensive parts (textures,
landscapes, crowds) once when the scene starts and then, per frame, only crops, warps and
draws a few shapes and captions, so a 640x360 frame costs a few milliseconds. A frame is a
pure function of (seed, frame index): renderers hold no state that depends on which frame
was asked for before.

Frames come out as I420 (``(height * 3 // 2, width)`` uint8, limited range: black is 16),
the layout the H.264 encoder takes without conversion.

    video = ChannelVideo(plan, 640, 360)
    yuv = video.frame(250)               # frame 250 of the plan's seed
    rgb = video.frame_rgb(250)           # the same picture as RGB, for training code
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

import cv2
import numpy as np

from monitor.app.synthetic.audio import syllable_envelope
from monitor.app.synthetic.scenes import Scene, ScenePlan

logger = logging.getLogger(__name__)

Color = tuple[int, int, int]

_LAYOUT, _GRAIN, _GRAPHICS, _CHANNEL = 1, 2, 3, 4
_WORDS = [
    "market",
    "weather",
    "election",
    "storm",
    "council",
    "league",
    "final",
    "update",
    "report",
    "live",
    "city",
    "river",
    "budget",
    "health",
    "school",
    "traffic",
    "energy",
    "summit",
    "vote",
    "record",
    "coast",
    "north",
    "south",
    "night",
    "festival",
    "science",
    "airport",
    "harbour",
    "museum",
    "climate",
    "bridge",
    "rail",
    "station",
    "open",
]
_SUB = 4  # sub-pixel bits for cv2 drawing: coordinates are multiplied by 16
_ONE = 1 << _SUB


def smooth_noise(
    rng: np.random.Generator, h: int, w: int, cell: int, channels: int = 1
) -> np.ndarray:
    """Noise in [0, 1] that varies over ``cell`` pixels: clouds, hills, fabric."""
    low = rng.random((h // cell + 3, w // cell + 3, channels), dtype=np.float32)
    up = cv2.resize(low, (w + 3 * cell, h + 3 * cell), interpolation=cv2.INTER_CUBIC)
    up = up.reshape(up.shape[0], up.shape[1], channels)[cell : cell + h, cell : cell + w]
    return np.clip(up, 0.0, 1.0)


def texture(rng: np.random.Generator, h: int, w: int, cells: tuple[int, ...]) -> np.ndarray:
    """Several octaves of smooth noise, normalised to [0, 1], one channel."""
    acc = np.zeros((h, w), np.float32)
    for octave, cell in enumerate(cells):
        acc += smooth_noise(rng, h, w, max(1, cell))[..., 0] / (1 + octave)
    acc -= acc.min()
    return acc / max(float(acc.max()), 1e-6)


def colorize(tex: np.ndarray, low: Color, high: Color) -> np.ndarray:
    """Map a [0, 1] texture onto a colour ramp, RGB uint8."""
    lo = np.asarray(low, np.float32)
    hi = np.asarray(high, np.float32)
    return (lo + tex[..., None] * (hi - lo)).clip(0, 255).astype(np.uint8)


def vertical_gradient(h: int, w: int, top: Color, bottom: Color) -> np.ndarray:
    ramp = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None] * np.ones((1, w), np.float32)
    return colorize(ramp, top, bottom)


def random_color(rng: np.random.Generator, lo: int = 30, hi: int = 230) -> Color:
    r, g, b = (int(v) for v in rng.integers(lo, hi, 3))
    return (r, g, b)


def _pt(x: float, y: float) -> tuple[int, int]:
    return int(x * _ONE), int(y * _ONE)


def headline(rng: np.random.Generator, words: int) -> str:
    return " ".join(str(w) for w in rng.choice(_WORDS, words)).upper()


class Graphics:
    """Burned-in graphics: the channel's logo, a clock and a lower third, chosen per scene."""

    def __init__(self, scene: Scene, width: int, height: int) -> None:
        rng = scene.rng(_GRAPHICS)
        channel = np.random.default_rng([scene.seed, _CHANNEL])
        self.w, self.h = width, height
        self.scale = height / 360.0
        self.logo = f"VQM {scene.seed % 100}" if channel.random() < 0.6 else None
        self.logo_color = random_color(channel, 150, 256)
        self.clock = rng.random() < 0.4
        wants_lower = scene.kind in ("studio", "talking") and rng.random() < 0.7
        self.lower = headline(rng, int(rng.integers(2, 5))) if wants_lower else None
        self.lower_color = random_color(rng, 20, 140)
        self.fps = scene.fps

    def draw(self, rgb: np.ndarray, frame: int) -> None:
        font, s = cv2.FONT_HERSHEY_DUPLEX, self.scale
        if self.logo:
            org = (int(16 * s), int(30 * s))
            cv2.putText(
                rgb, self.logo, org, font, 0.7 * s, self.logo_color, max(1, int(2 * s)), cv2.LINE_AA
            )
        if self.clock:
            cv2.putText(
                rgb,
                _timecode(frame, self.fps),
                (int(self.w - 150 * s), int(28 * s)),
                font,
                0.55 * s,
                (235, 235, 235),
                1,
                cv2.LINE_AA,
            )
        if self.lower:
            y0 = int(self.h * 0.78)
            cv2.rectangle(
                rgb,
                (int(self.w * 0.06), y0),
                (int(self.w * 0.7), int(y0 + 34 * s)),
                self.lower_color,
                -1,
            )
            cv2.putText(
                rgb,
                self.lower,
                (int(self.w * 0.08), int(y0 + 25 * s)),
                font,
                0.7 * s,
                (245, 245, 245),
                1,
                cv2.LINE_AA,
            )


def _timecode(frame: int, fps: int) -> str:
    seconds, ff = divmod(frame, fps)
    minutes, ss = divmod(seconds, 60)
    hh, mm = divmod(minutes, 60)
    return f"{hh % 24:02d}:{mm:02d}:{ss:02d}:{ff:02d}"


class SceneRenderer:
    """Base of the per-kind renderers: picture, graphics, conversion to I420 and grain."""

    grain_amplitude = 2

    def __init__(self, scene: Scene, width: int, height: int) -> None:
        self.scene = scene
        self.w, self.h = width, height
        self.graphics = Graphics(scene, width, height)
        self.setup(scene.rng(_LAYOUT))
        self._grain = self._grain_bank(scene.rng(_GRAIN))

    def setup(self, rng: np.random.Generator) -> None:
        """Draw the scene's fixed assets; subclasses override."""

    def picture(self, n: int, t: float) -> np.ndarray:
        """RGB picture of frame ``n`` of the scene (``t`` = n / fps seconds into it)."""
        raise NotImplementedError

    def gain(self, n: int, t: float) -> float:
        """Brightness factor of the picture, 1 except in fades."""
        return 1.0

    def _grain_bank(self, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
        """Four grain patterns reused by frame index: sensor noise without per-frame cost."""
        a = self.grain_amplitude
        if a <= 0:
            return []
        bank = []
        for _ in range(4):
            noise = rng.integers(-a, a + 1, (self.h, self.w), dtype=np.int16)
            bank.append(
                (noise.clip(0, None).astype(np.uint8), (-noise).clip(0, None).astype(np.uint8))
            )
        return bank

    def rgb(self, frame: int) -> np.ndarray:
        n = frame - self.scene.first_frame
        t = n / self.scene.fps
        pic = self.picture(n, t)
        g = self.gain(n, t)
        if g != 1.0:
            pic = cv2.convertScaleAbs(pic, alpha=g)
        self.graphics.draw(pic, frame)
        return pic

    def i420(self, frame: int) -> np.ndarray:
        yuv = cv2.cvtColor(self.rgb(frame), cv2.COLOR_RGB2YUV_I420)
        if self._grain:
            pos, neg = self._grain[(frame * 7 + frame // 4) % len(self._grain)]
            luma = yuv[: self.h]
            cv2.add(luma, pos, dst=luma)
            cv2.subtract(luma, neg, dst=luma)
        return yuv


class _Mover:
    """A shape that drifts along a Lissajous path; speed in frame widths per second."""

    def __init__(self, rng: np.random.Generator, w: int, h: int, speed: float, size: float) -> None:
        self.cx, self.cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
        self.ax, self.ay = rng.uniform(0.1, 0.4) * w, rng.uniform(0.1, 0.35) * h
        self.fx, self.fy = rng.uniform(0.3, 1.0) * speed, rng.uniform(0.3, 1.0) * speed
        self.px, self.py = rng.uniform(0, 2 * np.pi, 2)
        self.r = rng.uniform(0.5, 1.0) * size * h
        self.color = random_color(rng)
        self.shape = int(rng.integers(0, 3))

    def draw(self, img: np.ndarray, t: float) -> None:
        x = self.cx + self.ax * np.sin(2 * np.pi * self.fx * t + self.px)
        y = self.cy + self.ay * np.sin(2 * np.pi * self.fy * t + self.py)
        r = self.r
        if self.shape == 0:
            cv2.circle(img, _pt(x, y), int(r * _ONE), self.color, -1, cv2.LINE_AA, _SUB)
        elif self.shape == 1:
            cv2.rectangle(
                img,
                _pt(x - r, y - r * 0.6),
                _pt(x + r, y + r * 0.6),
                self.color,
                -1,
                cv2.LINE_AA,
                _SUB,
            )
        else:
            cv2.ellipse(
                img,
                _pt(x, y),
                _pt(r, r * 0.5),
                float(np.degrees(t * self.fx * 3)),
                0,
                360,
                self.color,
                -1,
                cv2.LINE_AA,
                _SUB,
            )


class StudioRenderer(SceneRenderer):
    """A set: gradient wall, soft panels, a few slowly drifting graphics."""

    def setup(self, rng: np.random.Generator) -> None:
        h, w = self.h, self.w
        bg = vertical_gradient(h, w, random_color(rng, 20, 120), random_color(rng, 60, 200))
        tex = texture(rng, h, w, (max(8, h // 6), 24))
        bg = cv2.addWeighted(bg, 0.8, colorize(tex, (0, 0, 0), (255, 255, 255)), 0.2, 0)
        for _ in range(int(rng.integers(2, 5))):
            x0, y0 = int(rng.uniform(0, 0.8) * w), int(rng.uniform(0, 0.6) * h)
            x1, y1 = x0 + int(rng.uniform(0.1, 0.3) * w), y0 + int(rng.uniform(0.2, 0.5) * h)
            cv2.rectangle(bg, (x0, y0), (x1, y1), random_color(rng, 40, 220), -1)
        self.background = cv2.GaussianBlur(bg, (0, 0), 1.5)
        self.movers = [_Mover(rng, w, h, 0.15, 0.08) for _ in range(int(rng.integers(2, 5)))]

    def picture(self, n: int, t: float) -> np.ndarray:
        img = self.background.copy()
        for mover in self.movers:
            mover.draw(img, t)
        return img


class PanRenderer(SceneRenderer):
    """A landscape wider than the frame, panned slowly at sub-pixel steps."""

    margin = (0.6, 0.3)
    speed_range = (6.0, 24.0)  # pixels per second at 360 lines

    def setup(self, rng: np.random.Generator) -> None:
        self.canvas = self.landscape(rng)
        ch, cw = self.canvas.shape[:2]
        self.room = (cw - self.w - 2, ch - self.h - 2)
        speed = rng.uniform(*self.speed_range) * self.h / 360.0
        angle = rng.uniform(-0.3, 0.3) + (np.pi if rng.random() < 0.5 else 0.0)
        self.velocity = (speed * np.cos(angle), speed * np.sin(angle))
        self.origin = (rng.uniform(0, self.room[0]), rng.uniform(0, self.room[1]))
        self.movers = [
            _Mover(rng, self.w, self.h, 0.1, 0.04) for _ in range(int(rng.integers(0, 3)))
        ]

    def landscape(self, rng: np.random.Generator) -> np.ndarray:
        h, w = int(self.h * (1 + self.margin[1])), int(self.w * (1 + self.margin[0]))
        img = vertical_gradient(h, w, random_color(rng, 90, 200), random_color(rng, 150, 255))
        ground = colorize(
            texture(rng, h, w, (48, 12, 3)), random_color(rng, 10, 90), random_color(rng, 90, 200)
        )
        x = np.arange(w)
        for layer in range(3):
            base = h * (0.35 + 0.15 * layer)
            ridge = base + h * 0.08 * np.sin(x / w * rng.uniform(2, 9) + rng.uniform(0, 6))
            mask = np.arange(h)[:, None] > ridge[None, :]
            img[mask] = (ground[mask] * (0.6 + 0.2 * layer)).astype(np.uint8)
        for _ in range(int(rng.integers(10, 30))):
            cx, cy = int(rng.uniform(0, w)), int(rng.uniform(0.5, 0.95) * h)
            cv2.circle(
                img, (cx, cy), int(rng.uniform(0.02, 0.06) * h), random_color(rng, 10, 120), -1
            )
        return img

    def offset(self, t: float) -> tuple[float, float]:
        """Camera position: drifts, and turns back at the edge instead of leaving the canvas."""
        return tuple(  # type: ignore[return-value]
            _bounce(o + v * t, r)
            for o, v, r in zip(self.origin, self.velocity, self.room, strict=True)
        )

    def picture(self, n: int, t: float) -> np.ndarray:
        ox, oy = self.offset(t)
        img = cv2.getRectSubPix(self.canvas, (self.w, self.h), (ox + self.w / 2, oy + self.h / 2))
        for mover in self.movers:
            mover.draw(img, t)
        return img


def _bounce(x: float, room: float) -> float:
    """Fold a coordinate into [0, room] like a ball between walls."""
    if room <= 0:
        return 0.0
    period = 2 * room
    x = x % period
    return x if x <= room else period - x


class CrowdRenderer(PanRenderer):
    """Stands full of people: fine detail everywhere, a little waving, a slow pan."""

    margin = (0.3, 0.2)
    speed_range = (3.0, 10.0)
    grain_amplitude = 3

    def landscape(self, rng: np.random.Generator) -> np.ndarray:
        h, w = int(self.h * (1 + self.margin[1])), int(self.w * (1 + self.margin[0]))
        img = colorize(
            texture(rng, h, w, (16, 4, 1)), random_color(rng, 10, 60), random_color(rng, 80, 160)
        )
        scale = self.h / 360.0
        for _ in range(int(900 * w * h / (768 * 432))):
            x, y = int(rng.uniform(0, w)), int(rng.uniform(0, h))
            r = max(2, int(rng.uniform(3, 6) * scale * (0.6 + y / h)))
            cv2.ellipse(
                img, (x, y + 2 * r), (int(r * 1.3), 2 * r), 0, 0, 360, random_color(rng, 0, 256), -1
            )
            cv2.circle(img, (x, y), r, random_color(rng, 120, 230), -1)
        speckle = rng.integers(0, 40, (h, w, 1), dtype=np.uint8)
        return cv2.subtract(img, np.repeat(speckle, 3, axis=2))

    def setup(self, rng: np.random.Generator) -> None:
        super().setup(rng)
        count = int(rng.integers(20, 50))
        self.wavers = [
            (
                rng.uniform(0, self.w),
                rng.uniform(0.1, 1.0) * self.h,
                rng.uniform(1, 4),
                rng.uniform(0, 6),
                random_color(rng, 0, 256),
                rng.uniform(3, 6) * self.h / 360.0,
            )
            for _ in range(count)
        ]

    def picture(self, n: int, t: float) -> np.ndarray:
        img = super().picture(n, t)
        for x, y, f, p, color, r in self.wavers:
            dy = 3 * r * np.sin(2 * np.pi * f * t + p)
            cv2.circle(img, _pt(x, y + dy), int(r * _ONE), color, -1, cv2.LINE_AA, _SUB)
        return img


class HighMotionRenderer(SceneRenderer):
    """Sport: a fast swinging camera with zoom, players and a ball crossing the frame."""

    def setup(self, rng: np.random.Generator) -> None:
        h, w = int(self.h * 1.8), int(self.w * 1.8)
        field = colorize(
            texture(rng, h, w, (32, 8, 2)), random_color(rng, 10, 80), random_color(rng, 60, 200)
        )
        for k in range(1, 8):
            x = int(w * k / 8)
            cv2.line(field, (x, 0), (x, h), (235, 235, 235), max(2, self.h // 120))
        cv2.circle(field, (w // 2, h // 2), h // 5, (235, 235, 235), max(2, self.h // 120))
        self.field = field
        self.swing = (rng.uniform(0.2, 0.35) * w, rng.uniform(0.1, 0.2) * h)
        self.period = (rng.uniform(1.5, 3.0), rng.uniform(2.0, 4.0))
        self.phase = rng.uniform(0, 2 * np.pi, 2)
        self.zoom = (rng.uniform(1.0, 1.2), rng.uniform(0.05, 0.15), rng.uniform(2.0, 5.0))
        self.players = [_Mover(rng, w, h, 0.6, 0.05) for _ in range(int(rng.integers(6, 14)))]
        self.ball = _Mover(rng, w, h, 1.2, 0.015)
        self.ball.color, self.ball.shape = (250, 250, 250), 0

    def picture(self, n: int, t: float) -> np.ndarray:
        fh, fw = self.field.shape[:2]
        cx = fw / 2 + self.swing[0] * np.sin(2 * np.pi * t / self.period[0] + self.phase[0])
        cy = fh / 2 + self.swing[1] * np.sin(2 * np.pi * t / self.period[1] + self.phase[1])
        zoom = self.zoom[0] + self.zoom[1] * np.sin(2 * np.pi * t / self.zoom[2])
        # Affine map from field to frame: scale about (cx, cy), then centre in the frame.
        m = np.array(
            [[zoom, 0, self.w / 2 - zoom * cx], [0, zoom, self.h / 2 - zoom * cy]], np.float32
        )
        img = cv2.warpAffine(
            self.field, m, (self.w, self.h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )
        for player in (*self.players, self.ball):
            x, y = _project(player, t, m)
            r = player.r * zoom
            cv2.circle(img, _pt(x, y), int(r * _ONE), player.color, -1, cv2.LINE_AA, _SUB)
        return img


def _project(mover: _Mover, t: float, m: np.ndarray) -> tuple[float, float]:
    x = mover.cx + mover.ax * np.sin(2 * np.pi * mover.fx * t + mover.px)
    y = mover.cy + mover.ay * np.sin(2 * np.pi * mover.fy * t + mover.py)
    return float(m[0, 0] * x + m[0, 2]), float(m[1, 1] * y + m[1, 2])


class TalkingRenderer(SceneRenderer):
    """A presenter in a still shot: the mouth (following the speech), blinks, and the slight
    sway of a live person (a pixel or two, a few seconds a cycle). Without the sway a
    presenter who stops talking would be a still image, which no picture-based method can
    tell from a frozen feed, and no live shot is."""

    grain_amplitude = 1

    def setup(self, rng: np.random.Generator) -> None:
        h, w = self.h, self.w
        bg = vertical_gradient(h, w, random_color(rng, 30, 120), random_color(rng, 60, 180))
        bg = cv2.addWeighted(
            bg,
            0.85,
            colorize(texture(rng, h, w, (h // 4, 20)), (0, 0, 0), (255, 255, 255)),
            0.15,
            0,
        )
        self.cx = w * rng.uniform(0.35, 0.65)
        self.cy = h * rng.uniform(0.38, 0.45)
        self.r = h * rng.uniform(0.13, 0.17)
        cx, cy, r = int(self.cx), int(self.cy), int(self.r)
        cv2.ellipse(
            bg,
            (cx, int(cy + 2.6 * r)),
            (int(2.2 * r), int(1.3 * r)),
            0,
            180,
            360,
            random_color(rng, 20, 120),
            -1,
        )
        skin = (int(rng.integers(110, 235)), int(rng.integers(80, 180)), int(rng.integers(60, 150)))
        cv2.ellipse(
            bg,
            (cx, int(cy - 0.3 * r)),
            (int(1.05 * r), int(1.0 * r)),
            0,
            180,
            360,
            random_color(rng, 10, 90),
            -1,
        )
        cv2.ellipse(bg, (cx, cy), (int(0.85 * r), int(1.1 * r)), 0, 0, 360, skin, -1, cv2.LINE_AA)
        self.skin = skin
        self.background = bg
        self.blinks = np.sort(
            rng.uniform(
                0,
                self.scene.frames / self.scene.fps,
                int(self.scene.frames / self.scene.fps / 3) + 1,
            )
        )
        sway = np.random.default_rng(rng.integers(1 << 31))  # own stream: other draws unchanged
        self.sway_amp = sway.uniform(1.0, 2.0, 2)
        self.sway_freq = sway.uniform(0.2, 0.4, 2)
        self.sway_phase = sway.uniform(0, 2 * np.pi, 2)

    def picture(self, n: int, t: float) -> np.ndarray:
        img = self.background.copy()
        cx, cy, r = self.cx, self.cy, self.r
        closed = bool(np.any((t >= self.blinks) & (t < self.blinks + 0.12)))
        for side in (-1, 1):
            eye = _pt(cx + side * 0.35 * r, cy - 0.2 * r)
            axes = _pt(0.14 * r, 0.02 * r if closed else 0.08 * r)
            cv2.ellipse(img, eye, axes, 0, 0, 360, (20, 20, 30), -1, cv2.LINE_AA, _SUB)
        opening = float(syllable_envelope(self.scene, np.array([self.scene.start + t]))[0])
        mouth = _pt(0.3 * r, 0.03 * r + 0.22 * r * opening)
        cv2.ellipse(
            img, _pt(cx, cy + 0.5 * r), mouth, 0, 0, 360, (90, 20, 30), -1, cv2.LINE_AA, _SUB
        )
        return self._swayed(img, t)

    def _swayed(self, img: np.ndarray, t: float) -> np.ndarray:
        dx, dy = self.sway_amp * np.sin(2 * np.pi * self.sway_freq * t + self.sway_phase)
        shift = np.array([[1, 0, dx], [0, 1, dy]], dtype=np.float32)
        return cv2.warpAffine(img, shift, (self.w, self.h), borderMode=cv2.BORDER_REFLECT)


class DarkRenderer(PanRenderer):
    """A night street: dark but structured, lit windows and lamps, a passing car."""

    speed_range = (0.0, 6.0)
    grain_amplitude = 3

    def landscape(self, rng: np.random.Generator) -> np.ndarray:
        h, w = int(self.h * (1 + self.margin[1])), int(self.w * (1 + self.margin[0]))
        tex = texture(rng, h, w, (40, 10, 3))
        img = colorize(tex, (2, 3, 8), (22, 24, 40))
        x = 0
        while x < w:
            bw = int(rng.uniform(0.08, 0.2) * w)
            top = int(rng.uniform(0.15, 0.5) * h)
            cv2.rectangle(img, (x, top), (x + bw, h), random_color(rng, 8, 30), -1)
            for _ in range(int(rng.integers(2, 8))):
                wx, wy = x + int(rng.uniform(0.1, 0.8) * bw), int(rng.uniform(top + 5, h * 0.85))
                size = max(3, int(0.018 * self.h))
                cv2.rectangle(
                    img, (wx, wy), (wx + size, wy + size), random_color(rng, 140, 240), -1
                )
            x += bw + int(rng.uniform(0, 0.03) * w)
        lamps = np.zeros_like(img)
        for _ in range(int(rng.integers(2, 5))):
            cv2.circle(
                lamps,
                (int(rng.uniform(0, w)), int(rng.uniform(0.3, 0.6) * h)),
                max(3, self.h // 80),
                (255, 230, 170),
                -1,
            )
        img = cv2.add(img, cv2.GaussianBlur(lamps, (0, 0), self.h / 60))
        img = cv2.add(img, lamps)
        return self._calibrate(img, rng)

    def _calibrate(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Shift the level so mean luma lands at 25-38 (limited range): dark, never black."""
        target = rng.uniform(26.0, 34.0)
        luma = cv2.cvtColor(img, cv2.COLOR_RGB2YUV_I420)[: img.shape[0]]
        delta = (target - float(luma.mean())) * 255.0 / 219.0
        if delta >= 0:
            return cv2.add(img, np.full_like(img, int(round(delta))))
        return cv2.subtract(img, np.full_like(img, int(round(-delta))))

    def setup(self, rng: np.random.Generator) -> None:
        super().setup(rng)
        self.car_y = rng.uniform(0.75, 0.9) * self.h
        self.car_speed = rng.uniform(0.2, 0.5) * self.w * (1 if rng.random() < 0.5 else -1)
        self.car_x0 = rng.uniform(0, self.w)

    def picture(self, n: int, t: float) -> np.ndarray:
        img = super().picture(n, t)
        span = self.w * 1.6
        x = (self.car_x0 + self.car_speed * t) % span - 0.3 * self.w
        r = max(2.0, self.h / 120)
        for dx in (0.0, 6 * r):
            cv2.circle(
                img, _pt(x + dx, self.car_y), int(r * _ONE), (255, 250, 220), -1, cv2.LINE_AA, _SUB
            )
        return img


class FadeRenderer(SceneRenderer):
    """A studio or landscape shot that fades up from dark and back down to dark, ~1 s each.

    The floor is a tenth-and-a-half of full brightness, reached only at the cut, so a fade
    passes through very dark pictures without lingering on black.
    """

    floor = 0.15
    ramp_seconds = 1.0

    def setup(self, rng: np.random.Generator) -> None:
        inner = StudioRenderer if rng.random() < 0.5 else PanRenderer
        self.inner = inner(self.scene, self.w, self.h)

    def picture(self, n: int, t: float) -> np.ndarray:
        return self.inner.picture(n, t)

    def gain(self, n: int, t: float) -> float:
        length = self.scene.frames / self.scene.fps
        ramp = min(self.ramp_seconds, length / 2)
        up = min(1.0, (t + 1.0 / self.scene.fps) / ramp)
        down = min(1.0, (length - t) / ramp)
        x = min(up, down)
        return self.floor + (1.0 - self.floor) * x * x * (3 - 2 * x)


# EBU 75 % colour bars, left to right (RGB): white (100 %), yellow, cyan, green, magenta,
# red, blue, black.
_BARS: tuple[Color, ...] = (
    (235, 235, 235),
    (180, 180, 16),
    (16, 180, 180),
    (16, 180, 16),
    (180, 16, 180),
    (180, 16, 16),
    (16, 16, 180),
    (16, 16, 16),
)


class TestCardRenderer(SceneRenderer):
    """A line-up test card: colour bars over a grey ramp, the channel's ident and a running
    clock, and a marker sweeping the ramp. A card on air is still but never frozen: the clock
    and the marker move every frame, as a real card's clock does, which is what tells it from
    a stuck frame buffer."""

    grain_amplitude = 1

    def setup(self, rng: np.random.Generator) -> None:
        h, w = self.h, self.w
        card = np.zeros((h, w, 3), np.uint8)
        bars_bottom = int(h * 0.62)
        for i, colour in enumerate(_BARS):
            card[:bars_bottom, i * w // len(_BARS) : (i + 1) * w // len(_BARS)] = colour
        ramp = np.linspace(16, 235, w, dtype=np.float32)
        card[bars_bottom : int(h * 0.8)] = ramp[None, :, None].astype(np.uint8)
        card[int(h * 0.8) :] = (40, 40, 48)
        self.card = card
        self.ramp_rows = (bars_bottom, int(h * 0.8))
        self.ident = f"VQM {self.scene.seed % 100} TEST"
        self.graphics.logo, self.graphics.clock = None, False  # the card carries its own

    def picture(self, n: int, t: float) -> np.ndarray:
        img = self.card.copy()
        s = self.h / 360.0
        font = cv2.FONT_HERSHEY_DUPLEX
        y = int(self.h * 0.95)
        cv2.putText(
            img, self.ident, (int(12 * s), y), font, 0.8 * s, (235, 235, 235), 1, cv2.LINE_AA
        )
        clock = _timecode(self.scene.first_frame + n, self.scene.fps)
        cv2.putText(
            img, clock, (int(self.w - 190 * s), y), font, 0.8 * s, (235, 235, 235), 1, cv2.LINE_AA
        )
        top, bottom = self.ramp_rows
        x = (t * 0.25 % 1.0) * (self.w - 8)
        cv2.rectangle(
            img, _pt(x, top), _pt(x + 8 * s, bottom), (235, 40, 40), -1, cv2.LINE_AA, _SUB
        )
        return img


_RENDERERS: dict[str, type[SceneRenderer]] = {
    "studio": StudioRenderer,
    "slow_pan": PanRenderer,
    "talking": TalkingRenderer,
    "crowd": CrowdRenderer,
    "high_motion": HighMotionRenderer,
    "dark": DarkRenderer,
    "fade": FadeRenderer,
    "test_card": TestCardRenderer,
}


class ChannelVideo:
    """Frames of a scene plan at one size; keeps the renderers of the last few scenes."""

    def __init__(self, plan: ScenePlan, width: int, height: int, cache_scenes: int = 4) -> None:
        if width % 2 or height % 2:
            raise ValueError(f"width and height must be even for 4:2:0, got {width}x{height}")
        self.plan = plan
        self.width, self.height = width, height
        self._cache: OrderedDict[int, SceneRenderer] = OrderedDict()
        self._cache_size = cache_scenes
        self._lock = threading.Lock()

    def renderer(self, scene: Scene) -> SceneRenderer:
        with self._lock:
            found = self._cache.get(scene.index)
            if found is not None:
                self._cache.move_to_end(scene.index)
                return found
        made = _RENDERERS[scene.kind](scene, self.width, self.height)
        with self._lock:
            self._cache[scene.index] = made
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return made

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as I420 uint8, limited range."""
        return self.renderer(self.plan.scene_at_frame(index)).i420(index)

    def frame_rgb(self, index: int) -> np.ndarray:
        """Frame ``index`` as RGB uint8 (no grain), for code that trains on pictures."""
        return self.renderer(self.plan.scene_at_frame(index)).rgb(index)
