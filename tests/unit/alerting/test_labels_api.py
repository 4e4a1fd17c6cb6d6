"""The labelling queue through the API: the queue with its answers, the candidates' pictures
from a real sample store, answering, who may answer, and what bad input gets back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from alerting.annotation import AnnotationStore
from alerting.api import ApiContext, create_app
from monitor.app.config import ChannelConfig, VqmConfig
from monitor.core.metrics import Metrics
from monitor.core.samples import SampleStore
from monitor.core.settings import Settings
from monitor.core.state import MemoryStateStore
from monitor.core.state_file import FileStateStore
from tests.unit.alerting.candidates import DETECTOR, queue_everything, two_candidates

TOKEN = "s3cr3t-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONFIG = VqmConfig(channels=[ChannelConfig(id="news", url="http://origin/news.m3u8")])
PRODUCTION = Settings.model_validate({"environment": "production", "api_token": TOKEN})
QUEUE = f"/api/labels/{DETECTOR}/queue"
FIRST = f"/api/labels/{DETECTOR}/items/news/3"
SECOND = f"/api/labels/{DETECTOR}/items/news/8"


class World:
    def __init__(
        self,
        feedback: FileStateStore,
        candidates: SampleStore | None,
        pictures: dict[tuple[str, int], bytes] | None = None,
    ) -> None:
        self.feedback = feedback
        self.candidates = candidates
        self.pictures = pictures or {}

    def client(self, settings: Settings = PRODUCTION) -> httpx.AsyncClient:
        ctx = ApiContext(
            config=CONFIG,
            state=MemoryStateStore(),
            metrics=Metrics(CollectorRegistry()),
            settings=settings,
            feedback=self.feedback,
            candidates=self.candidates,
            clock=lambda: 1_714_570_000.0,
        )
        transport = httpx.ASGITransport(app=create_app(ctx))
        return httpx.AsyncClient(transport=transport, base_url="http://vqm")


@pytest.fixture
async def world(tmp_path: Path) -> World:
    feedback = FileStateStore(tmp_path / "feedback.json")
    await feedback.start()
    store, pictures = two_candidates(tmp_path / "candidates")
    return World(feedback, store, pictures)


@pytest.fixture
async def api(world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with world.client() as c:
        yield c


async def test_without_a_queue_the_queue_is_a_404_saying_how_to_make_one(
    api: httpx.AsyncClient,
) -> None:
    response = await api.get(QUEUE)
    assert response.status_code == 404
    assert "vqm label queue block_corruption" in response.json()["error"]["message"]
    body = {"verdict": "clean", "by": "ana"}
    assert (await api.post(FIRST, json=body, headers=AUTH)).status_code == 404
    assert (await api.get(FIRST + "/picture")).status_code == 404


async def test_the_queue_its_pictures_and_answers_round_trip(
    world: World, api: httpx.AsyncClient
) -> None:
    assert world.candidates is not None
    await queue_everything(world.feedback, world.candidates)
    queue = (await api.get(QUEUE)).json()
    assert [(i["channel_id"], i["seq"]) for i in queue["items"]] == [("news", 3), ("news", 8)]
    assert (queue["answered"], queue["total"]) == (0, 2)
    assert all(item["answer"] is None for item in queue["items"])

    picture = await api.get(FIRST + "/picture")
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    assert picture.content == world.pictures[("news", 3)]

    defect = {"verdict": "defect", "by": "ana", "regions": {"grid": 16, "cells": [[2, 3]]}}
    response = await api.post(FIRST, json=defect, headers=AUTH)
    assert response.status_code == 201, response.text
    given = response.json()
    assert (given["detector"], given["channel_id"], given["seq"]) == (DETECTOR, "news", 3)
    assert given["at"] == 1_714_570_000.0 and given["frame_time"] == 6.5
    assert given["regions"] == {"grid": 16, "cells": [[2, 3]], "whole_frame": False}
    clean = await api.post(SECOND, json={"verdict": "clean", "by": "bo"}, headers=AUTH)
    assert clean.status_code == 201, clean.text

    queue = (await api.get(QUEUE)).json()
    assert (queue["answered"], queue["total"]) == (2, 2)
    assert [i["answer"]["verdict"] for i in queue["items"]] == ["defect", "clean"]
    answers = (await api.get(f"/api/labels/{DETECTOR}/answers")).json()["labels"]
    assert [(a["seq"], a["by"]) for a in answers] == [(3, "ana"), (8, "bo")]
    stored = await AnnotationStore(world.feedback).labels(DETECTOR)
    assert [label.key for label in stored] == ["block_corruption/news/3", "block_corruption/news/8"]


async def test_a_candidate_not_in_the_queue_is_a_404_before_the_disk_is_read(
    world: World, api: httpx.AsyncClient
) -> None:
    assert world.candidates is not None
    await queue_everything(world.feedback, world.candidates)
    body = {"verdict": "clean", "by": "ana"}
    for path in (
        f"/api/labels/{DETECTOR}/items/news/4",
        f"/api/labels/{DETECTOR}/items/sport/3",
        f"/api/labels/{DETECTOR}/items/..%2F..%2Fetc/3",
    ):
        response = await api.post(path, json=body, headers=AUTH)
        assert response.status_code == 404, path
        assert (await api.get(path + "/picture")).status_code == 404, path
    message = await api.post(f"/api/labels/{DETECTOR}/items/news/4", json=body, headers=AUTH)
    assert "is not in the current block_corruption queue" in message.json()["error"]["message"]
    assert (await api.get(f"/api/labels/{DETECTOR}/items/news/-1/picture")).status_code == 422
    assert await AnnotationStore(world.feedback).labels() == []


async def test_regions_on_a_detector_that_takes_none_are_a_422(
    world: World, api: httpx.AsyncClient
) -> None:
    assert world.candidates is not None
    await queue_everything(world.feedback, world.candidates, detector="freeze")
    body = {"verdict": "defect", "by": "ana", "regions": {"whole_frame": True}}
    response = await api.post("/api/labels/freeze/items/news/3", json=body, headers=AUTH)
    assert response.status_code == 422
    message = response.json()["error"]["message"]
    assert "only candidates of block_corruption take regions, this is freeze" in message
    without = {"verdict": "defect", "by": "ana"}
    assert (
        await api.post("/api/labels/freeze/items/news/3", json=without, headers=AUTH)
    ).is_success


VALID = {"verdict": "defect", "by": "ana"}
OFF_GRID = {"grid": 16, "cells": [[16, 0]]}


@pytest.mark.parametrize(
    "wrong",
    [{"verdict": "real_defect"}, {"by": None}, {"by": ""}, {"extra": 1}, {"regions": OFF_GRID}],
)
async def test_a_malformed_answer_is_a_422_and_nothing_is_stored(
    world: World, api: httpx.AsyncClient, wrong: dict[str, object]
) -> None:
    assert world.candidates is not None
    await queue_everything(world.feedback, world.candidates)
    body = {k: v for k, v in {**VALID, **wrong}.items() if v is not None}  # None: left out
    response = await api.post(FIRST, json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert await AnnotationStore(world.feedback).labels() == []


async def test_an_evicted_candidates_picture_is_a_404_saying_so(
    world: World, api: httpx.AsyncClient
) -> None:
    assert world.candidates is not None
    await queue_everything(world.feedback, world.candidates)
    # Another process (the inference worker) evicts it: the files go, this store's index stays.
    writer = SampleStore(world.candidates.root, world.candidates.limits.model_copy(
        update={"per_channel": 1}))  # fmt: skip
    writer.evict()
    assert [m.seq for m in writer.all()] == [8]
    response = await api.get(FIRST + "/picture")
    assert response.status_code == 404
    assert "no longer kept (evicted" in response.json()["error"]["message"]
    assert (await api.get(SECOND + "/picture")).status_code == 200


async def test_a_process_without_the_candidates_store_says_so(world: World) -> None:
    assert world.candidates is not None
    await queue_everything(world.feedback, world.candidates)
    async with World(world.feedback, None).client() as api:
        response = await api.get(FIRST + "/picture")
        assert response.status_code == 404
        assert "not available in this process" in response.json()["error"]["message"]
        assert (await api.get(QUEUE)).status_code == 200  # the queue itself is in the state


async def test_answering_needs_the_token_like_every_change(world: World) -> None:
    assert world.candidates is not None
    await queue_everything(world.feedback, world.candidates)
    body = {"verdict": "clean", "by": "ana"}
    async with world.client() as api:
        assert (await api.post(FIRST, json=body)).status_code == 401
        wrong = {"Authorization": "Bearer wrong"}
        assert (await api.post(FIRST, json=body, headers=wrong)).status_code == 401
        assert (await api.get(QUEUE)).status_code == 200  # reads stay open
    no_token = Settings.model_validate({"environment": "production"})
    async with world.client(no_token) as api:
        assert (await api.post(FIRST, json=body)).status_code == 403
    reads_closed = PRODUCTION.model_copy(update={"api_read_token_required": True})
    async with world.client(reads_closed) as api:
        assert (await api.get(QUEUE)).status_code == 401
        assert (await api.get(FIRST + "/picture")).status_code == 401
        assert (await api.get(QUEUE, headers=AUTH)).status_code == 200
    assert await AnnotationStore(world.feedback).labels() == []
