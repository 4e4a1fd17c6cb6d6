"""Fetch retries follow the one retry policy: an origin's Retry-After is waited, up to a limit."""

from __future__ import annotations

import email.utils
import logging
import time

import httpx
import pytest

from stream_ingest.config import IngestConfig
from stream_ingest.fetch import Fetcher, FetchError
from stream_ingest.urls import UrlPolicy
from tests.unit.stream_ingest.origin import Origin, Response

# Back-off far shorter than any Retry-After below, so a gap between requests that long
# can only be the origin's Retry-After.
QUICK = IngestConfig(request_timeout=2, max_retries=2, backoff_base=0.01, backoff_max=0.05)


async def fetch(origin: Origin, path: str, settings: IngestConfig) -> bytes:
    url = origin.url(path)
    async with httpx.AsyncClient() as client:
        fetcher = Fetcher(client, settings, UrlPolicy.for_channel(url, []))
        return await fetcher.get(url, cap=1024)


def gap(origin: Origin, path: str) -> float:
    first, second = origin.hits(path)[:2]
    return second - first


async def test_a_503_with_retry_after_is_retried_after_that_many_seconds(
    origin: Origin, caplog: pytest.LogCaptureFixture
) -> None:
    origin.routes["/seg.ts"] = [Response(503, headers={"Retry-After": "1"}), Response(body=b"ok")]
    settings = QUICK.model_copy(update={"retry_after_max": 5.0})
    with caplog.at_level(logging.DEBUG, logger="stream_ingest.fetch"):
        assert await fetch(origin, "/seg.ts", settings) == b"ok"
    assert 1.0 <= gap(origin, "/seg.ts") < 2.0
    assert "HTTP 503 Service Unavailable (Retry-After 1 s)" in caplog.text


async def test_an_http_date_retry_after_an_hour_away_is_capped_at_retry_after_max(
    origin: Origin,
) -> None:
    later = email.utils.formatdate(time.time() + 3600, usegmt=True)
    origin.routes["/seg.ts"] = [Response(429, headers={"Retry-After": later}), Response(body=b"ok")]
    settings = QUICK.model_copy(update={"retry_after_max": 0.5})
    assert await fetch(origin, "/seg.ts", settings) == b"ok"
    assert 0.5 <= gap(origin, "/seg.ts") < 1.5


async def test_without_retry_after_max_a_retry_after_is_capped_at_backoff_max(
    origin: Origin,
) -> None:
    origin.routes["/seg.ts"] = [
        Response(503, headers={"Retry-After": "3600"}),
        Response(body=b"ok"),
    ]
    settings = QUICK.model_copy(update={"backoff_max": 0.3})
    assert await fetch(origin, "/seg.ts", settings) == b"ok"
    assert 0.3 <= gap(origin, "/seg.ts") < 1.3


async def test_the_error_after_the_last_retry_carries_the_origins_retry_after(
    origin: Origin,
) -> None:
    origin.routes["/seg.ts"] = Response(503, headers={"Retry-After": "0"})
    with pytest.raises(FetchError) as err:
        await fetch(origin, "/seg.ts", QUICK)
    assert err.value.status == 503 and err.value.retry_after == 0.0
    assert len(origin.hits("/seg.ts")) == 3  # the first try and max_retries=2


async def test_a_retry_after_on_a_status_that_is_not_retried_changes_nothing(
    origin: Origin,
) -> None:
    origin.routes["/seg.ts"] = Response(403, headers={"Retry-After": "5"})
    with pytest.raises(FetchError) as err:
        await fetch(origin, "/seg.ts", QUICK)
    assert err.value.retriable is False and err.value.retry_after is None
    assert len(origin.hits("/seg.ts")) == 1
