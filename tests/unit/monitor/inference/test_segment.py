"""Block means of a decoded segment: exact, shared between detectors, never re-read."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.inference.segment import DecodedSegment, block_means


def reference(pictures: np.ndarray, factor: int) -> np.ndarray:
    n, h, w = pictures.shape
    f = max(1, min(factor, h, w))
    h2, w2 = h // f, w // f
    return pictures[:, : h2 * f, : w2 * f].reshape(n, h2, f, w2, f).mean(axis=(2, 4))


def segment_of(pictures: np.ndarray) -> DecodedSegment:
    return DecodedSegment(video_times=np.arange(len(pictures)) / 25.0, luma=pictures)


@pytest.mark.parametrize("shape", [(3, 72, 128), (2, 33, 17), (2, 7, 9), (2, 3, 50), (1, 1, 1)])
@pytest.mark.parametrize("factor", [1, 2, 4, 8, 16])
def test_block_means_are_the_mean_of_each_whole_block(shape, factor):
    pictures = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    got = block_means(pictures, factor)
    want = reference(pictures, factor)
    assert got.dtype == np.float32
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-3)


@pytest.mark.parametrize("shape", [(4, 72, 128), (2, 36, 20), (2, 6, 100)])
def test_a_coarser_set_derived_from_a_finer_one_equals_one_taken_from_the_pixels(shape):
    pictures = np.random.default_rng(7).integers(0, 256, shape, dtype=np.uint8)
    shared = segment_of(pictures)
    shared.luma_means(4)
    derived = shared.luma_means(8)
    direct = segment_of(pictures).luma_means(8)
    assert derived.shape == direct.shape
    np.testing.assert_allclose(derived, direct, atol=1e-3)


def test_each_factor_is_taken_once_per_segment():
    pictures = np.random.default_rng(3).integers(0, 256, (3, 64, 64), dtype=np.uint8)
    segment = segment_of(pictures)
    assert segment.luma_means(4) is segment.luma_means(4)
    assert segment_of(pictures).luma_means(4) is not segment.luma_means(4)
