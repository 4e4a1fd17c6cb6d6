"""audio_artifact's real-programme windows: labels, levels, streams and hard negatives, over
programme built here (no catalogue needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lab.data.real import Item
from lab.synth.audio_defects import CLASSES, music
from lab.training import audio_artifact_real as real

RATE = real.RATE


def item(source: str, seconds: float) -> Item:
    return Item(source, Path(f"/nowhere/{source}.ogg"), "audio", seconds, "GPL-2+", "", {})


@pytest.fixture(scope="module")
def programme() -> real.Programme:
    rng = np.random.default_rng(7)
    song = (music(rng, 6.0) * 0.2).astype(np.float32)
    talk = (rng.standard_normal(3 * RATE) * 0.05).astype(np.float32)
    return real.Programme([item("songs", 6.0), item("talk", 3.0)], [song, talk])


def test_each_defect_and_the_clean_windows_come_in_the_asked_numbers(
    programme: real.Programme,
) -> None:
    x, y = real.make_windows(programme, "validation", 3, seed=0, none_per_class=5)
    assert x.shape == (5 + 3 * (len(CLASSES) - 1), real.MODEL_RATE)
    assert np.bincount(y).tolist() == [5, 3, 3, 3, 3]
    assert np.isfinite(x).all() and np.abs(x).max() > 0


def test_the_same_seed_gives_the_same_windows_and_another_split_others(
    programme: real.Programme,
) -> None:
    a, _ = real.make_windows(programme, "test", 2, seed=1)
    b, _ = real.make_windows(programme, "test", 2, seed=1)
    c, _ = real.make_windows(programme, "train", 2, seed=1)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_a_clean_window_is_the_programme_alone_and_a_hiss_window_is_not() -> None:
    """Over a pure 440 Hz tone, a 'none' window keeps all its power at 440 Hz (only the gain
    may change); a hiss window carries broadband noise."""
    t = np.arange(5 * RATE) / RATE
    tone = real.Programme(
        [item("tone", 5.0)], [(0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)]
    )
    x, y = real.make_windows(tone, "train", 6, seed=3, none_per_class=6)

    def tonal_share(w: np.ndarray) -> float:
        power = np.abs(np.fft.rfft(w * np.hanning(w.size))) ** 2
        return float(power[430:451].sum() / power.sum())  # 1 Hz bins at 32 kHz / 32000

    assert min(tonal_share(w) for w in x[y == 0]) > 0.999
    assert max(tonal_share(w) for w in x[y == CLASSES.index("hiss")]) < 0.999


def test_hard_negatives_are_the_stretches_the_model_flags() -> None:
    """A scorer that flags loud windows: only the loud file's stretches come back."""
    rng = np.random.default_rng(0)
    quiet = (rng.standard_normal(4 * RATE) * 0.001).astype(np.float32)
    loud = (rng.standard_normal(4 * RATE) * 0.3).astype(np.float32)
    programme = real.Programme([item("a", 4.0), item("b", 4.0)], [quiet, loud])

    def score(windows: np.ndarray) -> np.ndarray:
        probs = np.zeros((len(windows), len(CLASSES)), np.float32)
        probs[:, 2] = np.abs(windows).mean(axis=1) > 0.1
        probs[:, 0] = 1 - probs[:, 2]
        return probs

    hard = real.hard_negatives(programme, score, threshold=0.5)
    assert hard and {k for k, _ in hard} == {1}
    x, y = real.make_windows(programme, "train", 1, seed=0, none_per_class=40, hard=hard)
    assert len(x) == 40 + len(CLASSES) - 1


def test_the_sources_table_carries_each_splits_files_seconds_and_licence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    items = {
        "train": [item("songs", 10.0), item("songs", 5.0)],
        "test": [item("talk", 3.0)],
    }
    monkeypatch.setattr(real, "split_items", lambda split: items.get(split, []))
    rows = real.data_sources()
    assert rows == [
        {
            "source": "talk",
            "split": "test",
            "licence": "GPL-2+",
            "content": "",
            "files": 1,
            "seconds": 3.0,
        },
        {
            "source": "songs",
            "split": "train",
            "licence": "GPL-2+",
            "content": "",
            "files": 2,
            "seconds": 15.0,
        },
    ]
