"""A private copy of a shipped model, for tests that load or damage one of their own."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from monitor.inference.engine import default_model_dir

COPIED_MODEL = "audio_artifact"


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    """A directory with a copy of the shipped ``audio_artifact`` model and card, safe to damage."""
    for suffix in (".onnx", ".json"):
        name = f"{COPIED_MODEL}{suffix}"
        shutil.copy(default_model_dir() / name, tmp_path / name)
    return tmp_path
