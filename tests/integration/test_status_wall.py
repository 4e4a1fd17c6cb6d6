"""The NOC status wall in a real headless Chromium (:mod:`tests.integration.browser`): a tile
per channel that turns red while its channel has an alert, updated live. Keeps a screenshot
in ``artifacts/``.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from alerting.api import ApiContext
from alerting.engine import AlertEngine
from alerting.feedback import Feedback, FeedbackStore, Verdict
from monitor.app.config import ChannelConfig, VqmConfig
from monitor.core.messages import DefectSpan, DetectionMessage
from monitor.core.metrics import Metrics
from monitor.core.state import MemoryStateStore
from monitor.core.state_file import FileStateStore
from monitor.inference.segment import DecodedSegment
from monitor.inference.worker import thumbnail_jpeg
from tests.integration.browser import (
    ARTIFACTS,
    Browser,
    click,
    eventually,
    served,
    serving,
    until,
)

pytestmark = [pytest.mark.integration]

CONFIG = VqmConfig(
    channels=[
        ChannelConfig(id="news", name="News 24", url="http://origin/news.m3u8"),
        ChannelConfig(id="sport", name="Sport", url="http://origin/sport.m3u8"),
    ]
)


def black(channel: str, seq: int, defective: bool, thumbnail: str | None) -> DetectionMessage:
    start = seq * 2.0
    spans = [DefectSpan(start=start, end=start + 2.0, confidence=0.99)] if defective else []
    return DetectionMessage(
        channel_id=channel,
        seq=seq,
        detector="black",
        media_start=start,
        media_end=start + 2.0,
        spans=spans,
        fetched_at=time.time(),
        thumbnail_jpeg=thumbnail,
    )


STATUS = "document.querySelector('#channel-{id}')?.dataset.status"


async def test_a_tile_turns_red_when_its_channel_gets_an_alert(browser: Browser) -> None:

    state, metrics = MemoryStateStore(), Metrics(CollectorRegistry())
    engine = AlertEngine(CONFIG, state, metrics)
    grey = thumbnail_jpeg(DecodedSegment(luma=np.full((1, 108, 192), 120, np.uint8)))
    for channel in ("news", "sport"):
        await engine.handle_detection(black(channel, 0, defective=False, thumbnail=grey))
    await engine.tick()
    ctx = ApiContext(config=CONFIG, state=state, metrics=metrics)
    async with serving(ctx) as port:
        await browser.open(f"http://127.0.0.1:{port}/")
        assert await until(browser, STATUS.format(id="news") + " === 'ok'")
        assert await browser.evaluate("document.querySelectorAll('.tile').length") == 2
        assert await until(browser, "document.querySelector('#channel-news img')?.complete")

        for seq in range(1, 3):  # a 4 s black: past the 2 s minimum, the alert opens
            await engine.handle_detection(black("news", seq, defective=True, thumbnail=None))
        assert await until(browser, STATUS.format(id="news") + " === 'alerting'", timeout=6)
        tile = "document.querySelector('#channel-news')"
        assert await browser.evaluate(f"{tile}.classList.contains('status-alerting')")
        assert await browser.evaluate(f"{tile}.querySelector('.alerts li .what').textContent")
        colour = await browser.evaluate(f"getComputedStyle({tile}).borderTopColor")
        assert colour == "rgb(214, 45, 32)"
        assert await browser.evaluate(STATUS.format(id="sport")) == "ok"
        ARTIFACTS.mkdir(exist_ok=True)
        await browser.screenshot(ARTIFACTS / "status_wall.png")
    assert (ARTIFACTS / "status_wall.png").stat().st_size > 1000


async def test_a_tile_shows_its_channels_short_term_loudness(browser: Browser) -> None:
    state, metrics = MemoryStateStore(), Metrics(CollectorRegistry())
    engine = AlertEngine(CONFIG, state, metrics)
    reading = DetectionMessage(
        channel_id="news",
        seq=0,
        detector="loudness",
        media_start=0.0,
        media_end=2.0,
        fetched_at=time.time(),
        measurements={"short_term_lufs": -22.4, "integrated_lufs": -23.1, "true_peak_dbtp": -3.2},
    )
    await engine.handle_detection(reading)
    ctx = ApiContext(config=CONFIG, state=state, metrics=metrics)
    async with serving(ctx) as port:
        await browser.open(f"http://127.0.0.1:{port}/")
        meter = "document.querySelector('#channel-news .loudness')"
        text = await until(browser, f"{meter}?.textContent")
        assert "S -22.4 LUFS" in text and "I -23.1" in text and "TP -3.2 dBTP" in text
        assert await browser.evaluate("document.querySelector('#channel-sport .loudness')") is None


async def test_a_pages_link_to_one_channel_outlines_its_tile(browser: Browser) -> None:
    state, metrics = MemoryStateStore(), Metrics(CollectorRegistry())
    ctx = ApiContext(config=CONFIG, state=state, metrics=metrics)
    async with serving(ctx) as port:
        await browser.open(f"http://127.0.0.1:{port}/#channel=sport")
        assert await until(browser, "document.querySelector('#channel-sport.focus') !== null")
        assert await browser.evaluate("document.querySelectorAll('.tile.focus').length") == 1
        outline = await browser.evaluate(
            "getComputedStyle(document.querySelector('#channel-sport')).outlineStyle"
        )
        assert outline == "solid"


async def test_each_sub_channel_seen_has_a_tile_of_its_own_after_its_parent(
    browser: Browser,
) -> None:
    config = VqmConfig(
        channels=[
            ChannelConfig(id="news", name="News 24", url="http://o/news.m3u8", variant="all"),
            ChannelConfig(id="sport", name="Sport", url="http://origin/sport.m3u8"),
        ]
    )
    state, metrics = MemoryStateStore(), Metrics(CollectorRegistry())
    engine = AlertEngine(config, state, metrics)
    for channel in ("news@720p", "news@360p", "sport"):
        await engine.handle_detection(black(channel, 0, defective=False, thumbnail=None))
    await engine.tick()
    ctx = ApiContext(config=config, state=state, metrics=metrics)
    async with serving(ctx) as port:
        await browser.open(f"http://127.0.0.1:{port}/#channel=news@360p")
        order = "[...document.querySelectorAll('.tile')].map(t => t.dataset.channel).join()"
        assert await until(browser, f"{order} === 'news,news@720p,news@360p,sport'")
        chips = "[...document.querySelectorAll('#channel-news .chip')]"
        assert await browser.evaluate(f"{chips}.map(c => c.textContent).join()") == "720p,360p"
        sub = "document.getElementById('channel-news@360p')"
        assert await browser.evaluate(f"{sub}.classList.contains('focus')")
        assert await browser.evaluate(f"{sub}.dataset.parent") == "news"

        for seq in range(1, 3):  # black on the 360p rendition alone
            await engine.handle_detection(black("news@360p", seq, defective=True, thumbnail=None))
        assert await until(browser, f"{sub}.dataset.status === 'alerting'", timeout=6)
        chip = "document.querySelector('#channel-news .chip[data-channel=\"news@360p\"]')"
        assert await until(browser, f"{chip}.dataset.status === 'alerting'", timeout=6)
        colour = await browser.evaluate(f"getComputedStyle({chip}).backgroundColor")
        assert colour == "rgb(214, 45, 32)"
        tile = "document.getElementById('channel-{}').dataset.status"
        assert await browser.evaluate(tile.format("news@720p")) == "ok"
        assert await browser.evaluate(tile.format("news")) == "ok"  # the alert is the rendition's
        summary = await browser.evaluate("document.getElementById('summary').textContent")
        assert summary.startswith("2 channels · 2 renditions · 1 alerting")
        ARTIFACTS.mkdir(exist_ok=True)
        await browser.screenshot(ARTIFACTS / "status_wall_renditions.png")


DEMO_NAMES = {"News 24", "Sport HD", "Night Drama", "Music TV", "Test Card", "Remote OB"}
TILE_BOXES = """[...document.querySelectorAll('.tile')].map(t => {
  const r = t.getBoundingClientRect();
  return {name: t.querySelector('.name').textContent, bottom: r.bottom, width: r.width,
          picture: !!t.querySelector('img') && t.querySelector('img').complete
                   && t.querySelector('img').naturalWidth > 0};
})"""


def demo_running() -> contextlib.AbstractAsyncContextManager[int]:
    """`vqm demo` in this process on a free port, until the block ends."""
    from monitor.app.demo import run_demo

    return served(
        lambda port, stop: run_demo(duration=None, port=port, seed=101, stop=stop),
        startup=60,
        shutdown=30,
    )


@pytest.mark.slow
async def test_the_demo_wall_shows_six_channels_that_fill_a_screen(browser: Browser) -> None:
    async with demo_running() as port:
        await browser.open(f"http://127.0.0.1:{port}/")
        await browser.send(
            "Emulation.setDeviceMetricsOverride",
            width=1600,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )
        six_pictures = f"(t => t.length === 6 && t.every(x => x.picture))({TILE_BOXES})"
        assert await until(browser, six_pictures, timeout=90)
        tiles = await browser.evaluate(TILE_BOXES)
        assert {t["name"] for t in tiles} == DEMO_NAMES
        height = await browser.evaluate("window.innerHeight")
        assert all(t["bottom"] <= height for t in tiles), tiles  # all on screen, no scrolling
        assert all(t["width"] >= 1600 / 4 for t in tiles), tiles  # three across, not five
        assert await browser.evaluate("getComputedStyle(wall).getPropertyValue('--columns')") == "3"
        # the first scheduled defect: black on Sport HD from 10 s
        assert await until(browser, STATUS.format(id="sport") + " === 'alerting'", timeout=60)
        ARTIFACTS.mkdir(exist_ok=True)
        await browser.screenshot(ARTIFACTS / "demo_wall.png")


async def answers(store: FileStateStore, count: int) -> list[Feedback]:
    """The stored answers once there are ``count``."""
    return await eventually(FeedbackStore(store).all, count)


async def test_an_operator_answers_alerts_and_marks_regions_with_clicks_on_the_wall(
    browser: Browser, tmp_path: Path
) -> None:
    config = CONFIG.with_enabled(["block_corruption"])
    state, metrics = MemoryStateStore(), Metrics(CollectorRegistry())
    feedback = FileStateStore(tmp_path / "feedback.json")
    await feedback.start()
    engine = AlertEngine(config, state, metrics)
    grey = thumbnail_jpeg(DecodedSegment(luma=np.full((1, 108, 192), 120, np.uint8)))
    for seq in range(3):
        await engine.handle_detection(black("news", seq, defective=True, thumbnail=grey))
        blocky = black("sport", seq, defective=True, thumbnail=grey)
        await engine.handle_detection(blocky.model_copy(update={"detector": "block_corruption"}))
    [news] = await engine.store.active("news")
    [sport] = await engine.store.active("sport")
    ctx = ApiContext(config=config, state=state, metrics=metrics, feedback=feedback)
    async with serving(ctx) as port:
        await browser.open(f"http://127.0.0.1:{port}/")
        await until(browser, "!!document.querySelector('#channel-news .alerts button.false-alarm')")
        await click(browser, "#channel-news .alerts button.false-alarm")
        assert "enter your name" in await until(browser, "notice.textContent")
        assert await FeedbackStore(feedback).all() == []  # nobody said who: nothing stored
        await browser.evaluate("operator.value = 'ana'")
        await click(browser, "#channel-news .alerts button.false-alarm")
        [answer] = await answers(feedback, 1)
        assert (answer.alert_id, answer.verdict, answer.by) == (news.id, Verdict.FALSE_ALARM, "ana")
        await until(browser, "!!document.querySelector('#channel-news .tag.answered')")

        await click(browser, "#channel-sport .alerts button.mark-regions")
        await until(browser, "document.querySelector('#regions').open")
        await until(
            browser,
            "(i => i.complete && i.naturalWidth > 0)(document.querySelector('#regions img'))",
        )
        for cell in ("[data-row='0'][data-col='0']", "[data-row='15'][data-col='15']"):
            await click(browser, f"#regions .grid {cell}")
        ARTIFACTS.mkdir(exist_ok=True)
        await browser.screenshot(ARTIFACTS / "status_wall_regions.png")
        await click(browser, "#regions .real-defect")
        await until(browser, "!document.querySelector('#regions').open")
        later = {a.alert_id: a for a in await answers(feedback, 2)}
        regions = later[sport.id].regions
        assert later[sport.id].verdict is Verdict.REAL_DEFECT and regions is not None
        assert (regions.grid, sorted(regions.cells)) == (16, [(0, 0), (15, 15)])

    restarted = FileStateStore(tmp_path / "feedback.json")  # the answers outlive the process
    await restarted.start()
    assert {a.alert_id for a in await FeedbackStore(restarted).all()} == {news.id, sport.id}
