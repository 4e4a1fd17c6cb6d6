"""The one registry of detector plugins; it builds the discriminated config union."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter

from monitor.core.plugins import Registry
from monitor.inference.detectors.base import Detector, DetectorConfig

if TYPE_CHECKING:
    from monitor.inference.models import ModelCache

DETECTORS: Registry[type[Detector]] = Registry(
    "detector", "monitor.inference.detectors", infrastructure={"base", "spans", "true_peak"}
)
register = DETECTORS.register


def detector_types() -> dict[str, type[Detector]]:
    """Every registered plugin by key (imports the plugin modules on first use)."""
    return DETECTORS.types()


def detector_class(key: str) -> type[Detector]:
    return DETECTORS.get(key)


def config_union() -> Any:
    """``Annotated[Union[...], Field(discriminator="type")]`` over every plugin's config."""
    return DETECTORS.config_union()


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


def build(config: DetectorConfig, models: ModelCache | None = None) -> Detector:
    """The detector ``config`` describes; learned ones take their models from ``models``."""
    return detector_class(config.type)(config, models)
