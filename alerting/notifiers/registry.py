"""The one registry of notifier plugins; it builds the discriminated config union.

A notifier is one module in this package: a config with ``type: Literal[<key>]`` and one
:class:`~alerting.notifiers.base.Notifier` subclass decorated with :func:`register`.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel

from alerting.links import PageLinks
from alerting.notifiers.base import Notifier
from monitor.core.plugins import Registry

NOTIFIERS: Registry[type[Notifier]] = Registry(
    "notifier", "alerting.notifiers", infrastructure={"base", "routing", "text"}
)
register = NOTIFIERS.register


def config_union() -> Any:
    """``Annotated[Union[...], Field(discriminator="type")]`` over every notifier's config."""
    return NOTIFIERS.config_union()


def build_notifier(
    name: str, config: BaseModel, client: httpx.AsyncClient, links: PageLinks | None = None
) -> Notifier:
    """The notifier ``config`` describes, named ``name``, posting through ``client``, its
    pages carrying ``links`` (none when None)."""
    cls = NOTIFIERS.get(config.type)  # type: ignore[attr-defined]
    return cls(name, config, client, links=links)  # type: ignore[call-arg]
