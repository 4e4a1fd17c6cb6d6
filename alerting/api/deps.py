"""What a route handler is given: the context and the alert store, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from alerting.api.context import ApiContext
from alerting.store import AlertStore


def get_context(request: Request) -> ApiContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


Ctx = Annotated[ApiContext, Depends(get_context)]


def get_store(ctx: Ctx) -> AlertStore:
    return AlertStore(ctx.state)


Store = Annotated[AlertStore, Depends(get_store)]
