"""The scene plan of a synthetic channel: which shot is on air at each frame.

A channel is a sequence of scenes cut every few seconds, like television. Scene ``k`` of a
seed is drawn from its own random generator, so the plan is the same whichever segment asks
first, and nothing before frame ``i`` has to be rendered to know what frame ``i`` shows.

    plan = ScenePlan(seed=7, fps=25)
    plan.scene_at_frame(120).kind      # e.g. "talking"
    ScenePlan(seed=7, fps=25, specs=["dark"]).scene_at_frame(0).kind   # "dark"
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

SceneKind = Literal[
    "studio", "slow_pan", "talking", "crowd", "high_motion", "dark", "fade", "test_card"
]
AudioKind = Literal["speech", "music", "quiet", "tone"]

SCENE_KINDS: tuple[SceneKind, ...] = get_args(SceneKind)
AUDIO_KINDS: tuple[AudioKind, ...] = get_args(AudioKind)
# What a seed draws when the caller does not choose: a test card and its line-up tone are only
# ever asked for (a demo's test-card channel), so the draws of every seed stay as they were.
_DRAWN_AUDIO: tuple[AudioKind, ...] = ("speech", "music", "quiet")

# How often each kind is drawn when the caller does not choose; hard negatives are common
# on purpose, because an evaluation needs many of them.
_KIND_WEIGHTS = {
    "studio": 0.18,
    "slow_pan": 0.14,
    "talking": 0.18,
    "crowd": 0.12,
    "high_motion": 0.14,
    "dark": 0.12,
    "fade": 0.12,
    "test_card": 0.0,
}
_WEIGHTS = [_KIND_WEIGHTS[k] for k in SCENE_KINDS]
MIN_SCENE_SECONDS = 3.0
MAX_SCENE_SECONDS = 7.0


class SceneSpec(BaseModel):
    """What the caller asks of one scene; anything left out is drawn from the seed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: SceneKind
    audio: AudioKind | None = Field(
        default=None,
        description="Sound of the scene; None lets the seed choose (speech for talking).",
    )
    duration: float | None = Field(
        default=None, gt=0, description="Seconds; None draws 3-7 s from the seed."
    )


@dataclass(frozen=True)
class Scene:
    """One shot on the channel timeline, in whole frames so cuts fall on frames."""

    index: int
    kind: SceneKind
    audio: AudioKind
    first_frame: int
    frames: int
    fps: int
    seed: int

    @property
    def start(self) -> float:
        return self.first_frame / self.fps

    @property
    def end(self) -> float:
        return (self.first_frame + self.frames) / self.fps

    @property
    def end_frame(self) -> int:
        return self.first_frame + self.frames

    def rng(self, purpose: int) -> np.random.Generator:
        """A generator for one aspect of the scene (layout, sound, grain...), stable per seed."""
        return np.random.default_rng([self.seed, self.index, purpose])


def scene_rng(seed: int, index: int, purpose: int) -> np.random.Generator:
    return np.random.default_rng([seed, index, purpose])


def _as_spec(spec: SceneSpec | str) -> SceneSpec:
    return spec if isinstance(spec, SceneSpec) else SceneSpec(kind=spec)  # type: ignore[arg-type]


def _choose_audio(kind: SceneKind, rng: np.random.Generator) -> AudioKind:
    """Talking heads talk; the rest is mostly programme sound with some quiet passages."""
    if kind == "talking":
        return "speech"
    if kind == "test_card":
        return "tone"
    weights = {"high_motion": (0.3, 0.6, 0.1), "dark": (0.4, 0.2, 0.4)}.get(kind, (0.45, 0.4, 0.15))
    return _DRAWN_AUDIO[int(rng.choice(len(_DRAWN_AUDIO), p=weights))]


class ScenePlan:
    """Scenes of one seed, drawn lazily and kept, so lookups by frame are a bisect.

    ``specs`` cycles in order when given (``["dark"]`` makes a channel of dark scenes only);
    otherwise kinds are drawn with the weights above.
    """

    _PURPOSE = 0x5CE7E

    def __init__(self, seed: int, fps: int, specs: Sequence[SceneSpec | str] | None = None) -> None:
        self.seed = seed
        self.fps = fps
        self._specs = [_as_spec(s) for s in specs] if specs else []
        self._scenes: list[Scene] = []
        self._starts: list[int] = []
        self._lock = threading.Lock()

    def _draw(self, index: int, first_frame: int) -> Scene:
        rng = scene_rng(self.seed, index, self._PURPOSE)
        spec = self._specs[index % len(self._specs)] if self._specs else None
        if spec is not None:
            kind = spec.kind
        else:
            kind = SCENE_KINDS[int(rng.choice(len(SCENE_KINDS), p=_WEIGHTS))]
        audio = spec.audio if spec is not None and spec.audio else _choose_audio(kind, rng)
        if spec is not None and spec.duration is not None:
            frames = max(1, round(spec.duration * self.fps))
        else:
            frames = int(
                rng.integers(
                    round(MIN_SCENE_SECONDS * self.fps), round(MAX_SCENE_SECONDS * self.fps) + 1
                )
            )
        return Scene(index, kind, audio, first_frame, frames, self.fps, self.seed)

    def _extend_to(self, frame: int) -> None:
        with self._lock:
            while not self._scenes or self._scenes[-1].end_frame <= frame:
                first = self._scenes[-1].end_frame if self._scenes else 0
                scene = self._draw(len(self._scenes), first)
                self._scenes.append(scene)
                self._starts.append(scene.first_frame)

    def scene_at_frame(self, frame: int) -> Scene:
        """The scene on air at frame ``frame`` (>= 0)."""
        self._extend_to(frame)
        return self._scenes[bisect.bisect_right(self._starts, frame) - 1]

    def scenes_between(self, first_frame: int, end_frame: int) -> list[Scene]:
        """Scenes overlapping frames [first_frame, end_frame)."""
        if end_frame <= first_frame:
            return []
        self._extend_to(end_frame - 1)
        lo = bisect.bisect_right(self._starts, first_frame) - 1
        hi = bisect.bisect_left(self._starts, end_frame)
        return self._scenes[max(lo, 0) : hi]

    def scenes_until(self, seconds: float) -> list[Scene]:
        """Every scene that starts before ``seconds``, for ground truth."""
        return self.scenes_between(0, max(1, int(np.ceil(seconds * self.fps))))
