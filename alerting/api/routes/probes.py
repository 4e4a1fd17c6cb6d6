"""Always open: the status wall and its labelling page, liveness and readiness (probes carry
no token)."""

from __future__ import annotations

import logging
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse

from alerting.api.context import ApiContext
from alerting.api.deps import Ctx
from alerting.api.schemas import Health, ModelInfo, ReadinessReport
from monitor.core.metrics import Metrics

logger = logging.getLogger(__name__)

STATIC_DIR = Path(str(files("alerting") / "static"))

router = APIRouter()


@router.get("/", include_in_schema=False)
async def status_wall() -> FileResponse:
    """The NOC status wall: one tile per channel, refreshed every two seconds."""
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/label.html", include_in_schema=False)
async def labelling_page() -> FileResponse:
    """The labelling page: a detector's queue of candidates, answered one by one."""
    return FileResponse(STATIC_DIR / "label.html", headers={"Cache-Control": "no-cache"})


@router.get("/healthz", response_model=Health, tags=["health"])
async def healthz() -> Health:
    """The process is alive (it answers); nothing else is checked."""
    return Health()


@router.get(
    "/readyz",
    response_model=ReadinessReport,
    responses={503: {"model": ReadinessReport}},
    tags=["health"],
)
async def readyz(ctx: Ctx) -> JSONResponse:
    """Bus, state and models answer: 200 with the component map, else 503."""
    report = await readiness(ctx)
    code = 200 if report.status == "ready" else 503
    return JSONResponse(report.model_dump(mode="json"), status_code=code)


async def readiness(ctx: ApiContext) -> ReadinessReport:
    try:
        if ctx.readiness is not None:
            components = dict(await ctx.readiness())
        else:
            components = {"state": await ctx.state.ready()}
    except Exception:
        logger.exception("readiness check failed")
        components = {"readiness_check": False}
    ready = bool(components) and all(components.values())
    return ReadinessReport(
        status="ready" if ready else "not_ready",
        components=components,
        models=list(ctx.models()) if ctx.models is not None else models_from(ctx.metrics),
    )


def models_from(metrics: Metrics) -> list[ModelInfo]:
    """Models as the inference worker announced them in ``vqm_model_info``."""
    found: dict[tuple[str, str], ModelInfo] = {}
    for family in metrics.model_info.collect():
        for sample in family.samples:
            if sample.value != 1:
                continue
            labels = sample.labels
            info = found.setdefault(
                (labels["model"], labels["version"]),
                ModelInfo(
                    name=labels["model"],
                    version=labels["version"],
                    sha256=labels.get("sha256") or None,
                ),
            )
            info.providers.append(labels["provider"])
    return list(found.values())
