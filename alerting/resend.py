"""Re-sending the alerts a receiver forgets (Alertmanager), as Prometheus does.

The outbox delivers each transition once. Alertmanager keeps alerts in memory: after a
restart it has none of vqm's, and it ends a firing alert at the ``endsAt`` it was sent with.
So every ``resend_interval`` the resender posts the current state of every alert routed to
such a notifier: open ones as firing (``endsAt`` a few intervals ahead, so they stay firing
while vqm lives and expire soon after it dies), and ones resolved within
``resolved_retention`` as resolved, so an Alertmanager that was away for a resolve hears it.

    resender = Resender(AlertStore(state), router, OutboxMetrics(metrics=metrics))
    task = asyncio.create_task(resender.run(stop))

Re-sending is idempotent at the receiver (the labels name the alert), so every alerting
replica re-sends without coordination. A failed re-send is logged and counted, and the next
interval tries again; the outbox stays what guarantees each transition's delivery. Alerts a
silence kept from pagers when they opened (``unpaged``) are never re-sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from alerting.models import Alert, AlertEvent, AlertTransition
from alerting.notifiers.base import Notifier, NotifierError
from alerting.notifiers.routing import Router
from alerting.outbox import OutboxMetrics
from alerting.store import AlertStore
from monitor.core.retry import pause

logger = logging.getLogger(__name__)


class Resender:
    """Re-asserts open (and recently resolved) alerts to notifiers with a ``resend_interval``."""

    def __init__(
        self,
        store: AlertStore,
        router: Router,
        metrics: OutboxMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.router = router
        self.metrics = metrics
        self.clock = clock  # wall clock, as alerts' resolved_at
        self._due: dict[str, float] = {}  # notifier -> next re-send, monotonic seconds

    @property
    def notifiers(self) -> dict[str, Notifier]:
        return {n: x for n, x in self.router.notifiers.items() if x.resend_interval is not None}

    async def run(self, stop: asyncio.Event) -> None:
        """Re-send until ``stop`` is set; the first round goes out at once (a restarted vqm
        re-asserts its alerts straight away)."""
        if not self.notifiers:
            return
        logger.info("re-sending open alerts to %s", ", ".join(sorted(self.notifiers)))
        while not stop.is_set():
            await self.resend_due()
            wait = min(self._due.values(), default=time.monotonic()) - time.monotonic()
            await pause(stop, max(wait, 0.01))

    async def resend_due(self) -> None:
        """One round: every notifier whose interval has passed gets the alerts routed to it."""
        started = time.monotonic()
        due = {n: x for n, x in self.notifiers.items() if self._due.get(n, started) <= started}
        for name, notifier in due.items():
            assert notifier.resend_interval is not None
            self._due[name] = started + notifier.resend_interval
        if not due:
            return
        try:
            active, recent = await self.store.active(), await self.store.recent()
        except Exception:
            logger.exception("resend: reading the alerts failed; trying again next interval")
            self._count_error()
            return
        for name, notifier in due.items():
            events = self.events_for(name, notifier, active, recent)
            if events:
                await self._resend(name, notifier, events)

    def events_for(
        self, name: str, notifier: Notifier, active: list[Alert], recent: list[Alert]
    ) -> list[AlertEvent]:
        """What ``name`` is to hear again: its open alerts, and resolves still retained."""
        now = self.clock()
        events = [AlertEvent(transition=AlertTransition.OPENED, alert=a) for a in active]
        events += [
            AlertEvent(transition=AlertTransition.RESOLVED, alert=a)
            for a in recent
            if a.resolved_at is not None and now - a.resolved_at <= notifier.resolved_retention
        ]
        return [e for e in events if not e.alert.unpaged and name in self.router.targets(e)]

    async def _resend(self, name: str, notifier: Notifier, events: list[AlertEvent]) -> None:
        try:
            await notifier.resend(events)
        except NotifierError as exc:
            logger.warning("resend: %s did not take %d alert(s): %s", name, len(events), exc)
            if self.metrics:
                self.metrics.failures.labels(
                    notifier=name, retriable=str(exc.retriable).lower()
                ).inc()
        except Exception:
            logger.exception("resend: %s failed unexpectedly", name)
            self._count_error()
        else:
            logger.debug("resend: %s took %d alert(s)", name, len(events))

    def _count_error(self) -> None:
        if self.metrics:
            self.metrics.errors.labels(where="resend").inc()
