"""The API's routes, one module per resource; each exposes the routers it has:
``router`` (always open), ``read_router`` (behind ``require_read``) and ``write_router``
(behind ``require_write``). :func:`alerting.api.app.create_app` attaches them."""
