"""The ONNX engine loads only models that match their card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from monitor.inference.engine import (
    ModelLoadError,
    OnnxModel,
    choose_providers,
)
from tests.unit.monitor.inference.conftest import COPIED_MODEL

NAME = COPIED_MODEL


def test_the_shipped_model_loads_and_returns_one_probability_row_per_window() -> None:
    model = OnnxModel(NAME, providers=["CPUExecutionProvider"])
    model.warm_up()
    out = model.run(np.zeros((3, *model.input_shape(1)[1:]), np.float32))
    assert out.shape == (3, len(model.classes))
    assert np.allclose(out.sum(axis=1), 1.0, atol=1e-4)
    assert model.version == model.card.version
    assert model.provider == "CPUExecutionProvider"


def test_idle_runtime_threads_sleep_rather_than_spin() -> None:
    """The cores are shared with decoding and other channels: a spinning pool thread took
    about 40 % of block_corruption's CPU time on one core (README, capacity)."""
    model = OnnxModel(NAME, providers=["CPUExecutionProvider"])
    options = model._session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_a_model_whose_bytes_differ_from_its_card_is_refused(model_copy: Path) -> None:
    path = model_copy / f"{NAME}.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match=rf"{NAME}\.onnx.*sha256"):
        OnnxModel(NAME, model_copy)


def test_a_missing_model_file_is_refused_naming_the_file(model_copy: Path) -> None:
    (model_copy / f"{NAME}.onnx").unlink()
    with pytest.raises(ModelLoadError, match=rf"{NAME}\.onnx: model file missing"):
        OnnxModel(NAME, model_copy)


def test_a_missing_card_is_refused_naming_the_card(model_copy: Path) -> None:
    (model_copy / f"{NAME}.json").unlink()
    with pytest.raises(ModelLoadError, match=rf"{NAME}\.json: model card missing"):
        OnnxModel(NAME, model_copy)


def test_a_file_that_is_not_onnx_is_refused_even_when_its_hash_matches(model_copy: Path) -> None:
    import hashlib

    garbage = b"not a model at all" * 100
    (model_copy / f"{NAME}.onnx").write_bytes(garbage)
    _edit_card(model_copy, sha256=hashlib.sha256(garbage).hexdigest())
    with pytest.raises(ModelLoadError, match="not a loadable ONNX model"):
        OnnxModel(NAME, model_copy)


def test_a_card_whose_input_shape_disagrees_with_the_graph_is_refused(model_copy: Path) -> None:
    card = json.loads((model_copy / f"{NAME}.json").read_text())
    card["inputs"][0]["shape"] = ["batch", 16000]
    _edit_card(model_copy, inputs=card["inputs"])
    with pytest.raises(ModelLoadError, match="input audio has shape"):
        OnnxModel(NAME, model_copy)


def test_providers_this_build_lacks_are_skipped_in_order() -> None:
    wanted = ["TensorrtExecutionProvider", "NoSuchProvider", "CPUExecutionProvider"]
    assert choose_providers(wanted)[-1] == "CPUExecutionProvider"
    assert "NoSuchProvider" not in choose_providers(wanted)


def test_asking_only_for_missing_providers_is_an_error() -> None:
    with pytest.raises(ModelLoadError, match="NoSuchProvider"):
        choose_providers(["NoSuchProvider"])


def test_a_batch_of_the_wrong_length_is_refused_before_it_reaches_the_runtime() -> None:
    model = OnnxModel(NAME, providers=["CPUExecutionProvider"])
    with pytest.raises(ValueError, match="batch shape"):
        model.run(np.zeros((1, 100), np.float32))


def _edit_card(directory: Path, **fields: object) -> None:
    path = directory / f"{NAME}.json"
    card = json.loads(path.read_text())
    card.update(fields)
    path.write_text(json.dumps(card))
