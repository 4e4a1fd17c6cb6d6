"""Each stage process loads only what it runs: ``vqm ingest`` and ``vqm alert``, started for
real against a broker and Redis, import neither PyAV, ONNX Runtime, OpenCV, SciPy nor torch;
``vqm infer`` does (which shows the check sees those libraries when they are there). Each
serves the process and Python metrics, its ``vqm_build_info`` and its error counters at 0."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from monitor.core.bus import Topics
from tests.integration.processes import Cluster, make_topics

pytestmark = [pytest.mark.integration, pytest.mark.slow]

INFERENCE_LIBRARIES = {"onnxruntime", "av", "cv2", "scipy", "torch"}
_IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)", re.M)


def top_level_imports(log: Path) -> set[str]:
    """The top-level packages a process imported, from its ``-X importtime`` lines."""
    return {name.split(".")[0] for name in _IMPORTED.findall(log.read_text(errors="replace"))}


# A stage's error counter exported at zero before any error: a panel shows 0, not "No data".
ZEROED = {
    "ingest": 'vqm_ingest_errors_total{channel="idle",kind="http_error"} 0.0',
    "infer": 'vqm_decode_errors_total{channel="idle"} 0.0',
    "alert": 'vqm_alerting_errors_total{where="tick"} 0.0',
}


def check_metrics(stage: str, text: str) -> None:
    """What every stage's /metrics must carry from the start."""
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "python_info"):
        assert f"\n{name}" in text, f"{stage}: no {name}"
    build = [line for line in text.splitlines() if line.startswith("vqm_build_info{")]
    assert len(build) == 1 and f'stage="{stage}"' in build[0], build
    assert ZEROED[stage] in text.splitlines(), f"{stage}: {ZEROED[stage]} missing"


async def test_ingest_and_alert_load_no_inference_library_and_every_stage_exports_its_metrics(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str, namespace: str, topics: Topics
) -> None:
    await make_topics(kafka_bootstrap, topics)  # stages start only on topics made for them
    config = {
        "channels": [{"id": "idle", "url": "http://127.0.0.1:9/live.m3u8"}],
        "detectors": [{"type": "audio_artifact", "enabled": True}],  # infer loads a model
        "topics": topics.model_dump(),
    }
    cluster = Cluster(tmp_path, kafka_bootstrap, redis_url, namespace, config)
    loaded = {}
    try:
        for stage in ("ingest", "alert", "infer"):
            process = cluster.start(stage, python_flags=("-X", "importtime"))
            await process.until_ready()
            metrics = await process.get("/metrics")
            assert metrics is not None and metrics.status_code == 200
            check_metrics(stage, metrics.text)
            process.terminate()
            assert await process.wait(15) == 0, cluster.logs()
            loaded[stage] = top_level_imports(process.log)
    finally:
        cluster.stop()
    assert "monitor" in loaded["ingest"] and "stream_ingest" in loaded["ingest"]
    assert loaded["ingest"] & INFERENCE_LIBRARIES == set()
    assert loaded["alert"] & INFERENCE_LIBRARIES == set()
    assert {"onnxruntime", "av", "cv2"} <= loaded["infer"]
