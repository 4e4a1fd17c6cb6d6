"""The model cache: one loaded copy per model and kind, shared batchers, a clean close."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.inference.engine import ModelLoadError, OnnxModel, default_model_dir
from monitor.inference.models import ModelCache
from tests.unit.monitor.inference.conftest import COPIED_MODEL

NAME = COPIED_MODEL


def test_a_model_is_loaded_once_per_cache_name_and_kind(model_copy: Path) -> None:
    class Flavoured(OnnxModel):
        pass

    cache = ModelCache()
    shipped = cache.model(NAME)
    assert cache.model(NAME) is shipped
    assert ModelCache(default_model_dir()).model(NAME) is not shipped
    assert ModelCache(model_copy).model(NAME) is not shipped
    flavoured = cache.model(NAME, Flavoured)
    assert isinstance(flavoured, Flavoured) and flavoured is cache.model(NAME, Flavoured)


def test_each_model_has_one_batcher(models: ModelCache) -> None:
    model = models.model(NAME)
    assert models.batcher(model) is models.batcher(model)
    assert models.batcher(model).model is model


def test_versions_come_from_the_card_until_loaded_and_loaded_models_are_listed() -> None:
    cache = ModelCache(providers=["CPUExecutionProvider"])
    card_version = cache.version(NAME)
    assert card_version is not None and cache.loaded() == {}
    model = cache.model(NAME)
    assert cache.version(NAME) == model.version == card_version
    assert cache.loaded() == {NAME: (model.version, "CPUExecutionProvider")}
    cache.close()
    assert cache.loaded() == {}
    assert cache.model(NAME) is not model  # loaded afresh after close


def test_a_missing_model_raises_unless_it_is_optional(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path)
    with pytest.raises(ModelLoadError, match="model card missing"):
        cache.model(NAME)
    assert cache.optional(NAME) is None
    assert cache.optional(NAME) is None  # remembered, not retried
    assert cache.version(NAME) is None
