"""Simulated transmission errors: real decoder concealment, labelled against the clean decode."""

from __future__ import annotations

import numpy as np
import pytest

from lab.synth.corrupt import (
    AREA_THRESHOLD,
    GOP,
    REGION,
    ClipSpec,
    corrupted_clip,
    region_labels,
    split_specs,
)


@pytest.fixture(scope="module")
def damaged():
    return corrupted_clip(ClipSpec(seed=3, scenes=("crowd",), frames=48, damage=0.9))


def test_an_undamaged_stream_decodes_to_its_clean_pictures_and_is_never_labelled() -> None:
    clip = corrupted_clip(ClipSpec(seed=4, scenes=("high_motion",), frames=24, damage=0.0))
    assert np.array_equal(clip.damaged, clip.clean)
    assert not clip.region_labels.any() and not clip.frame_labels.any()


def test_a_damaged_stream_shows_corruption_only_after_a_key_frame(damaged) -> None:
    assert damaged.frame_labels.any()
    key_frames = np.arange(0, 48, GOP)
    assert not damaged.frame_labels[key_frames].any()  # key frames are never hurt


def test_labels_are_per_32_pixel_region_and_frames_follow_the_area_share(damaged) -> None:
    n, h, w, _ = damaged.damaged.shape
    assert damaged.region_labels.shape == (n, h // REGION, w // REGION)
    share = damaged.region_labels.mean(axis=(1, 2))
    assert np.array_equal(damaged.frame_labels, share > AREA_THRESHOLD)
    assert np.array_equal(damaged.region_labels, region_labels(damaged.clean, damaged.damaged))


def test_the_same_spec_gives_the_same_damage() -> None:
    spec = ClipSpec(seed=11, scenes=("studio",), frames=24, damage=0.9)
    assert np.array_equal(corrupted_clip(spec).damaged, corrupted_clip(spec).damaged)


def test_splits_share_neither_seeds_nor_scene_mixes() -> None:
    splits = {name: list(split_specs(name, 12)) for name in ("train", "validation", "heldout")}
    seeds = {name: {s.seed for s in specs} for name, specs in splits.items()}
    mixes = {name: {s.scenes for s in specs} for name, specs in splits.items()}
    names = list(splits)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not seeds[a] & seeds[b]
            assert not mixes[a] & mixes[b]
    assert any(s.damage == 0.0 for s in splits["heldout"])  # clean clips are held out too


def _moving(frames: int = 5, h: int = 64, w: int = 96) -> np.ndarray:
    """Smooth content that moves 3 px a frame, so consecutive pictures differ."""
    y, x = np.mgrid[0:h, 0:w]
    out = [
        np.repeat((128 + 80 * np.sin((x + 3 * i) / 9.0) * np.cos(y / 11.0))[..., None], 3, 2)
        for i in range(frames)
    ]
    return np.stack(out).astype(np.uint8)


def test_a_repeated_picture_is_a_stutter_not_corruption() -> None:
    clean = _moving()
    damaged = clean.copy()
    damaged[3] = clean[2]  # frame 3 was lost: the player shows frame 2 again
    assert not region_labels(clean, damaged).any()


def test_fine_texture_drawn_a_few_pixels_off_is_not_corruption() -> None:
    base = _moving().astype(int) // 2
    stripes = np.arange(96) // 2 % 2 * 60  # 2 px stripes: a ripple-like fine texture
    clean = (base + stripes[None, None, :, None]).astype(np.uint8)
    damaged = clean.copy()
    # The texture drawn 2 px off in the last frame: every pixel 60 codes wrong, the same
    # 8x8 means, and nothing a viewer could tell from a clean picture.
    damaged[4] = (base[4] + np.roll(stripes, 2)[None, :, None]).astype(np.uint8)
    assert np.abs(damaged[4].astype(int) - clean[4]).mean() > 50
    assert not region_labels(clean, damaged).any()


def test_a_wrong_macroblock_marks_its_region() -> None:
    clean = _moving()
    damaged = clean.copy()
    damaged[4, 32:48, 40:56] = (128, 128, 128) if clean[4, 40, 48, 0] < 100 else (0, 0, 0)
    labels = region_labels(clean, damaged)
    assert labels[4].sum() >= 1 and not labels[:4].any()
    assert labels[4, 1, 1] or labels[4, 1, 0]
