"""Wiring the stages: each stage as a runnable unit, and all of them in one process.

One :class:`Runtime` owns the clients (bus, state store, metrics, the model cache of the
inference stage, and for the alert stage the one HTTP client every notifier shares) for a
process: it starts them, runs the stages it was asked for as child tasks, and on stop cancels
and awaits them, then closes the clients in reverse order of start-up, within a time limit.
A stage's modules are imported only when the process runs that stage, so ``vqm ingest`` and
``vqm alert`` never load PyAV, ONNX Runtime or OpenCV. The alert stage is the alerting worker plus
the paging outbox, whose listener hears every alert transition (silenced ones do not page).

    runtime = Runtime(config, settings)             # memory bus and state unless settings say
    await runtime.run(stop, stages={"ingest", "infer", "alert", "api"})

In the distributed mode (``settings.redis_url`` set) each process runs one stage plus "api"
(health, readiness and metrics): ingest follows only the channels whose lease it holds
(:mod:`stream_ingest.owned`), and consumer groups are named after ``settings.deployment``.
The API comes up before the bus connects, so ``/readyz`` answers 503 while the broker is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

import httpx

from alerting.api import ApiContext, create_app, serve
from alerting.engine import AlertEngine
from alerting.links import PageLinks
from alerting.models import AlertEvent
from alerting.notifiers import build_notifiers
from alerting.outbox import Outbox, OutboxMetrics
from alerting.resend import Resender
from alerting.worker import AlertingWorker
from monitor.app.config import VqmConfig
from monitor.app.telemetry import export_known_series
from monitor.core.bus import Bus, MemoryBus
from monitor.core.metrics import Metrics
from monitor.core.samples import SampleLimits, SampleStore
from monitor.core.settings import Settings
from monitor.core.state import MemoryStateStore, StateStore

if TYPE_CHECKING:
    from monitor.inference.models import ModelCache
    from monitor.inference.worker import InferenceWorker
    from stream_ingest.owned import OwnedIngest
    from stream_ingest.service import IngestService

logger = logging.getLogger(__name__)

ALL_STAGES = frozenset({"ingest", "infer", "alert", "api"})
Listener = Callable[[AlertEvent], Awaitable[None]]
SHUTDOWN_SECONDS = 8.0


def make_bus(settings: Settings, metrics: Metrics) -> Bus:
    if settings.kafka_bootstrap:
        from monitor.core.bus_kafka import KafkaBus

        return KafkaBus(settings.kafka_bootstrap, client_id=f"{settings.deployment}")
    return MemoryBus(
        settings.memory_bus_max_bytes,
        on_drop=lambda topic, n: metrics.bus_dropped.labels(topic).inc(n),
    )


def make_state(settings: Settings) -> StateStore:
    if settings.redis_url:
        from monitor.core.state_redis import RedisStateStore

        return RedisStateStore(settings.redis_url, deployment=settings.deployment)
    return MemoryStateStore()


def make_feedback_state(settings: Settings, state: StateStore) -> StateStore:
    """Where operator feedback is kept: the Redis state in the distributed mode, else a file
    in the data directory (alert state may be in memory; labels must survive a restart)."""
    if settings.redis_url:
        return state
    from monitor.core.state_file import FileStateStore

    return FileStateStore(settings.data_path / "feedback.json")


def make_samples(settings: Settings, metrics: Metrics) -> SampleStore | None:
    """The sample store of flagged segments in the data directory; None when turned off."""
    if settings.samples_per_channel == 0:
        return None
    limits = SampleLimits(
        per_channel=settings.samples_per_channel,
        max_bytes=settings.samples_max_bytes,
        retention=settings.samples_retention,
    )
    return SampleStore(
        settings.data_path / "samples",
        limits,
        on_evict=lambda reason, _: metrics.samples_evicted.labels(reason).inc(),
    )


def make_candidates(settings: Settings) -> SampleStore | None:
    """The annotation candidates in the data directory; None when turned off."""
    if settings.candidates_every == 0:
        return None
    limits = SampleLimits(
        per_channel=settings.candidates_per_channel,
        max_bytes=settings.candidates_max_bytes,
        retention=settings.samples_retention,
    )
    return SampleStore(settings.data_path / "candidates", limits)


class Runtime:
    """The clients of one process and the stages it runs."""

    def __init__(
        self,
        config: VqmConfig,
        settings: Settings | None = None,
        *,
        metrics: Metrics | None = None,
        bus: Bus | None = None,
        state: StateStore | None = None,
        listeners: list[Listener] | None = None,
    ) -> None:
        self.config = config
        self.settings = settings or Settings()
        self.metrics = metrics or Metrics()
        self.bus = bus or make_bus(self.settings, self.metrics)
        self.state = state or make_state(self.settings)
        self.feedback = make_feedback_state(self.settings, self.state)
        self.engine = AlertEngine(config, self.state, self.metrics, list(listeners or []))
        self.inference: InferenceWorker | None = None
        self.models: ModelCache | None = None
        self.ingest: IngestService | OwnedIngest | None = None
        self.outbox: Outbox | None = None
        self.resender: Resender | None = None
        self._http: httpx.AsyncClient | None = None
        self._stages: set[str] = set()

    async def ready(self) -> dict[str, bool]:
        """Readiness of what this process runs (for /readyz)."""
        checks = {"bus": await self.bus.ready(), "state": await self.state.ready()}
        if "infer" in self._stages:
            checks["models"] = self.inference is not None and self.inference.ready
        return checks

    @functools.cached_property
    def candidates(self) -> SampleStore | None:
        """The annotation candidates, one store for the process: the inference stage writes
        it, the API shows its pictures (opened when first needed)."""
        return make_candidates(self.settings)

    def api_context(self) -> ApiContext:
        return ApiContext(
            config=self.config,
            state=self.state,
            metrics=self.metrics,
            readiness=self.ready,
            settings=self.settings,
            feedback=self.feedback,
            candidates=self.candidates,
        )

    def _start_paging(self) -> Outbox:
        """The shared notifier client, the router and the outbox, listening to the engine."""
        self._http = httpx.AsyncClient()
        links = PageLinks.from_settings(self.settings)
        router = build_notifiers(self.config.notifications, self._http, links)
        outbox = Outbox(
            self.state, router, OutboxMetrics(metrics=self.metrics), self.config.alerting.outbox
        )
        self.engine.add_listener(outbox.listener)
        self.resender = Resender(self.engine.store, router, OutboxMetrics(metrics=self.metrics))
        if router.notifiers:
            logger.info("paging through %s", ", ".join(sorted(router.notifiers)))
        return outbox

    async def _stop_paging(self) -> None:
        if self.outbox is not None:
            self.engine.listeners.remove(self.outbox.listener)
            self.outbox = None
        self.resender = None
        if self._http is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._http.aclose(), SHUTDOWN_SECONDS)
            self._http = None

    async def _alert_stage(self, stop: asyncio.Event) -> None:
        """The alerting worker, the outbox and the resender together: one stage, one
        failure domain."""
        assert self.outbox is not None and self.resender is not None
        worker = AlertingWorker(
            self.bus, self.config.topics, self.engine, group=f"{self.settings.deployment}-alerting"
        )
        async with asyncio.TaskGroup() as group:
            group.create_task(worker.run(stop), name="vqm-alert-worker")
            group.create_task(self.outbox.run(stop), name="vqm-alert-outbox")
            group.create_task(self.resender.run(stop), name="vqm-alert-resend")

    def _stage_coroutines(
        self, stages: set[str], stop: asyncio.Event, channel_ids: list[str] | None
    ) -> dict[str, Coroutine[Any, Any, None]]:
        coros: dict[str, Coroutine[Any, Any, None]] = {}
        if "alert" in stages:
            self.outbox = self._start_paging()
            coros["alert"] = self._alert_stage(stop)
        if "infer" in stages:
            self.inference = self._inference_worker()
            coros["infer"] = self.inference.run(stop)
        if "ingest" in stages:
            self.ingest = self._ingest_service(channel_ids)
            coros["ingest"] = self.ingest.run(stop)
        return coros

    def _inference_worker(self) -> InferenceWorker:
        """The inference stage and the model cache it shares between channels."""
        from monitor.inference.models import ModelCache
        from monitor.inference.worker import InferenceWorker

        self.models = ModelCache(self.settings.model_dir, self.settings.providers)
        group = f"{self.settings.deployment}-inference"
        reload = self.settings.model_reload_interval or None
        return InferenceWorker(
            self.config,
            self.bus,
            self.metrics,
            self.models,
            group=group,
            reload_interval=reload,
            samples=make_samples(self.settings, self.metrics),
            candidates=self.candidates,
            candidates_every=self.settings.candidates_every,
        )

    def _ingest_service(self, channel_ids: list[str] | None) -> IngestService | OwnedIngest:
        """Leased channels in the distributed mode (unless channels were named), else all."""
        from stream_ingest.owned import OwnedIngest
        from stream_ingest.service import IngestService

        if self.settings.redis_url and channel_ids is None:
            from stream_ingest.leases import ChannelLeases

            worker_id = self.settings.worker_id or f"{socket.gethostname()}-{os.getpid()}"
            leases = ChannelLeases(self.state, worker_id, self.settings.lease_ttl)
            return OwnedIngest(self.config, self.bus, self.metrics, leases)
        return IngestService(self.config, self.bus, self.metrics, channel_ids, state=self.state)

    async def _check_topics(self, stop: asyncio.Event) -> bool:
        """On Kafka, wait for the topics to exist (never letting the broker create them with
        its defaults) and refuse a segments topic too small for ``ingest.max_segment_bytes``
        (:class:`~monitor.core.topics.TopicMismatchError`); False if stopped first."""
        if not self.settings.kafka_bootstrap:
            return True
        from monitor.core.topics import wait_for_topics

        carries_segments = bool(self._stages & {"ingest", "infer"})
        size = self.config.ingest.max_segment_bytes if carries_segments else None
        return await wait_for_topics(self.settings.kafka_bootstrap, self.config.topics, size, stop)

    async def run(
        self,
        stop: asyncio.Event,
        stages: set[str] | frozenset[str] = ALL_STAGES,
        channel_ids: list[str] | None = None,
    ) -> None:
        """Run ``stages`` until ``stop`` is set or one of them fails."""
        self._stages = set(stages)
        export_known_series(self.metrics, self.config, self._stages, self.settings.revision)
        await self.state.start()
        if self.feedback is not self.state:
            await self.feedback.start()
        tasks: dict[str, asyncio.Task[None]] = {}
        try:
            if "api" in self._stages:  # first, so /readyz answers while the bus connects
                app = create_app(self.api_context())
                api = serve(app, self.settings.api_host, self.settings.api_port, stop)
                tasks["api"] = asyncio.create_task(api, name="vqm-api")
            if not await _start_bus(self.bus, stop, tasks):
                return
            if not await self._check_topics(stop):
                return
            for name, coro in self._stage_coroutines(self._stages, stop, channel_ids).items():
                tasks[name] = asyncio.create_task(coro, name=f"vqm-{name}")
            await _wait_stop_or_failure(stop, tasks)
        finally:
            stop.set()
            await _drain(tasks)
            await self._stop_paging()
            if self.models is not None:
                self.models.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.bus.stop(), SHUTDOWN_SECONDS)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.state.stop(), SHUTDOWN_SECONDS)


async def _start_bus(bus: Bus, stop: asyncio.Event, tasks: dict[str, asyncio.Task[None]]) -> bool:
    """Start the bus (it waits for a broker that is not up yet); False if stopped first.

    A stage already running (the API) that fails meanwhile is raised as in
    :func:`_wait_stop_or_failure`.
    """
    starting = asyncio.create_task(bus.start(), name="vqm-bus-start")
    try:
        await _wait_stop_or_failure(stop, {**tasks, "bus": starting}, until=starting)
    finally:
        if not starting.done():
            await bus.stop()  # makes a waiting start return
            with contextlib.suppress(Exception):
                await asyncio.wait_for(starting, SHUTDOWN_SECONDS)
    return starting.done() and not stop.is_set()


async def _wait_stop_or_failure(
    stop: asyncio.Event,
    tasks: dict[str, asyncio.Task[None]],
    until: asyncio.Task[None] | None = None,
) -> None:
    """Return when ``stop`` is set or ``until`` has finished; raise when a task fails.

    A stage that returns normally (ingest at the end of a VOD playlist) is logged and the
    others carry on: the segments it published still have to be analysed and alerted.
    """
    running = dict(tasks)
    stopper = asyncio.create_task(stop.wait())
    try:
        while not stop.is_set():
            done, _ = await asyncio.wait(
                [stopper, *running.values()], return_when="FIRST_COMPLETED"
            )
            for name, task in list(running.items()):
                if task not in done:
                    continue
                del running[name]
                if not task.cancelled() and task.exception() is not None:
                    logger.error("stage %s failed: %s", name, task.exception())
                    raise RuntimeError(f"stage {name} failed") from task.exception()
                if task is until:
                    return
                logger.info("stage %s finished; the others carry on", name)
    finally:
        stopper.cancel()


async def _drain(tasks: dict[str, asyncio.Task[None]]) -> None:
    """Let stages see the stop event, then cancel what is still running."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks.values(), timeout=SHUTDOWN_SECONDS)
    for task in pending:
        logger.warning("stage %s did not stop in time; cancelling", task.get_name())
        task.cancel()
    await asyncio.gather(*tasks.values(), return_exceptions=True)
