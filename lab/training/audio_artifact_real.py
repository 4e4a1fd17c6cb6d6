"""audio_artifact's windows cut from real programme: the catalogue's sound, by split, no torch.

The synthetic programme alone taught the model that real orchestral music and mastered rock are
hiss or distortion (265 false alerts per hour of clean real test-split sound, model 1.2.0). So
the training set now cuts its windows from the real catalogue (:mod:`lab.data.real`), split by
source work: *train* files for training, *validation* files for choosing the epoch and the
threshold, *test* files scored once.

Every file is decoded with the product's own decoder (PyAV, 48 kHz, mono mixdown), and each
window is what :mod:`lab.training.audio_artifact_data` makes of a synthetic one: 1.2 s of
programme, a defect from :mod:`lab.synth.audio_defects` over 0.5-1 s of it at the recipe's
levels against *this* programme, resampled to 32 kHz by the detector's ``to_model_rate`` and
trimmed to the middle second.

Which programme: sources are drawn in proportion to the square root of their seconds (so the
two hours of orchestral music do not drown the speech), a file by its seconds, an offset at
random. One window in five is brought to peak just under full scale (loud, never clipped: the
hard negative for distortion), one in ten 20 dB down. Half the clean ("none") windows are
*hard negatives*: windows of the same split the given model flags, mined from a scan of its
files (``hard_negatives``), so the windows that paged are the ones it learns from.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lab.data.real import Item, catalogue
from lab.synth import audio_defects
from lab.synth.audio_defects import CLASSES, MARGIN, WINDOW, apply_defect, distortion_audible
from monitor.inference.detectors.audio_artifact import MODEL_RATE, to_model_rate
from monitor.inference.media import DecodeError, iter_decoded
from monitor.inference.segment import DecodeNeeds

logger = logging.getLogger(__name__)

RATE = audio_defects.RATE
SPLIT_CODES = {"train": 10, "validation": 11, "test": 12}  # apart from the synthetic streams
SPAN = WINDOW + 2 * MARGIN
LOUD_SHARE, QUIET_SHARE, QUIET_DB = 0.2, 0.1, -20.0
HARD_SHARE = 0.5


@dataclass
class Programme:
    """One split's real sound, decoded: mono 48 kHz float32 per file, and where it came from."""

    items: list[Item]
    audio: list[np.ndarray]

    @property
    def seconds(self) -> float:
        return sum(a.size for a in self.audio) / RATE

    def sources(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for item, audio in zip(self.items, self.audio, strict=True):
            out[item.source] = out.get(item.source, 0.0) + audio.size / RATE
        return out


def split_items(split: str) -> list[Item]:
    """The catalogue's sound of ``split``: audio files and the soundtracks of videos."""
    items = [
        i
        for i in catalogue()
        if i.raw.get("split") == split
        and (i.kind == "audio" or (i.kind == "video" and i.raw.get("has_audio")))
        and i.duration >= SPAN
    ]
    return sorted(items, key=lambda i: str(i.path))


def decode_mono(path: Path, limit_s: float | None = None) -> np.ndarray:
    """A file's sound as the detector receives it (PyAV, 48 kHz), mixed to mono."""
    needs = DecodeNeeds(luma=False, audio=True)
    parts, total = [], 0
    for chunk in iter_decoded(str(path), needs, 60.0):
        if chunk.audio.size:
            parts.append(chunk.audio.mean(axis=0).astype(np.float32))
            total += parts[-1].size
        if limit_s and total >= limit_s * RATE:
            break
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def load(split: str, limit_s: float | None = None) -> Programme:
    items, audio = [], []
    for item in split_items(split):
        try:
            mono = decode_mono(item.path, limit_s)
        except DecodeError as exc:
            logger.warning("skipped %s: %s", item.path, exc)
            continue
        if mono.size >= SPAN * RATE:
            items.append(item)
            audio.append(mono)
    logger.info("%s: %d files, %.0f s of real programme", split, len(items), _seconds(audio))
    return Programme(items, audio)


def _seconds(audio: Iterable[np.ndarray]) -> float:
    return sum(a.size for a in audio) / RATE


class Drawer:
    """Random 1.2 s stretches of a :class:`Programme`, sources weighted by sqrt(seconds)."""

    def __init__(self, programme: Programme) -> None:
        self.programme = programme
        by_source: dict[str, list[int]] = {}
        for k, item in enumerate(programme.items):
            by_source.setdefault(item.source, []).append(k)
        self.sources = sorted(by_source)
        self.files = [by_source[s] for s in self.sources]
        weight = np.sqrt([sum(programme.audio[k].size for k in f) for f in self.files])
        self.weight = weight / weight.sum()

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, int, int]:
        """(stretch float64 at its own level, file index, start sample)."""
        files = self.files[int(rng.choice(len(self.files), p=self.weight))]
        sizes = np.array([self.programme.audio[k].size for k in files], dtype=np.float64)
        k = files[int(rng.choice(len(files), p=sizes / sizes.sum()))]
        n = int(round(SPAN * RATE))
        start = int(rng.integers(0, self.programme.audio[k].size - n + 1))
        return self.programme.audio[k][start : start + n].astype(np.float64), k, start


def level(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The programme's own level mostly; sometimes peaking just under full scale, or quiet."""
    u = rng.random()
    peak = float(np.max(np.abs(x)))
    if u < LOUD_SHARE and peak > 1e-4:
        return x * (rng.uniform(*audio_defects.RECIPE["programme_rms_dbfs"]["loud_peak"]) / peak)
    if u < LOUD_SHARE + QUIET_SHARE:
        return x * audio_defects.db_to_amp(QUIET_DB)
    return x


def to_window(x: np.ndarray) -> np.ndarray:
    """48 kHz stretch with margins -> the model's 32 kHz second, as training has always cut."""
    y = to_model_rate(x, RATE)
    skip = int(round(MARGIN * MODEL_RATE))
    return y[skip : skip + MODEL_RATE]


def defect_window(x: np.ndarray, label: str, rng: np.random.Generator) -> np.ndarray | None:
    """``label`` over 0.5-1 s of the stretch, or None when distortion would not be audible."""
    cover = rng.uniform(*audio_defects.RECIPE["defect_cover_s"])
    start = MARGIN + rng.uniform(0, WINDOW - cover)
    y = apply_defect(x, label, rng, start, start + cover, RATE).astype(np.float64)
    region = slice(int(start * RATE), int((start + cover) * RATE))
    if label == "distortion" and not distortion_audible(x[region], y[region]):
        return None
    return y


Scorer = Callable[[np.ndarray], np.ndarray]  # (n, 32000) windows -> (n, classes) probabilities


def hard_negatives(
    programme: Programme, score: Scorer, threshold: float, hop: float = 1.0
) -> list[tuple[int, int]]:
    """(file, start sample) of every 1.2 s stretch, ``hop`` s apart, whose middle second the
    model flags as a defect at ``threshold``: the clean windows it pages on."""
    n, step = int(round(SPAN * RATE)), int(round(hop * RATE))
    out: list[tuple[int, int]] = []
    for k, audio in enumerate(programme.audio):
        starts = list(range(0, audio.size - n + 1, step))
        for i in range(0, len(starts), 64):
            batch = starts[i : i + 64]
            windows = np.stack([to_window(audio[s : s + n].astype(np.float64)) for s in batch])
            probs = score(windows.astype(np.float32))
            flagged = probs[:, 1:].max(axis=1) >= threshold
            out += [(k, s) for s, f in zip(batch, flagged, strict=True) if f]
    return out


def make_windows(
    programme: Programme,
    split: str,
    per_class: int,
    seed: int,
    none_per_class: int | None = None,
    hard: list[tuple[int, int]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(windows (n, 32000) float32, labels) from real programme: ``per_class`` of each defect
    and ``none_per_class`` (default ``per_class``) clean windows, ``HARD_SHARE`` of them from
    ``hard`` when given. One random stream per window: ``default_rng([code, seed, index])``."""
    drawer = Drawer(programme)
    nones = none_per_class or per_class
    labels = [0] * nones + [c for c in range(1, len(CLASSES)) for _ in range(per_class)]
    n = int(round(SPAN * RATE))
    windows = np.zeros((len(labels), MODEL_RATE), np.float32)
    for index, label in enumerate(labels):
        rng = np.random.default_rng([SPLIT_CODES[split], seed, index])
        if label == 0 and hard and rng.random() < HARD_SHARE:
            k, start = hard[int(rng.integers(len(hard)))]
            x = programme.audio[k][start : start + n].astype(np.float64)
            windows[index] = to_window(level(x, rng))
            continue
        for _ in range(20):
            x = level(drawer.draw(rng)[0], rng)
            y = x if label == 0 else defect_window(x, CLASSES[label], rng)
            if y is not None:
                windows[index] = to_window(y)
                break
        else:
            raise RuntimeError(f"no {split} programme took audible {CLASSES[label]} in 20 draws")
    return windows, np.asarray(labels, np.int64)


def data_sources(splits: Iterable[str] = ("train", "validation", "test")) -> list[dict[str, Any]]:
    """What the windows were cut from, per source and split, with the catalogue's licences."""
    files: dict[tuple[str, str], list[Item]] = {}
    for split in splits:
        for item in split_items(split):
            files.setdefault((split, item.source), []).append(item)
    return [
        {
            "source": source,
            "split": split,
            "licence": " | ".join(sorted({i.licence for i in items})),
            "content": " | ".join(sorted({i.content for i in items if i.content})),
            "files": len(items),
            "seconds": round(sum(i.duration for i in items), 1),
        }
        for (split, source), items in sorted(files.items())
    ]


def build(
    out_dir: Path,
    seed: int,
    per_class: dict[str, int],
    train_none: int,
    score: Scorer | None,
    threshold: float,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The real windows of each split in ``per_class`` (split -> defect windows per class),
    cached in ``out_dir``; ``score`` (the model being replaced) mines the training split's
    hard negatives, never another split's."""
    return {
        split: split_windows(
            out_dir,
            split,
            count,
            seed,
            train_none if split == "train" else None,
            score if split == "train" else None,
            threshold,
        )
        for split, count in per_class.items()
    }


def split_windows(
    out_dir: Path,
    split: str,
    per_class: int,
    seed: int,
    nones: int | None = None,
    score: Scorer | None = None,
    threshold: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """One split's real windows, made once and cached in ``out_dir``."""
    path = out_dir / f"real-{split}-s{seed}-n{per_class}.npz"
    if path.exists():
        with np.load(path) as data:
            return data["x"], data["y"]
    programme = load(split)
    hard = hard_negatives(programme, score, threshold) if score else None
    if hard is not None:
        logger.info("%s: %d hard negatives flagged by the current model", split, len(hard))
    x, y = make_windows(programme, split, per_class, seed, nones, hard)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez(path, x=x, y=y)
    return x, y
