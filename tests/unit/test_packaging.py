"""The wheel carries the product and its models, never the lab (simulation, training)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import REPO


def test_the_wheel_has_the_three_stages_and_the_models_and_no_lab_code(tmp_path: Path) -> None:
    # A copy of the checkout, so the build's own folders (build/, *.egg-info) land there.
    source = tmp_path / "src"
    skip = shutil.ignore_patterns(
        ".git", ".venv", ".data", ".hypothesis", "artifacts", "build", "*.egg-info", "__pycache__",
        ".*cache",
    )
    shutil.copytree(REPO, source, ignore=skip)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
         "-q", "-w", str(tmp_path)],
        check=True, timeout=300, capture_output=True,
    )  # fmt: skip
    [wheel] = tmp_path.glob("vqm-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if "/" in n and ".dist-info" not in n}
    assert tops == {"monitor", "stream_ingest", "alerting", "exported_models"}
    assert "monitor/app/cli.py" in names and "monitor/app/synthetic/channel.py" in names
    assert "exported_models/audio_artifact.onnx" in names
    assert "alerting/rules/vqm.yaml" in names and "alerting/static/index.html" in names
    assert "alerting/static/label.html" in names and "alerting/static/common.js" in names
    assert not [n for n in names if "training" in n or n.startswith("lab/") or "tests/" in n]
