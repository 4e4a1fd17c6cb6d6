"""What the light commands import, checked in a fresh interpreter: the config (every detector
plugin's settings) validates without the inference stack, and ``vqm --help`` loads none of it."""

from __future__ import annotations

import subprocess
import sys

INFERENCE_LIBRARIES = {"onnxruntime", "av", "cv2", "scipy", "torch"}

_LOAD_WHAT_INGEST_AND_ALERT_LOAD = """
import sys
from monitor.app.cli import app
from monitor.app.config import VqmConfig
from monitor.app.runtime import Runtime
import alerting.api, alerting.worker, alerting.outbox
import stream_ingest.owned, stream_ingest.service, stream_ingest.leases
from monitor.inference.detectors.registry import detector_types
config = VqmConfig.model_validate({
    "channels": [{"id": "a", "url": "http://origin/a.m3u8",
                  "detectors": [{"type": "block_corruption", "enabled": True}]}],
    "detectors": [{"type": t, "enabled": True} for t in detector_types()],
})
assert set(config.detectors_for(config.channels[0])) == set(detector_types())  # every plugin
print(" ".join(sorted({m.split(".")[0] for m in sys.modules})))
"""


def _top_level_modules(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return set(out.stdout.split())


def test_the_config_and_the_light_stages_load_without_the_inference_stack() -> None:
    loaded = _top_level_modules(_LOAD_WHAT_INGEST_AND_ALERT_LOAD)
    assert {"monitor", "alerting", "stream_ingest", "pydantic", "numpy"} <= loaded
    assert loaded & INFERENCE_LIBRARIES == set()


def test_vqm_help_loads_no_stage() -> None:
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom monitor.app.cli import app\n"
        "assert CliRunner().invoke(app, ['--help']).exit_code == 0\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    loaded = _top_level_modules(code)
    assert loaded & (INFERENCE_LIBRARIES | {"alerting", "stream_ingest", "fastapi"}) == set()
