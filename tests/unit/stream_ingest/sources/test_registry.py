"""Channels pick their ingest source by URL scheme; a scheme nothing reads is a config error."""

from __future__ import annotations

import pytest

from monitor.app.config import ConfigError, load_config
from stream_ingest.sources.hls import HlsFollower
from stream_ingest.sources.registry import scheme_of, source_class


def test_http_and_https_playlists_are_hls() -> None:
    assert source_class("https://cdn.example/live/index.m3u8") is HlsFollower
    assert source_class("HTTP://cdn.example/live.m3u8") is HlsFollower


def test_a_channel_cannot_be_a_local_file() -> None:
    """Local files are for `vqm scan PATH` only; a channel is followed from an origin."""
    assert scheme_of("C:/media/live.m3u8") == scheme_of("/srv/live.m3u8") == "file"
    with pytest.raises(ValueError, match="unknown source scheme 'file'; known: http, https"):
        source_class("/srv/test/live.m3u8")


def test_an_unknown_scheme_is_an_error_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown source scheme 'gopher'; known: .*https"):
        source_class("gopher://example/live")


def test_a_channel_whose_scheme_nothing_reads_fails_the_config_on_its_line(tmp_path) -> None:
    path = tmp_path / "channels.yaml"
    path.write_text("channels:\n  - id: news\n    url: gopher://example/live\n")
    with pytest.raises(ConfigError, match=r"channels.yaml:3: channels.0.url: .*'gopher'"):
        load_config(path)
