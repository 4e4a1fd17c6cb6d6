"""Clip recipes of real footage for the block corruption data (``real_*`` splits).

Each recipe is a window of a catalogued video (:mod:`lab.data.real`) of the matching split
(the catalogue splits by source work, so no work is in two splits): a random start, a scale
(half the time 1.0, the source's own pixels as a 720p/1080p channel shows them, else between
that and the whole picture fitting the crop), a crop of 320x192 or 640x352, then the same
broadcast-like H.264 encode, network damage and concealment as synthetic clips. Works are drawn
with weight sqrt(duration), so a ten-minute film does not drown forty short clips. A third of
the evaluation clips and a sixth of the training clips are left undamaged: the clean real
frames that give false-positive rates.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from lab.data.real import Item, catalogue
from lab.synth.corrupt import OVERLAYS, ClipSpec

REAL_CLIPS = {"real_train": 700, "real_validation": 120, "real_test": 150}
_SEEDS = {"real_train": 60_000, "real_validation": 70_000, "real_test": 80_000}
SIZES = ((192, 320), (192, 320), (352, 640))
FPS_ASSUMED = 25.0


def works(split: str) -> dict[str, list[Item]]:
    """Catalogued video of a catalogue split (``train``/``validation``/``test``), by work."""
    out: dict[str, list[Item]] = defaultdict(list)
    for item in catalogue("video"):
        if item.raw.get("split") == split and item.duration >= 1.0:
            out[str(item.raw.get("work", item.path))].append(item)
    return dict(out)


def real_specs(split: str, frames: int = 48) -> list[ClipSpec]:
    """The recipes of ``real_train`` / ``real_validation`` / ``real_test``; empty when the
    catalogue has no footage of that split (a machine that never fetched it)."""
    by_work = works(split.removeprefix("real_"))
    if not by_work:
        return []
    names = sorted(by_work)
    weights = np.array([math.sqrt(sum(i.duration for i in by_work[n])) for n in names])
    weights /= weights.sum()
    undamaged_share = 1 / 6 if split == "real_train" else 1 / 3
    specs = []
    for i in range(REAL_CLIPS[split]):
        seed = _SEEDS[split] + i
        rng = np.random.default_rng(seed)
        items = by_work[names[int(rng.choice(len(names), p=weights))]]
        item = items[int(rng.integers(len(items)))]
        height, width = SIZES[i % len(SIZES)]
        specs.append(
            ClipSpec(
                seed=seed,
                scenes=("real",),
                frames=frames,
                width=width,
                height=height,
                grain=float(rng.choice([0.0, 0.0, 0.0, 1.5])),
                damage=0.0 if rng.random() < undamaged_share else float(rng.uniform(0.4, 0.9)),
                crf=int(rng.integers(18, 32)),
                slices=int(rng.choice([1, 2, 4])),
                overlay=str(rng.choice(OVERLAYS, p=[0.7, 0.05, 0.15, 0.05, 0.05])),
                family=0 if split == "real_train" else 1,
                source=str(item.path),
                start=float(rng.uniform(0.0, max(0.0, item.duration - frames / FPS_ASSUMED - 0.5))),
                scale=_scale(item, height, width, rng),
            )
        )
    return specs


def _scale(item: Item, height: int, width: int, rng: np.random.Generator) -> float:
    """1.0 half the time; else between the whole picture fitting the crop and 1.0. A source
    smaller than the crop is scaled up to fit it (SD material upscaled, as channels do)."""
    w, h = int(item.raw.get("width") or width), int(item.raw.get("height") or height)
    fit = max(height / h, width / w)
    if fit >= 1.0:
        return fit
    return 1.0 if rng.random() < 0.5 else float(rng.uniform(fit, 1.0))
