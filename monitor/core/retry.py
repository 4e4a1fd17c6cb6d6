"""One retry policy for every request vqm retries: exponential, capped, jittered, and
honouring a server's ``Retry-After`` up to a limit.

A stage builds a :class:`RetryPolicy` from its settings and either lets it run the retries
(fetching a segment, connecting to Kafka) or asks it for the delay of a retry it schedules
itself (an outbox entry whose attempts are stored; the Redis outage gate)::

    policy = RetryPolicy(initial=0.25, cap=5.0, max_retries=3)
    body = await policy.run(
        lambda: fetch(url),
        retriable=lambda exc: isinstance(exc, FetchError) and exc.retriable,
        on_retry=lambda exc, attempt, delay: logger.debug("retry %d in %.2f s", attempt, delay),
    )
    entry.next_at = now + policy.delay(entry.attempts, retry_after=exc.retry_after)

The loop is tenacity's (:class:`tenacity.AsyncRetrying`); the wait is tenacity's
``wait_exponential`` scaled by a random factor in ``[1 - jitter, 1]``. The jitter is
proportional rather than tenacity's additive ``wait_exponential_jitter`` because that one is
clamped to ``max`` after adding: at the cap every client would retry at the same instant
again, which is where spreading them matters most.

``Retry-After`` (RFC 9110, 10.2.3) comes on an error as its ``retry_after`` attribute, in
seconds (:func:`parse_retry_after` reads both the delta-seconds and the HTTP-date form). The
policy then waits at least that long, but never longer than ``retry_after_max`` (by default
the cap): a hostile or confused server must not hold a channel or a page back for an hour.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_never,
    wait_exponential,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

#: Called before each retry's wait: the error, the number of failed attempts so far, the delay.
OnRetry = Callable[[BaseException, int, float], None]


class RetryStopped(Exception):
    """The stop event was set while :meth:`RetryPolicy.run` waited to try again."""


class RetryPolicy(BaseModel):
    """How long to wait before each retry, and how many retries there are.

    >>> policy = RetryPolicy(initial=1.0, cap=10.0, jitter=0.0)
    >>> [policy.delay(n) for n in range(1, 6)]
    [1.0, 2.0, 4.0, 8.0, 10.0]
    >>> policy.delay(1, retry_after=30.0)  # the server asked for 30 s; the cap is 10 s
    10.0
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    initial: float = Field(default=0.25, gt=0, description="First retry delay, seconds.")
    cap: float = Field(default=5.0, gt=0, description="Longest back-off delay, seconds.")
    jitter: float = Field(
        default=0.25,
        ge=0,
        le=1,
        description="Each delay is drawn from [(1 - jitter) * d, d], so clients do not align.",
    )
    max_retries: int | None = Field(
        default=None,
        ge=0,
        description="Retries after the first try; None: until it succeeds or the caller stops.",
    )
    retry_after_max: float | None = Field(
        default=None,
        gt=0,
        description="Longest wait a server's Retry-After may impose, seconds; None: the cap.",
    )

    @classmethod
    def of(cls, backoff: RetryPolicy | tuple[float, float]) -> RetryPolicy:
        """A policy, or one from the ``(initial, cap)`` pair older call sites pass."""
        if isinstance(backoff, RetryPolicy):
            return backoff
        initial, cap = backoff
        return cls(initial=initial, cap=cap)

    @property
    def longest_retry_after(self) -> float:
        return self.retry_after_max if self.retry_after_max is not None else self.cap

    def backoff(self, attempt: int) -> float:
        """The jittered exponential delay after failed attempt number ``attempt`` (from 1)."""
        return _Backoff(self)(_state_after(attempt))

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """The wait after failed attempt ``attempt`` (from 1), at least ``retry_after``
        (capped at ``longest_retry_after``): for retries whose attempts are stored and
        scheduled rather than looped."""
        return self.honour(self.backoff(attempt), retry_after)

    def honour(self, backoff: float, retry_after: float | None) -> float:
        """``backoff``, or the server's ``retry_after`` when longer, up to its limit."""
        if retry_after is None or not math.isfinite(retry_after):
            return backoff
        return max(backoff, min(max(float(retry_after), 0.0), self.longest_retry_after))

    async def run(
        self,
        attempt: Callable[[], Awaitable[_T]],
        *,
        retriable: Callable[[Exception], bool],
        on_retry: OnRetry,
        stop: asyncio.Event | None = None,
    ) -> _T:
        """Await ``attempt()`` until it returns, retrying the errors ``retriable`` accepts.

        The last error propagates once ``max_retries`` are spent, and any other error at
        once. ``on_retry`` is told of every retry before its wait (log it there: a retry is
        never silent). With ``stop``, the wait ends as soon as it is set and
        :class:`RetryStopped` is raised; no attempt starts once it is set.
        """
        retrying = AsyncRetrying(
            sleep=_sleep_unless_stopped(stop),
            stop=self._stop(),
            wait=_WaitHonouringRetryAfter(self),
            retry=retry_if_exception(lambda exc: isinstance(exc, Exception) and retriable(exc)),
            before_sleep=_reporter(on_retry),
            reraise=True,
        )
        if stop is not None and stop.is_set():
            raise RetryStopped

        async def call() -> _T:
            # tenacity awaits only coroutine functions; a lambda returning a coroutine would
            # count as a plain function and its coroutine be returned unawaited.
            return await attempt()

        return await retrying(call)

    def _stop(self) -> stop_base:
        if self.max_retries is None:
            return stop_never
        return stop_after_attempt(self.max_retries + 1)


class BackoffSettings(BaseModel):
    """The retry keys a stage's settings section shares; the section gives ``backoff_base``
    and ``backoff_max`` its own defaults and builds its policy with :meth:`retry_policy`."""

    backoff_base: float = Field(gt=0, description="First retry delay, seconds.")
    backoff_max: float = Field(gt=0, description="Longest retry delay, seconds.")
    backoff_jitter: float = Field(
        default=0.25, ge=0, le=1, description="Each delay is cut by up to this share, at random."
    )
    retry_after_max: float | None = Field(
        default=None,
        gt=0,
        description="Longest wait a server's Retry-After may impose, seconds; None: backoff_max.",
    )

    def retry_policy(self, max_retries: int | None = None) -> RetryPolicy:
        return RetryPolicy(
            initial=self.backoff_base,
            cap=self.backoff_max,
            jitter=self.backoff_jitter,
            max_retries=max_retries,
            retry_after_max=self.retry_after_max,
        )


class _Backoff(wait_base):
    """tenacity's exponential wait from ``initial`` doubling to ``cap``, scaled down by a
    random factor of at most ``jitter``."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._exponential = wait_exponential(multiplier=policy.initial, max=policy.cap)
        self._jitter = policy.jitter

    def __call__(self, retry_state: RetryCallState) -> float:
        full = float(self._exponential(retry_state))
        return full * random.uniform(1.0 - self._jitter, 1.0)


class _WaitHonouringRetryAfter(wait_base):
    """The back-off, or the failed attempt's ``retry_after`` when the server asked longer."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._backoff = _Backoff(policy)

    def __call__(self, retry_state: RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome is not None else None
        return self._policy.honour(self._backoff(retry_state), retry_after_of(error))


def retry_after_of(error: BaseException | None) -> float | None:
    """The ``retry_after`` seconds an error carries (FetchError, NotifierError), if any."""
    value = getattr(error, "retry_after", None)
    return float(value) if isinstance(value, int | float) else None


def _state_after(attempt: int) -> RetryCallState:
    """A tenacity call state standing after failed attempt ``attempt``, for :meth:`delay`."""
    if attempt < 1:
        raise ValueError(f"attempt counts failed attempts from 1, got {attempt}")
    state = RetryCallState(retry_object=AsyncRetrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    return state


def _reporter(on_retry: OnRetry) -> Callable[[RetryCallState], None]:
    def report(retry_state: RetryCallState) -> None:
        assert retry_state.outcome is not None and retry_state.next_action is not None
        error = retry_state.outcome.exception()
        assert error is not None  # only failures are retried
        on_retry(error, retry_state.attempt_number, retry_state.next_action.sleep)

    return report


def _sleep_unless_stopped(stop: asyncio.Event | None) -> Callable[[float], Awaitable[None]]:
    """asyncio.sleep, or, with ``stop``, a wait that ``stop`` ends at once (RetryStopped)."""
    if stop is None:
        return asyncio.sleep

    async def sleep(seconds: float) -> None:
        await pause(stop, seconds)
        if stop.is_set():
            raise RetryStopped

    return sleep


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds (``120``) or an HTTP-date
    (``Wed, 21 Oct 2015 07:28:00 GMT``, from ``now``, never negative). None when absent or
    unreadable: the plain back-off then applies, and the value is logged for whoever asks."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        logger.debug("ignoring an unreadable Retry-After: %r", value)
        return None
    if moment.tzinfo is None:  # "-0000" reads as naive; RFC 9110 dates are GMT
        moment = moment.replace(tzinfo=dt.UTC)
    return max(0.0, moment.timestamp() - now())


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds`` unless ``stop`` is set first (a stage's wait after a failure)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
