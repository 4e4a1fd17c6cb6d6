"""The labelling page in a real headless Chromium (:mod:`tests.integration.browser`): a queue
of two candidates kept in a real sample store, answered with clicks on the patch grid and key
strokes, the answers stored where ``vqm retrain`` reads them. Keeps a screenshot in
``artifacts/``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from alerting.annotation import AnnotationStore, CandidateLabel
from alerting.api import ApiContext
from monitor.app.config import ChannelConfig, VqmConfig
from monitor.core.metrics import Metrics
from monitor.core.state import MemoryStateStore
from monitor.core.state_file import FileStateStore
from tests.integration.browser import (
    ARTIFACTS,
    Browser,
    click,
    eventually,
    press,
    serving,
    type_into,
    until,
)
from tests.unit.alerting.candidates import DETECTOR, queue_everything, two_candidates

pytestmark = [pytest.mark.integration]

CONFIG = VqmConfig(channels=[ChannelConfig(id="news", url="http://origin/news.m3u8")])
SHOWN = "document.querySelector('#candidate:not([hidden])')?.dataset.key"
PICTURE = "(i => i.complete && i.naturalWidth > 0)(document.querySelector('#candidate img'))"
PROGRESS = "document.getElementById('progress').textContent"


async def labels(store: FileStateStore, count: int) -> list[CandidateLabel]:
    """The stored answers once there are ``count``."""
    return await eventually(lambda: AnnotationStore(store).labels(DETECTOR), count)


async def test_an_operator_labels_a_queue_with_grid_clicks_and_keys(
    browser: Browser, tmp_path: Path
) -> None:
    feedback = FileStateStore(tmp_path / "feedback.json")
    await feedback.start()
    candidates, _ = two_candidates(tmp_path / "candidates")
    await queue_everything(feedback, candidates)
    state, metrics = MemoryStateStore(), Metrics(CollectorRegistry())
    ctx = ApiContext(
        config=CONFIG, state=state, metrics=metrics, feedback=feedback, candidates=candidates
    )
    async with serving(ctx) as port:
        await browser.open(f"http://127.0.0.1:{port}/label.html?detector={DETECTOR}")
        assert await until(browser, f"{SHOWN} === 'news/3'")
        assert await until(browser, f"{PROGRESS} === '0 / 2 answered'")
        assert await until(browser, PICTURE)
        await press(browser, "d")  # nobody said who: refused, nothing stored
        assert "enter your name" in await until(browser, "notice.textContent")
        assert await AnnotationStore(feedback).labels() == []

        await type_into(browser, "#operator", "ana")
        for cell in ("[data-row='2'][data-col='3']", "[data-row='9'][data-col='14']"):
            await click(browser, f"#candidate .grid {cell}")
        assert await browser.evaluate("document.querySelectorAll('.grid .marked').length") == 2
        ARTIFACTS.mkdir(exist_ok=True)
        await browser.screenshot(ARTIFACTS / "labelling_page.png")
        await click(browser, "#candidate .facts")  # focus off the name field: keys answer
        await press(browser, "d")
        [first] = await labels(feedback, 1)
        assert (first.seq, first.verdict, first.by) == (3, "defect", "ana")
        assert first.regions is not None and first.regions.grid == 16
        assert sorted(first.regions.cells) == [(2, 3), (9, 14)]

        assert await until(browser, f"{SHOWN} === 'news/8'")
        assert await browser.evaluate("document.querySelectorAll('.grid .marked').length") == 0
        await press(browser, "c")
        later = await labels(feedback, 2)
        assert [(label.seq, label.verdict, label.regions) for label in later[1:]] == [
            (8, "clean", None)
        ]
        assert await until(browser, f"{PROGRESS} === '2 / 2 answered'")
        assert "all 2 answered" in await browser.evaluate("notice.textContent")
    assert await browser.evaluate("localStorage.getItem('vqm-operator')") == "ana"


async def test_without_a_queue_the_page_shows_the_apis_reason(
    browser: Browser, tmp_path: Path
) -> None:
    feedback = FileStateStore(tmp_path / "feedback.json")
    await feedback.start()
    ctx = ApiContext(
        config=CONFIG,
        state=MemoryStateStore(),
        metrics=Metrics(CollectorRegistry()),
        feedback=feedback,
    )
    async with serving(ctx) as port:
        await browser.open(f"http://127.0.0.1:{port}/label.html?detector={DETECTOR}")
        text = await until(browser, "!message.hidden && message.textContent")
        assert "no labelling queue for 'block_corruption'" in text
        assert await browser.evaluate("candidate.hidden")
