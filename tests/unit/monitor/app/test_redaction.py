"""No secret of a URL reaches a log line, a stream event or the API: a `vqm run` whose origin,
segments and pagers all carry credentials in their URLs, and all fail loudly, is read back."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from monitor.core.redact import redact, redact_url
from tests.conftest import REPO, free_port
from tests.unit.stream_ingest.origin import Origin, Response

SECRETS = ("S3cretPassw0rd", "T0kenS3cret", "S1gnatureS3cret", "H00kKeyS3cret", "SlackS3cretPath")


def test_redaction_keeps_what_tells_urls_apart_and_masks_credentials() -> None:
    assert redact_url("https://ops:pw@cdn.example:8443/live/a.m3u8?token=abc&v=2#x") == (
        "https://***@cdn.example:8443/live/a.m3u8?token=***&v=***#***"
    )
    assert redact_url("https://hooks.slack.com/services/T0/B0/XyZ") == (
        "https://hooks.slack.com/services/***"
    )
    assert redact_url("http://origin/live.m3u8") == "http://origin/live.m3u8"
    assert redact("GET http://u:p@h/x?sig=1 and https://h/y?k") == (
        "GET http://***@h/x?sig=*** and https://h/y?***"
    )


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_the_logs_events_and_alerts_of_a_run_with_secret_bearing_urls_hold_no_secret(
    tmp_path: Path, log_format: str
) -> None:
    origin = Origin()
    origin.routes["/live.m3u8?token=T0kenS3cret"] = Response(
        body=(
            b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n"
            b"#EXTINF:1,\nseg0.ts?sig=S1gnatureS3cret\n"
            b"#EXTINF:1,\nhttp://elsewhere.example/seg1.ts?sig=S1gnatureS3cret\n"
        )
    )  # seg0 answers 404; seg1 is refused by the URL policy
    await origin.start()
    dead = free_port()
    playlist = f"http://viewer:S3cretPassw0rd@127.0.0.1:{origin.port}/live.m3u8?token=T0kenS3cret"
    config = {
        "channels": [{"id": "news", "url": playlist, "severity": "critical"}],
        "ingest": {"start": "first", "max_retries": 0},
        "notifications": {
            "notifiers": {
                "hook": {
                    "type": "webhook",
                    "url": f"http://127.0.0.1:{dead}/hook?key=H00kKeyS3cret",
                    "secret": "a-shared-secret-of-some-length",
                },
                "ops": {
                    "type": "slack",
                    "url": f"http://127.0.0.1:{dead}/services/T0/B0/SlackS3cretPath",
                },
            },
            "routes": [{"severities": ["critical"], "notifiers": ["hook", "ops"]}],
        },
    }
    path = tmp_path / "channels.yaml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    log = tmp_path / "vqm.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VQM_")}
    env["VQM_LOG_FORMAT"] = log_format
    cmd = [sys.executable, "-m", "monitor.app.cli", "run", "-c", str(path), "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*cmd, "--log-level", "DEBUG"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            deadline = time.monotonic() + 60
            alerts: list[dict] = []
            wanted = ("retrying", "url_refused", "seq 0: HTTP 404")
            while not alerts or not all(w in log.read_text(errors="replace") for w in wanted):
                assert process.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                await asyncio.sleep(0.25)
                try:
                    alerts = (await client.get("/api/alerts?state=all")).json()["alerts"]
                except httpx.HTTPError:
                    continue
            channels = (await client.get("/api/channels")).text
    finally:
        process.terminate()
        process.wait(15)
        await origin.stop()
    text = log.read_text(errors="replace")
    assert "http://***@127.0.0.1" in text  # the URLs were logged, redacted
    if log_format == "json":  # one object a line, the failing channel named in its own field
        lines = [line for line in text.splitlines() if line.strip()]
        # stdout shares the file: the alert lines `vqm run` prints for people are not logs
        logged = [line for line in lines if " OPEN " not in line and " RESOLVED " not in line]
        records = [json.loads(line) for line in logged]
        assert any(r.get("channel") == "news" and "retrying" in r["message"] for r in records)
    assert "url_refused" in text and "http_error" in text
    for secret in SECRETS:
        assert secret not in text, f"{secret} in the logs"
        assert secret not in str(alerts) and secret not in channels, f"{secret} in the API"
