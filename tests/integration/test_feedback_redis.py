"""Operator feedback in the distributed mode: kept in Redis, so it outlives the API process
that took it, and ``vqm label export --redis`` reads it from there."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from alerting.api import ApiContext, create_app
from alerting.engine import AlertEngine
from alerting.feedback import FeedbackStore, Verdict
from monitor.app.cli import app
from monitor.app.config import ChannelConfig, VqmConfig
from monitor.app.runtime import make_feedback_state
from monitor.core.metrics import Metrics
from monitor.core.settings import Settings
from monitor.core.state_redis import RedisStateStore
from tests.unit.alerting.pages import frozen

pytestmark = pytest.mark.integration

TOKEN = "s3cr3t-test-token-0123456789"
CONFIG = VqmConfig(channels=[ChannelConfig(id="news", url="http://origin/news.m3u8")])


async def test_feedback_given_through_the_api_outlives_the_process_and_exports(
    redis_url: str, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(
        environment="production", api_token=TOKEN, redis_url=redis_url, deployment=namespace
    )
    state = RedisStateStore(redis_url, deployment=namespace)
    await state.start()
    try:
        feedback = make_feedback_state(settings, state)
        assert feedback is state  # distributed: beside the alert state, in Redis
        engine = AlertEngine(CONFIG, state, Metrics(CollectorRegistry()))
        for seq in range(3):
            await engine.handle_detection(frozen(seq))
        [alert] = await engine.store.active()
        ctx = ApiContext(
            config=CONFIG, state=state, metrics=Metrics(CollectorRegistry()),
            settings=settings, feedback=feedback,
        )  # fmt: skip
        transport = httpx.ASGITransport(app=create_app(ctx))
        async with httpx.AsyncClient(transport=transport, base_url="http://vqm") as api:
            response = await api.post(
                f"/api/alerts/{alert.id}/feedback",
                json={"verdict": "false_alarm", "by": "ana"},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            assert response.status_code == 201, response.text
    finally:
        await state.stop()

    again = RedisStateStore(redis_url, deployment=namespace)  # another process, later
    await again.start()
    try:
        [kept] = await FeedbackStore(again).all()
    finally:
        await again.stop()
    assert (kept.alert_id, kept.verdict, kept.by) == (alert.id, Verdict.FALSE_ALARM, "ana")

    monkeypatch.setenv("VQM_DEPLOYMENT", namespace)
    out = tmp_path / "dataset"
    command = ["label", "export", str(out), "--redis", redis_url]
    result = await asyncio.to_thread(CliRunner().invoke, app, command)
    assert result.exit_code == 0, result.output
    assert "1 labels, 0 with samples" in result.output
    [line] = (out / "labels.jsonl").read_text().splitlines()
    assert json.loads(line)["alert_id"] == alert.id
