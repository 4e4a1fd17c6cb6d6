"""The one registry of detector plugins; it builds the discriminated config union."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter

from monitor.inference.detectors.base import Detector, DetectorConfig

_REGISTRY: dict[str, type[Detector]] = {}
_PLUGINS_LOADED = False


def register(cls: type[Detector]) -> type[Detector]:
    """Class decorator: make a detector plugin known by its ``key``."""
    if cls.key in _REGISTRY and _REGISTRY[cls.key] is not cls:
        raise ValueError(f"detector key {cls.key!r} registered twice")
    _REGISTRY[cls.key] = cls
    return cls


def _load_plugins() -> None:
    global _PLUGINS_LOADED
    import monitor.inference.detectors as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name not in ("base", "registry"):
            importlib.import_module(f"monitor.inference.detectors.{info.name}")
    _PLUGINS_LOADED = True


def detector_types() -> dict[str, type[Detector]]:
    """Every registered plugin by key (imports the plugin modules on first use).

    Loading is tracked apart from registration: a plugin module imported directly (a test,
    a training script) registers itself, and the others must still be found.
    """
    if not _PLUGINS_LOADED:
        _load_plugins()
    return dict(_REGISTRY)


def detector_class(key: str) -> type[Detector]:
    types = detector_types()
    if key not in types:
        raise ValueError(f"unknown detector {key!r}; known: {', '.join(sorted(types))}")
    return types[key]


def config_union() -> Any:
    """``Annotated[Union[...], Field(discriminator="type")]`` over every plugin's config."""
    configs = tuple(cls.config_class for cls in detector_types().values())
    if len(configs) == 1:
        return configs[0]
    return Annotated[Union[configs], Field(discriminator="type")]  # noqa: UP007


def parse_detector_config(data: dict[str, Any]) -> DetectorConfig:
    """Validate one detector's settings; an unknown ``type`` is an error naming it."""
    key = data.get("type")
    if not isinstance(key, str):
        raise ValueError("detector config needs a 'type'")
    detector_class(key)  # raises naming the unknown key
    return TypeAdapter(config_union()).validate_python(data)  # type: ignore[no-any-return]


def default_configs() -> dict[str, DetectorConfig]:
    """Each plugin's config with its defaults, by key."""
    return {key: cls.config_class(type=key) for key, cls in detector_types().items()}


def build(config: DetectorConfig) -> Detector:
    return detector_class(config.type)(config)
