"""The one registry every extension point is built on: plugins found in their package,
an unknown key named with the known ones, the discriminated config union."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from monitor.core.plugins import Registry


class _AConfig(BaseModel):
    type: Literal["a"] = "a"
    level: int = 1


class _BConfig(BaseModel):
    type: Literal["b"] = "b"


def _registry() -> Registry[type]:
    # A package with no plugin modules: what is registered below is all there is.
    registry: Registry[type] = Registry("widget", "monitor.core", infrastructure={"plugins"})
    registry._loaded = True  # the test registers its own plugins; nothing to import
    return registry


def test_plugins_are_found_by_key_and_an_unknown_key_names_the_known_ones() -> None:
    registry = _registry()

    @registry.register
    class A:
        key = "a"
        config_class = _AConfig

    assert registry.get("a") is A
    with pytest.raises(ValueError, match="unknown widget 'z'; known: a"):
        registry.get("z")


def test_a_key_registered_twice_by_two_classes_is_refused() -> None:
    registry = _registry()

    @registry.register
    class A:
        key = "a"

    with pytest.raises(ValueError, match="widget key 'a' registered twice"):

        @registry.register
        class Other:
            key = "a"


def test_the_config_union_parses_each_plugins_config_by_its_type() -> None:
    registry = _registry()
    for key, config in (("a", _AConfig), ("b", _BConfig)):
        registry.register(type(key.upper(), (), {"key": key, "config_class": config}))
    adapter = TypeAdapter(registry.config_union())
    assert adapter.validate_python({"type": "a", "level": 3}) == _AConfig(level=3)
    assert isinstance(adapter.validate_python({"type": "b"}), _BConfig)
    with pytest.raises(ValidationError, match="'a', 'b'"):
        adapter.validate_python({"type": "c"})


def test_a_plugin_may_have_several_keys() -> None:
    registry: Registry[type] = Registry(
        "scheme",
        "monitor.core",
        keys=lambda cls: cls.schemes,  # type: ignore[attr-defined]
    )
    registry._loaded = True

    @registry.register
    class Both:
        schemes = ("udp", "rtp")

    assert registry.get("udp") is registry.get("rtp") is Both


def test_the_real_registries_find_their_plugins_in_their_packages() -> None:
    from alerting.notifiers.registry import NOTIFIERS
    from monitor.inference.detectors.registry import DETECTORS
    from stream_ingest.sources.registry import SOURCES

    assert {
        "black",
        "freeze",
        "silence",
        "loudness",
        "stutter",
        "captions",
        "block_corruption",
        "audio_artifact",
        "av_sync",
    } == set(DETECTORS.types())
    assert {
        "alertmanager",
        "grafana",
        "opsgenie",
        "pagerduty",
        "slack",
        "teams",
        "webhook",
    } == set(NOTIFIERS.types())
    assert {"http", "https"} <= set(SOURCES.types())
