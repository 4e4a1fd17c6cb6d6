"""The API is closed by default and hardened against what callers send: changing calls need a
token unless a local environment listens on loopback, bodies are bounded and authenticated
before they are parsed, what callers type cannot forge log lines or hold nonsense values, and
the wall page tells browsers to trust nothing else."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from monitor.core.settings import Settings
from tests.conftest import REPO, free_port
from tests.unit.alerting.test_api_actions import AUTH, TOKEN, World, settings

SILENCE = {"channel_id": "news", "comment": "maintenance"}


async def test_vqm_run_without_an_environment_refuses_changes_that_carry_no_token(
    tmp_path: Path,
) -> None:
    config = tmp_path / "channels.yaml"
    config.write_text("channels:\n  - id: news\n    url: http://127.0.0.1:9/live.m3u8\n")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VQM_")}
    cmd = [sys.executable, "-m", "monitor.app.cli", "run", "-c", str(config), "--port", str(port)]
    process = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert process.poll() is None and time.monotonic() < deadline
                await asyncio.sleep(0.1)
            refused = await client.post("/api/silences", json=SILENCE)
            wrong = await client.post(
                "/api/silences", json=SILENCE, headers={"Authorization": "Bearer nope"}
            )
    finally:
        process.terminate()
        process.wait(15)
    assert refused.status_code == 403 and "VQM_API_TOKEN" in refused.json()["error"]["message"]
    assert wrong.status_code == 403  # no token is configured, so no token can be right


def test_only_a_local_environment_on_loopback_is_open_for_changes() -> None:
    assert Settings(environment="local", api_host="127.0.0.1").open_for_changes
    assert Settings(environment="local", api_host="::1").open_for_changes
    assert not Settings(environment="local", api_host="0.0.0.0").open_for_changes
    assert not Settings(environment="production", api_host="127.0.0.1").open_for_changes


async def test_a_local_environment_on_every_address_needs_the_token_too() -> None:
    async with World().client(Settings(environment="local", api_host="0.0.0.0")) as api:
        assert (await api.post("/api/silences", json=SILENCE)).status_code == 403


async def test_an_unauthenticated_body_is_refused_before_it_is_parsed() -> None:
    async with World().client(settings()) as api:
        garbage = await api.post(
            "/api/silences", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert garbage.status_code == 401  # not 422: nobody parsed it
        assert garbage.headers["www-authenticate"] == "Bearer"


async def test_a_body_over_64_kib_is_refused_whether_announced_or_streamed() -> None:
    big = {**SILENCE, "comment": "x" * 70_000}
    async with World().client(settings()) as api:
        announced = await api.post("/api/silences", json=big, headers=AUTH)
        assert announced.status_code == 413
        assert announced.json()["error"]["code"] == "too_large"

        async def chunks():  # no Content-Length: the limit counts what arrives
            for _ in range(20):
                yield b"x" * 4096

        streamed = await api.post("/api/silences", content=chunks(), headers=AUTH)
        assert streamed.status_code == 413


async def test_a_newline_in_an_acks_by_field_cannot_forge_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = World()
    alert_id = await world.open_alert()
    forged = "oncall\n2026-01-01 00:00:00 INFO    vqm: all clear"
    async with world.client(settings()) as api:
        with caplog.at_level(logging.INFO, logger="alerting.api.routes.alerts"):
            response = await api.post(
                f"/api/alerts/{alert_id}/ack", json={"by": forged}, headers=AUTH
            )
    assert response.status_code == 200
    [record] = [r for r in caplog.records if "acknowledged" in r.getMessage()]
    assert "\n" not in record.getMessage() and "oncall\\n2026" in record.getMessage()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("detector", "no_such_detector"),
        ("detector", "x" * 300),
        ("detector", "black\nforged"),
        ("ends_at", "NaN"),
        ("ends_at", "1e309"),
        ("starts_at", -5),
        ("channel_id", "n" * 500),
    ],
    ids=["unknown", "unbounded", "newline", "nan", "infinite", "negative", "long channel"],
)
async def test_silences_refuse_values_nobody_means(field: str, value: object) -> None:
    async with World().client(settings()) as api:
        body = httpx.Request("POST", "http://x", json={**SILENCE, field: value}).content
        if value in ("NaN", "1e309"):  # bare JSON numbers a careless client could send
            body = body.replace(f'"{value}"'.encode(), str(value).encode())
        response = await api.post(
            "/api/silences", content=body, headers={**AUTH, "content-type": "application/json"}
        )
    assert response.status_code == 422, response.text


async def test_a_silence_of_a_known_detector_or_the_stream_is_taken() -> None:
    async with World().client(settings()) as api:
        for detector in ("black", "stream"):
            body = {**SILENCE, "detector": detector}
            assert (await api.post("/api/silences", json=body, headers=AUTH)).status_code == 201


async def test_the_wall_says_trust_only_this_origin_and_every_answer_says_nosniff() -> None:
    async with World().client(settings()) as api:
        wall = await api.get("/")
        labelling = await api.get("/label.html?detector=block_corruption")
        script = await api.get("/static/wall.js")
        health = await api.get("/healthz")
    assert labelling.status_code == 200 and "label.js" in labelling.text
    for response in (wall, labelling, script):
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
    for response in (wall, labelling, script, health):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"


async def test_the_openapi_document_declares_the_bearer_scheme_on_changing_calls() -> None:
    async with World().client(settings()) as api:
        spec = (await api.get("/openapi.json")).json()
    schemes = spec["components"]["securitySchemes"]
    assert {s["type"]: s["scheme"] for s in schemes.values()} == {"http": "bearer"}
    assert spec["paths"]["/api/silences"]["post"]["security"]
    assert spec["paths"]["/api/alerts/{alert_id}/ack"]["post"]["security"]
    assert "security" not in spec["paths"]["/healthz"]["get"]
    assert TOKEN not in str(spec)
