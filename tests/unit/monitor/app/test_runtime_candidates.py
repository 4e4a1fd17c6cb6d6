"""The one-process runtime gives its API the candidates store its inference stage writes, so
the labelling page shows a frame kept after the API started."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry

from alerting.api import create_app
from monitor.app.config import ChannelConfig, VqmConfig
from monitor.app.runtime import Runtime
from monitor.core.metrics import Metrics
from monitor.core.settings import Settings
from tests.unit.alerting.candidates import DETECTOR, keep_candidate, queue_everything

CONFIG = VqmConfig(channels=[ChannelConfig(id="news", url="http://origin/news.m3u8")])


async def test_the_api_shows_a_candidate_the_inference_stage_kept_after_it_started(
    tmp_path: Path,
) -> None:
    runtime = Runtime(
        CONFIG, Settings(data_dir=str(tmp_path)), metrics=Metrics(CollectorRegistry())
    )
    ctx = runtime.api_context()
    assert ctx.candidates is runtime.candidates and ctx.candidates is not None
    assert ctx.candidates.root == tmp_path / "candidates"
    await runtime.feedback.start()
    picture = keep_candidate(ctx.candidates, "news", 5, 0.7)  # as inference keeps one
    await queue_everything(runtime.feedback, ctx.candidates)
    transport = httpx.ASGITransport(app=create_app(ctx))
    async with httpx.AsyncClient(transport=transport, base_url="http://vqm") as api:
        response = await api.get(f"/api/labels/{DETECTOR}/items/news/5/picture")
    assert response.status_code == 200 and response.content == picture


def test_with_candidates_turned_off_the_api_has_none(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path), candidates_every=0)
    runtime = Runtime(CONFIG, settings, metrics=Metrics(CollectorRegistry()))
    assert runtime.api_context().candidates is None
