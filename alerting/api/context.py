"""What the API serves from, built by the process that owns the clients."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from alerting.api.schemas import ModelInfo
from monitor.core.channels import Channels
from monitor.core.messages import now
from monitor.core.metrics import Metrics
from monitor.core.samples import SampleStore
from monitor.core.settings import Settings
from monitor.core.state import StateStore

Readiness = Callable[[], Awaitable[dict[str, bool]]]


@dataclass
class ApiContext:
    """What the API serves from; built by the process that owns the clients.

    ``readiness`` answers a component map (``{"bus": True, "state": True, "models": False}``);
    without it only the state store is checked. ``models`` lists loaded models; without it
    they are read from the ``vqm_model_info`` metric the inference worker sets. ``lifespan``
    opens and closes clients the API alone owns (none in the one-process mode).
    ``settings`` gives the API token rules; without it the defaults apply (local, no token).
    ``feedback`` is where operator feedback is kept when not in ``state`` (the one-process
    mode keeps it in a file while alert state stays in memory).
    ``candidates`` is the annotation candidates' store the labelling page shows pictures
    from; without it (not kept, or not on this machine) the pictures are 404.
    """

    config: Channels
    state: StateStore
    metrics: Metrics
    readiness: Readiness | None = None
    models: Callable[[], Sequence[ModelInfo]] | None = None
    lifespan: Callable[[], AbstractAsyncContextManager[None]] | None = None
    settings: Settings | None = None
    clock: Callable[[], float] = now
    feedback: StateStore | None = None
    candidates: SampleStore | None = None

    @property
    def feedback_state(self) -> StateStore:
        return self.feedback if self.feedback is not None else self.state

    @property
    def auth(self) -> Settings:
        # model_construct: the defaults, without reading the environment
        return self.settings if self.settings is not None else Settings.model_construct()
