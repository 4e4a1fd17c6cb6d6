"""The av_sync face path: Haar passes merged, the learned face detector, its training boxes."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from monitor.inference.avsync import faces
from monitor.inference.engine import default_model_dir
from monitor.inference.models import ModelCache

LEARNED_SHIPPED = (default_model_dir() / f"{faces.FACE_MODEL}.onnx").exists()


class _Noise:
    """A stand-in for the speech pool: the face and its geometry do not depend on the sound."""

    def excerpt(self, rng: np.random.Generator, seconds: float) -> np.ndarray:
        return (0.1 * rng.standard_normal(int(seconds * 48_000))).astype(np.float32)


def _texture(seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.integers(40, 200, (180, 320)) + rng.normal(0, 1, (180, 320)), 0, 255).astype(
        np.uint8
    )


def test_learned_input_is_128_lines_and_a_whole_number_of_cells() -> None:
    x, scale = faces.learned_input(np.zeros((240, 320), np.uint8))
    assert x.shape == (1, 1, 128, 176) and x.dtype == np.float32
    assert scale == pytest.approx(128 / 240)
    assert faces.learned_input(np.zeros((1080, 1920), np.uint8))[0].shape == (1, 1, 128, 224)


def test_learned_boxes_add_faces_the_haar_passes_missed_and_never_duplicate_one() -> None:
    frame = _texture()
    haar_only = faces.FaceFinder().detect(frame)

    def learned(frame: np.ndarray, min_face: int = 48) -> list[tuple[float, np.ndarray]]:
        return [
            (0.99, np.array([10.0, 10.0, 80.0, 80.0])),
            (0.95, np.array([12.0, 12.0, 80.0, 80.0])),
        ]

    merged = faces.FaceFinder(learned).detect(frame)  # type: ignore[arg-type]
    assert len(merged) == len(haar_only) + 1
    assert merged[-1].tolist() == [10.0, 10.0, 80.0, 80.0]


def test_a_cascade_pass_maps_its_boxes_onto_the_default_convention() -> None:
    from lab.synth.talking_head import talking_head

    frame = talking_head(201, 0.2, fps=25, pool=_Noise()).luma[0]  # type: ignore[arg-type]
    name = faces.PASSES[0].cascade
    finder = faces.FaceFinder(passes=(faces.CascadePass(name, "equalise", 4),))
    [plain] = finder.detect(frame)
    wider = faces.CascadePass(name, "equalise", 4, scale=1.5, shift=0.1)
    [mapped] = faces.FaceFinder(passes=(wider,)).detect(frame)
    x, y, w, h = plain
    assert mapped.tolist() == pytest.approx([x - w / 4, y - h / 4 + 0.1 * w, 1.5 * w, 1.5 * h])
    assert finder.cascade(name) is finder.cascade(name)  # loaded once


def test_replayed_training_boxes_match_what_haar_finds_on_the_same_clip() -> None:
    from lab.synth.talking_head import talking_head
    from lab.training.face_detector import talking_head_boxes

    default = faces.FaceFinder(
        passes=(faces.CascadePass("haarcascade_frontalface_default.xml", "equalise", 4),)
    )
    # Two drawn faces, and the photograph where scikit-image (the train extra) is installed.
    seeds = (201, 204) + ((208,) if importlib.util.find_spec("skimage") else ())
    matched = 0
    for seed in seeds:
        clip = talking_head(seed, 1.0, fps=25, pool=_Noise())  # type: ignore[arg-type]
        boxes = talking_head_boxes(seed, 1.0, 25, False, _Noise())
        assert boxes.shape == (25, 4)
        for i in (0, 12, 24):
            found = default.detect(clip.luma[i])
            matched += max((faces.iou(boxes[i], f) for f in found), default=0.0) > 0.6
    assert matched >= 3 * len(seeds) - 2


@pytest.mark.skipif(not LEARNED_SHIPPED, reason="the face detector is not shipped in this tree")
def test_the_learned_detector_finds_drawn_faces_and_nothing_on_texture(
    models: ModelCache,
) -> None:
    from lab.synth.talking_head import talking_head
    from lab.training.face_detector import talking_head_boxes

    learned = models.optional(faces.FACE_MODEL, faces.LearnedFaces)
    assert learned is not None and learned is models.optional(faces.FACE_MODEL, faces.LearnedFaces)
    assert learned(_texture()) == []
    assert learned(np.full((240, 320), 128, np.uint8)) == []
    hits = 0
    for seed in (3000, 3001, 3002, 3003):  # validation seed space, drawn faces
        clip = talking_head(seed, 1.0, fps=25, heldout=False, pool=_Noise())  # type: ignore[arg-type]
        box = talking_head_boxes(seed, 1.0, 25, False, _Noise())[10]
        found = learned(clip.luma[10])
        hits += bool(found) and faces.iou(found[0][1], box) > 0.5
    assert hits >= 3


def test_a_missing_learned_detector_leaves_the_haar_passes(tmp_path: object) -> None:
    assert ModelCache(str(tmp_path)).optional(faces.FACE_MODEL, faces.LearnedFaces) is None


def test_searching_near_followed_faces_finds_a_real_face_where_a_whole_frame_search_does() -> None:
    """Between whole-frame searches the cascade looks only around the faces it follows: on
    a real face on camera that must give the boxes a whole-frame search gives."""
    from monitor.inference.media import decode_bytes
    from monitor.inference.segment import DecodeNeeds
    from tests.real_media import real_face_without_speech

    luma = decode_bytes(real_face_without_speech().read_bytes(), DecodeNeeds(audio=False)).luma
    finder = faces.FaceFinder()  # the Haar cascade alone: real faces rest on it
    compared = 0
    for picture in luma[::6]:
        # set off from the corner, so a box found near a face must be placed back in the frame
        frame = np.pad(picture, ((200, 160), (400, 240)), constant_values=int(picture.mean()))
        whole = finder.detect(frame)
        if len(whole) != 1:
            continue
        [near] = finder.detect(frame, near=whole)
        assert faces.iou(near, whole[0]) >= 0.8
        compared += 1
    assert compared >= len(luma[::6]) // 2, "the real face was seldom found at all"
