"""The one retry policy: exponential, capped, jittered, honouring Retry-After up to a limit."""

from __future__ import annotations

import asyncio
import email.utils
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.retry import RetryPolicy, RetryStopped, parse_retry_after

NOW = 1_700_000_000.0


class Flaky(Exception):
    """A retriable failure, optionally carrying the server's Retry-After."""

    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__("flaky")
        self.retry_after = retry_after


def test_delays_double_from_the_initial_one_up_to_the_cap() -> None:
    policy = RetryPolicy(initial=1.0, cap=10.0, jitter=0.0)
    assert [policy.delay(n) for n in range(1, 8)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


def test_a_huge_attempt_number_stays_at_the_cap() -> None:
    assert RetryPolicy(initial=0.5, cap=30.0, jitter=0.0).delay(10_000) == 30.0


@given(attempt=st.integers(1, 40), jitter=st.floats(0.0, 1.0))
def test_jitter_keeps_each_delay_between_its_share_of_the_full_delay_and_the_full_delay(
    attempt: int, jitter: float
) -> None:
    policy = RetryPolicy(initial=1.0, cap=60.0, jitter=jitter)
    full = min(60.0, 2.0 ** (attempt - 1))
    assert (1 - jitter) * full - 1e-9 <= policy.delay(attempt) <= full


def test_jitter_spreads_retries_even_at_the_cap() -> None:
    policy = RetryPolicy(initial=1.0, cap=8.0, jitter=0.5)
    delays = {policy.delay(20) for _ in range(50)}
    assert len(delays) > 1 and all(4.0 <= d <= 8.0 for d in delays)


def test_a_longer_retry_after_is_waited_and_a_shorter_one_does_not_cut_the_back_off() -> None:
    policy = RetryPolicy(initial=1.0, cap=60.0, jitter=0.0)
    assert policy.delay(1, retry_after=20.0) == 20.0
    assert policy.delay(4, retry_after=2.0) == 8.0
    assert policy.delay(1, retry_after=None) == 1.0


def test_retry_after_is_capped_at_the_cap_or_at_retry_after_max() -> None:
    assert RetryPolicy(initial=1.0, cap=30.0, jitter=0.0).delay(1, retry_after=3600) == 30.0
    capped = RetryPolicy(initial=1.0, cap=30.0, jitter=0.0, retry_after_max=120.0)
    assert capped.delay(1, retry_after=3600) == 120.0
    assert capped.delay(1, retry_after=90) == 90.0


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        RetryPolicy().delay(0)


def test_retry_after_reads_delta_seconds() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 0 ") == 0.0


def test_retry_after_reads_an_http_date_as_seconds_from_now() -> None:
    header = email.utils.formatdate(NOW + 90, usegmt=True)  # "Tue, 14 Nov 2023 22:14:50 GMT"
    assert parse_retry_after(header, now=lambda: NOW) == pytest.approx(90.0)
    assert parse_retry_after(header.replace("GMT", "-0000"), now=lambda: NOW) == 90.0


def test_a_date_in_the_past_means_now_and_garbage_means_no_retry_after() -> None:
    past = email.utils.formatdate(NOW - 600, usegmt=True)
    assert parse_retry_after(past, now=lambda: NOW) == 0.0
    for value in (None, "", "soon", "-5", "1e9", "Fri, 99 Foo 2015 99:99:99 GMT"):
        assert parse_retry_after(value) is None, value


async def test_run_retries_retriable_errors_and_returns_the_result() -> None:
    calls: list[int] = []
    retries: list[tuple[int, float]] = []

    async def attempt() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise Flaky()
        return "ok"

    policy = RetryPolicy(initial=0.01, cap=0.02, jitter=0.0)
    result = await policy.run(
        attempt, retriable=lambda e: True, on_retry=lambda e, n, d: retries.append((n, d))
    )
    assert result == "ok" and len(calls) == 3
    assert retries == [(1, 0.01), (2, 0.02)]


async def test_run_gives_up_after_max_retries_with_the_last_error() -> None:
    calls: list[int] = []

    async def attempt() -> None:
        calls.append(1)
        raise Flaky()

    policy = RetryPolicy(initial=0.001, cap=0.001, max_retries=2)
    with pytest.raises(Flaky):
        await policy.run(attempt, retriable=lambda e: True, on_retry=lambda *a: None)
    assert len(calls) == 3


async def test_run_raises_an_error_it_may_not_retry_at_once() -> None:
    calls: list[int] = []

    async def attempt() -> None:
        calls.append(1)
        raise KeyError("bug")

    with pytest.raises(KeyError):
        await RetryPolicy().run(
            attempt, retriable=lambda e: isinstance(e, Flaky), on_retry=lambda *a: None
        )
    assert len(calls) == 1


async def test_run_waits_for_the_retry_after_an_error_carries_up_to_its_limit() -> None:
    waits: list[float] = []

    async def attempt() -> None:
        raise Flaky(retry_after=3600)

    policy = RetryPolicy(initial=0.001, cap=0.001, max_retries=1, retry_after_max=0.05)
    began = time.monotonic()
    with pytest.raises(Flaky):
        await policy.run(
            attempt, retriable=lambda e: True, on_retry=lambda e, n, d: waits.append(d)
        )
    assert waits == [0.05] and time.monotonic() - began >= 0.05


async def test_setting_stop_ends_the_wait_at_once() -> None:
    stop = asyncio.Event()

    async def attempt() -> None:
        raise Flaky()

    policy = RetryPolicy(initial=30.0, cap=30.0)
    task = asyncio.create_task(
        policy.run(attempt, retriable=lambda e: True, on_retry=lambda *a: None, stop=stop)
    )
    await asyncio.sleep(0)  # let the first attempt fail and the wait begin
    began = time.monotonic()
    stop.set()
    with pytest.raises(RetryStopped):
        await asyncio.wait_for(task, 1.0)
    assert time.monotonic() - began < 1.0


async def test_no_attempt_starts_once_stop_is_set() -> None:
    stop = asyncio.Event()
    stop.set()

    async def attempt() -> None:
        raise AssertionError("attempted after stop")

    with pytest.raises(RetryStopped):
        await RetryPolicy().run(
            attempt, retriable=lambda e: True, on_retry=lambda *a: None, stop=stop
        )


async def test_an_attempt_given_as_a_lambda_returning_a_coroutine_is_awaited() -> None:
    async def answer() -> int:
        return 42

    policy = RetryPolicy()
    assert (
        await policy.run(lambda: answer(), retriable=lambda e: True, on_retry=lambda *a: None) == 42
    )
