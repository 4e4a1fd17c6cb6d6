"""Fixtures of the ingest tests: a local origin and a follower harness on it."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.unit.stream_ingest.multivariant import pack_audio, write_master
from tests.unit.stream_ingest.origin import Harness, Origin


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    server = Origin()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def harness(origin: Origin) -> AsyncIterator[Harness]:
    h = Harness(origin)
    yield h
    h.stop.set()
    if h.task is not None:
        started = time.monotonic()
        await asyncio.wait_for(h.task, timeout=2)
        assert time.monotonic() - started < 1.0, "the follower took over a second to stop"


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """FFmpeg's multi-variant channel with a separate audio rendition, written once."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("needs FFmpeg's CLI (Debian package ffmpeg)")
    root = tmp_path_factory.mktemp("multivariant")
    write_master(root)
    return root


@pytest.fixture(scope="session")
def packed_media(tmp_path_factory: pytest.TempPathFactory, media: Path) -> Path:
    """The same channel with its audio rendition served as packed audio (``.aac``)."""
    root = tmp_path_factory.mktemp("packed")
    shutil.copytree(media, root, dirs_exist_ok=True)
    pack_audio(root)
    return root


@pytest.fixture(scope="session")
def fmp4_media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The channel as FFmpeg writes it with ``-hls_segment_type fmp4``."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("needs FFmpeg's CLI (Debian package ffmpeg)")
    root = tmp_path_factory.mktemp("fmp4")
    write_master(root, fmp4=True)
    return root
