"""The outbox delivers every routed transition exactly once per receiver, in order, across
failures and restarts, against a real local HTTP receiver."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Callable

import httpx
from prometheus_client import CollectorRegistry

from alerting.models import AlertEvent, AlertTransition
from alerting.notifiers import NotificationConfig, Router, build_notifiers
from alerting.outbox import (
    NS_DELIVERED,
    NS_PENDING,
    Outbox,
    OutboxConfig,
    OutboxEntry,
    OutboxMetrics,
)
from monitor.core.state import MemoryStateStore
from tests.receiver import Receiver
from tests.unit.alerting.test_notifiers import make_alert, opened, resolved

FAST = OutboxConfig(backoff_base=0.02, backoff_max=0.1, poll_interval=0.02)


def pagerduty_router(receiver: Receiver, client: httpx.AsyncClient) -> Router:
    config = NotificationConfig.model_validate(
        {
            "notifiers": {"oncall": {"type": "pagerduty", "url": receiver.url, "routing_key": "k"}},
            "routes": [{"severities": ["critical", "major"], "notifiers": ["oncall"]}],
        }
    )
    return build_notifiers(config, client)


class Running:
    """An outbox's run loop as a task, stopped and awaited on exit."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Outbox:
        self.task = asyncio.create_task(self.outbox.run(self.stop))
        return self.outbox

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, timeout=5)


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def settle(outbox: Outbox) -> None:
    """Until nothing is pending (all delivered or dropped)."""
    deadline = time.monotonic() + 5
    while await outbox.pending():
        assert time.monotonic() < deadline, "outbox never drained"
        await asyncio.sleep(0.02)


def actions(receiver: Receiver) -> list[tuple[str, str]]:
    return [(r.json()["event_action"], r.json()["dedup_key"]) for r in receiver.accepted]


async def test_enqueuing_the_same_transition_twice_delivers_it_once(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    outbox = Outbox(MemoryStateStore(), pagerduty_router(receiver, client), config=FAST)
    assert await outbox.enqueue(opened()) == 1
    assert await outbox.enqueue(opened()) == 0
    async with Running(outbox):
        await settle(outbox)
        assert await outbox.enqueue(opened()) == 0  # replay after delivery
        await asyncio.sleep(0.1)
    assert actions(receiver) == [("trigger", "news:black:1")]


async def test_a_receiver_answering_503_for_a_while_gets_the_page_exactly_once(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    receiver.statuses = [503, 503, 503]
    metrics = OutboxMetrics(CollectorRegistry())
    outbox = Outbox(MemoryStateStore(), pagerduty_router(receiver, client), metrics, FAST)
    async with Running(outbox):
        await outbox.listener(opened())
        await settle(outbox)
    assert len(receiver.requests) == 4
    assert actions(receiver) == [("trigger", "news:black:1")]
    assert metrics.failures.labels(notifier="oncall", retriable="true")._value.get() == 3
    assert metrics.delivered.labels(notifier="oncall")._value.get() == 1


async def test_a_receiver_refusing_connections_then_coming_up_gets_the_page_exactly_once(
    client: httpx.AsyncClient,
) -> None:
    receiver = Receiver()  # not listening yet
    outbox = Outbox(MemoryStateStore(), pagerduty_router(receiver, client), config=FAST)
    try:
        async with Running(outbox):
            await outbox.enqueue(opened())
            await asyncio.sleep(0.3)
            [entry] = await outbox.pending()
            assert entry.attempts >= 2
            assert "cannot reach" in (entry.last_error or "")
            await receiver.start()
            await settle(outbox)
            await asyncio.sleep(0.1)
    finally:
        await receiver.stop()
    assert actions(receiver) == [("trigger", "news:black:1")]


async def test_a_resolve_waits_for_its_trigger(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    receiver.statuses = [500, 500]
    outbox = Outbox(MemoryStateStore(), pagerduty_router(receiver, client), config=FAST)
    await outbox.enqueue(opened())
    await outbox.enqueue(resolved())
    async with Running(outbox):
        await settle(outbox)
    assert actions(receiver) == [("trigger", "news:black:1"), ("resolve", "news:black:1")]


async def test_alerts_do_not_wait_for_each_other(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    receiver.statuses = [503, 202]  # the first alert's trigger fails once, the second's passes
    outbox = Outbox(MemoryStateStore(), pagerduty_router(receiver, client), config=FAST)
    await outbox.enqueue(opened(make_alert("a")))
    await outbox.enqueue(opened(make_alert("b", opened_at=1.0)))
    async with Running(outbox):
        await settle(outbox)
    assert sorted(actions(receiver)) == [("trigger", "a"), ("trigger", "b")]


async def test_a_restarted_outbox_does_not_resend_what_was_delivered(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    state = MemoryStateStore()
    router = pagerduty_router(receiver, client)
    first = Outbox(state, router, config=FAST)
    async with Running(first):
        await first.enqueue(opened())
        await settle(first)
    await first.enqueue(resolved())  # stored, not yet sent when the process stops

    second = Outbox(state, router, config=FAST)
    async with Running(second):
        assert await second.enqueue(opened()) == 0  # the engine replays after restart
        assert await second.enqueue(resolved()) == 0  # already pending
        await settle(second)
        await asyncio.sleep(0.1)
    assert actions(receiver) == [("trigger", "news:black:1"), ("resolve", "news:black:1")]


async def test_a_key_marked_delivered_before_a_crash_is_cleared_without_sending(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    state = MemoryStateStore()
    outbox = Outbox(state, pagerduty_router(receiver, client), config=FAST)
    await outbox.enqueue(opened())
    [key] = await state.items(NS_PENDING)
    await state.set(NS_DELIVERED, key, "1")  # crashed between marking and deleting
    async with Running(outbox):
        await settle(outbox)
    assert receiver.requests == []


async def test_a_trigger_older_than_a_delivered_resolve_is_not_sent(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    outbox = Outbox(MemoryStateStore(), pagerduty_router(receiver, client), config=FAST)
    async with Running(outbox):
        await outbox.enqueue(resolved())
        await settle(outbox)
        assert await outbox.enqueue(opened()) == 0
    assert actions(receiver) == [("resolve", "news:black:1")]


async def test_a_refused_entry_is_dropped_and_not_retried(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    receiver.statuses = [400]
    metrics = OutboxMetrics(CollectorRegistry())
    outbox = Outbox(MemoryStateStore(), pagerduty_router(receiver, client), metrics, FAST)
    await outbox.enqueue(opened())
    async with Running(outbox):
        await settle(outbox)
        await asyncio.sleep(0.1)
    assert len(receiver.requests) == 1
    assert metrics.dropped.labels(notifier="oncall", reason="refused")._value.get() == 1


async def test_an_entry_failing_past_give_up_after_is_dropped(client: httpx.AsyncClient) -> None:
    receiver = Receiver()  # never up
    config = FAST.model_copy(update={"give_up_after": 0.2})
    metrics = OutboxMetrics(CollectorRegistry())
    outbox = Outbox(MemoryStateStore(), pagerduty_router(receiver, client), metrics, config)
    await outbox.enqueue(opened())
    async with Running(outbox):
        await settle(outbox)
    assert metrics.dropped.labels(notifier="oncall", reason="expired")._value.get() == 1


async def test_retries_back_off_exponentially_up_to_the_cap() -> None:
    config = OutboxConfig(backoff_base=1.0, backoff_max=10.0)
    outbox = Outbox(MemoryStateStore(), Router({}, []), config=config)
    delays = [outbox.retry.delay(n) for n in range(1, 7)]
    for delay, full in zip(delays, [1, 2, 4, 8, 10, 10], strict=True):
        assert 0.75 * full <= delay <= full


class FrozenClock:
    """The outbox's clock, moved by the test: an entry is due only when the test says so."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def paging_on_a_frozen_clock(
    receiver: Receiver, client: httpx.AsyncClient, **config: float
) -> tuple[Outbox, FrozenClock]:
    """An outbox with one page enqueued, whose entries fall due when the test moves the clock."""
    clock = FrozenClock()
    settings = FAST.model_copy(update=config)
    outbox = Outbox(
        MemoryStateStore(), pagerduty_router(receiver, client), config=settings, clock=clock
    )
    await outbox.enqueue(opened())
    return outbox, clock


async def failed(outbox: Outbox, attempts: int = 1) -> OutboxEntry:
    """The entry once ``attempts`` attempts have failed and it has been rescheduled."""
    deadline = time.monotonic() + 5
    while True:
        entries = await outbox.pending()
        if entries and entries[0].attempts == attempts:
            return entries[0]
        assert time.monotonic() < deadline, f"attempt {attempts} never failed"
        await asyncio.sleep(0.01)


async def test_a_receivers_retry_after_schedules_the_next_attempt_that_far_ahead(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    receiver.statuses = [(503, {"Retry-After": "30"})]
    outbox, clock = await paging_on_a_frozen_clock(receiver, client, retry_after_max=60.0)
    async with Running(outbox):
        entry = await failed(outbox)
        assert entry.next_at == clock.now + 30  # not FAST's 0.02 s back-off
        assert len(receiver.requests) == 1
        clock.now += 30
        await settle(outbox)
    assert actions(receiver) == [("trigger", "news:black:1")]


async def test_a_retry_after_an_hour_away_or_as_a_date_is_capped_at_retry_after_max(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    in_a_day = email.utils.formatdate(time.time() + 86_400, usegmt=True)
    receiver.statuses = [(429, {"Retry-After": "3600"}), (503, {"Retry-After": in_a_day})]
    outbox, clock = await paging_on_a_frozen_clock(receiver, client, retry_after_max=60.0)
    async with Running(outbox):
        assert (await failed(outbox, 1)).next_at == clock.now + 60
        clock.now += 60
        assert (await failed(outbox, 2)).next_at == clock.now + 60


async def test_without_retry_after_max_a_retry_after_is_capped_at_backoff_max(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    receiver.statuses = [(503, {"Retry-After": "3600"})]
    outbox, clock = await paging_on_a_frozen_clock(receiver, client, backoff_max=20.0)
    async with Running(outbox):
        entry = await failed(outbox)
    assert entry.next_at == clock.now + 20


async def test_updates_and_unrouted_severities_store_nothing(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    outbox = Outbox(MemoryStateStore(), pagerduty_router(receiver, client), config=FAST)
    update = AlertEvent(transition=AlertTransition.UPDATED, alert=make_alert())
    assert await outbox.enqueue(update) == 0
    assert await outbox.enqueue(opened(make_alert(severity="info"))) == 0
    assert await outbox.pending() == []


async def test_two_outboxes_on_one_store_send_each_entry_once(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    state = MemoryStateStore()
    router = pagerduty_router(receiver, client)
    a, b = Outbox(state, router, config=FAST), Outbox(state, router, config=FAST)
    for i in range(10):
        await a.enqueue(opened(make_alert(f"alert-{i}")))
    async with Running(a), Running(b):
        await settle(a)
        await asyncio.sleep(0.1)
    assert sorted(key for _, key in actions(receiver)) == sorted(f"alert-{i}" for i in range(10))


async def test_run_returns_within_a_second_of_stop(client: httpx.AsyncClient) -> None:
    outbox = Outbox(MemoryStateStore(), Router({}, []), config=OutboxConfig(poll_interval=1.0))
    running = Running(outbox)
    await running.__aenter__()
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await running.__aexit__()
    assert time.monotonic() - started < 1.0
