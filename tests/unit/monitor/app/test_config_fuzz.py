"""The config loader reads what people type: any file is a config or a ConfigError naming
where, never a traceback."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from monitor.app.config import ConfigError, VqmConfig, load_config

pytestmark = pytest.mark.fuzz
KEYS = st.sampled_from(
    ["channels", "detectors", "ingest", "alerting", "notifications", "topics", "id", "url",
     "type", "enabled", "min_duration", "severity", "threshold", "routes", "notifiers", "bogus"]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
    st.sampled_from(["black", "freeze", "http://o/l.m3u8", "udp://x", "critical", "webhook"]),
)  # fmt: skip
DOCS = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=25,
)


def _load(text: str) -> VqmConfig:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "channels.yaml"
        path.write_text(text)
        return load_config(path)


@given(DOCS)
def test_any_yaml_document_is_a_config_or_a_config_error(doc: object) -> None:
    try:
        _load(yaml.safe_dump(doc))
    except ConfigError as exc:
        assert str(exc).strip()


@given(st.text(max_size=300))
def test_any_text_is_a_config_or_a_config_error(text: str) -> None:
    with contextlib.suppress(ConfigError):
        _load(text)
