"""The HTTP API: health, readiness, Prometheus metrics, channels, alerts, acknowledgements,
silences, thumbnails, and the NOC status wall at ``/``.

Everything the handlers need comes from one :class:`ApiContext` given to :func:`create_app`,
so there is no module-level state and tests build an app per case. Errors share one shape,
``{"error": {"code": "not_found", "message": "..."}}``, whatever raised them.

Who may do what (:mod:`alerting.api.auth`): calls that change something (ack, silences) need
``Authorization: Bearer <VQM_API_TOKEN>``. Without a configured token they are refused (403)
unless the environment is ``local``, where a developer's loopback API is trusted. Reads under
``/api`` are open unless ``VQM_API_READ_TOKEN_REQUIRED`` is set; ``/healthz``, ``/readyz``,
``/metrics`` and the status page's static files are always open (probes and scrapers carry no
token; the page holds no data and sends the token it is given in its URL fragment).

    app = create_app(ApiContext(config=config, state=state, metrics=metrics, readiness=ready))
    await serve(app, "127.0.0.1", 8080, stop)   # uvicorn inside this event loop

The package: :mod:`~alerting.api.context` (what the app serves from),
:mod:`~alerting.api.schemas` (request and response bodies), :mod:`~alerting.api.auth` (who may
call what), :mod:`~alerting.api.errors` (one error shape), :mod:`~alerting.api.routes` (one
module per resource), :mod:`~alerting.api.app` (the app factory) and
:mod:`~alerting.api.server` (uvicorn in the caller's event loop).
"""

from alerting.api.app import create_app
from alerting.api.context import ApiContext
from alerting.api.schemas import ModelInfo
from alerting.api.server import serve

__all__ = ["ApiContext", "ModelInfo", "create_app", "serve"]
