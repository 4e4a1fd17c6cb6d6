"""Operator feedback through the API: real defect or false alarm, regions, who may answer,
and what bad input gets back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from alerting.api import ApiContext, create_app
from alerting.engine import AlertEngine
from alerting.feedback import FeedbackStore, Verdict
from monitor.app.config import ChannelConfig, VqmConfig
from monitor.core.metrics import Metrics
from monitor.core.settings import Settings
from monitor.core.state import MemoryStateStore, StateStore
from monitor.core.state_file import FileStateStore
from tests.unit.alerting.pages import flagged

TOKEN = "s3cr3t-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONFIG = VqmConfig(channels=[ChannelConfig(id="news", url="http://origin/news.m3u8")]).with_enabled(
    ["block_corruption"]
)
PRODUCTION = Settings.model_validate({"environment": "production", "api_token": TOKEN})


class World:
    def __init__(self, feedback: StateStore) -> None:
        self.state = MemoryStateStore()
        self.feedback = feedback
        self.engine = AlertEngine(CONFIG, self.state, Metrics(CollectorRegistry()))

    def client(self, settings: Settings = PRODUCTION) -> httpx.AsyncClient:
        ctx = ApiContext(
            config=CONFIG,
            state=self.state,
            metrics=Metrics(CollectorRegistry()),
            settings=settings,
            feedback=self.feedback,
        )
        transport = httpx.ASGITransport(app=create_app(ctx))
        return httpx.AsyncClient(transport=transport, base_url="http://vqm")

    async def open(self, detector: str) -> str:
        for seq in range(3):
            await self.engine.handle_detection(flagged(detector, seq))
        [alert] = await self.engine.store.active(detector=detector)
        return alert.id


@pytest.fixture
async def world(tmp_path: Path) -> World:
    store = FileStateStore(tmp_path / "feedback.json")
    await store.start()
    return World(store)


@pytest.fixture
async def api(world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with world.client() as c:
        yield c


async def test_an_operator_marks_an_alert_false_alarm_and_it_survives_a_restart(
    world: World, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    alert_id = await world.open("freeze")
    body = {"verdict": "false_alarm", "by": "ana", "comment": "a still caption card"}
    response = await api.post(f"/api/alerts/{alert_id}/feedback", json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    given = response.json()
    assert given["verdict"] == "false_alarm" and given["by"] == "ana" and given["at"] > 0
    assert (given["channel_id"], given["detector"]) == ("news", "freeze")
    assert (await api.get(f"/api/alerts/{alert_id}/feedback")).json() == given

    restarted = FileStateStore(tmp_path / "feedback.json")
    await restarted.start()
    [kept] = await FeedbackStore(restarted).all()
    assert kept.verdict is Verdict.FALSE_ALARM and kept.alert_id == alert_id and kept.by == "ana"


async def test_a_later_answer_replaces_the_earlier_one(
    world: World, api: httpx.AsyncClient
) -> None:
    alert_id = await world.open("freeze")
    for verdict in ("false_alarm", "real_defect"):
        body = {"verdict": verdict, "by": "bo"}
        assert (
            await api.post(f"/api/alerts/{alert_id}/feedback", json=body, headers=AUTH)
        ).is_success
    [listed] = (await api.get("/api/feedback")).json()["feedback"]
    assert listed["verdict"] == "real_defect"


async def test_block_corruption_regions_are_kept_on_their_grid(
    world: World, api: httpx.AsyncClient
) -> None:
    alert_id = await world.open("block_corruption")
    regions = {"grid": 32, "cells": [[0, 0], [31, 31], [4, 7]]}
    body = {"verdict": "real_defect", "by": "cy", "regions": regions}
    response = await api.post(f"/api/alerts/{alert_id}/feedback", json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    assert response.json()["regions"] == {**regions, "whole_frame": False}
    whole = {"verdict": "real_defect", "by": "cy", "regions": {"whole_frame": True}}
    response = await api.post(f"/api/alerts/{alert_id}/feedback", json=whole, headers=AUTH)
    assert response.json()["regions"] == {"grid": 16, "cells": [], "whole_frame": True}


@pytest.mark.parametrize(
    ("regions", "says"),
    [
        ({"grid": 16, "cells": [[16, 0]]}, "outside the 16x16 grid"),
        ({"grid": 16, "cells": [[0, -1]]}, "outside the 16x16 grid"),
        ({"grid": 24, "cells": [[0, 0]]}, "grid"),
        ({"grid": 16, "cells": [[1, 1], [1, 1]]}, "marked twice"),
        ({"grid": 16}, "either cells or whole_frame"),
        ({"grid": 16, "cells": [[1, 1]], "whole_frame": True}, "either cells or whole_frame"),
    ],
)
async def test_regions_off_the_grid_are_refused_with_a_clear_422(
    world: World, api: httpx.AsyncClient, regions: dict[str, object], says: str
) -> None:
    alert_id = await world.open("block_corruption")
    body = {"verdict": "real_defect", "by": "cy", "regions": regions}
    response = await api.post(f"/api/alerts/{alert_id}/feedback", json=body, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
    assert says in response.json()["error"]["message"]
    assert await FeedbackStore(world.feedback).all() == []


async def test_regions_on_an_alert_that_is_not_block_corruption_are_refused(
    world: World, api: httpx.AsyncClient
) -> None:
    alert_id = await world.open("freeze")
    body = {"verdict": "real_defect", "by": "cy", "regions": {"whole_frame": True}}
    response = await api.post(f"/api/alerts/{alert_id}/feedback", json=body, headers=AUTH)
    assert response.status_code == 422
    assert "only alerts of block_corruption take regions" in response.json()["error"]["message"]


async def test_an_alert_that_does_not_exist_is_a_404_naming_it(api: httpx.AsyncClient) -> None:
    body = {"verdict": "false_alarm", "by": "ana"}
    response = await api.post("/api/alerts/nope123/feedback", json=body, headers=AUTH)
    assert response.status_code == 404
    assert "'nope123'" in response.json()["error"]["message"]
    assert (await api.get("/api/alerts/nope123/feedback")).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"verdict": "maybe", "by": "ana"},
        {"verdict": "false_alarm"},
        {"verdict": "false_alarm", "by": ""},
        {"verdict": "false_alarm", "by": "ana", "extra": 1},
        {"verdict": "false_alarm", "by": "x" * 201},
    ],
)
async def test_a_malformed_answer_is_a_422(
    world: World, api: httpx.AsyncClient, body: dict[str, object]
) -> None:
    alert_id = await world.open("freeze")
    response = await api.post(f"/api/alerts/{alert_id}/feedback", json=body, headers=AUTH)
    assert response.status_code == 422, response.text


async def test_an_oversized_body_is_a_413_before_it_is_parsed(
    world: World, api: httpx.AsyncClient
) -> None:
    alert_id = await world.open("freeze")
    body = {"verdict": "false_alarm", "by": "ana", "comment": "x" * 100_000}
    response = await api.post(f"/api/alerts/{alert_id}/feedback", json=body, headers=AUTH)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


async def test_answering_needs_the_token_like_every_change(world: World) -> None:
    alert_id = await world.open("freeze")
    body = {"verdict": "false_alarm", "by": "ana"}
    async with world.client() as api:
        assert (await api.post(f"/api/alerts/{alert_id}/feedback", json=body)).status_code == 401
        wrong = {"Authorization": "Bearer wrong"}
        response = await api.post(f"/api/alerts/{alert_id}/feedback", json=body, headers=wrong)
        assert response.status_code == 401
    no_token = Settings.model_validate({"environment": "production"})
    async with world.client(no_token) as api:
        assert (await api.post(f"/api/alerts/{alert_id}/feedback", json=body)).status_code == 403
    assert await FeedbackStore(world.feedback).all() == []


async def test_an_unreadable_feedback_file_is_an_error_naming_it(tmp_path: Path) -> None:
    from monitor.core.state import StateError

    path = tmp_path / "feedback.json"
    path.write_text("{not json")
    with pytest.raises(StateError, match="feedback.json: state file unreadable"):
        await FileStateStore(path).start()
