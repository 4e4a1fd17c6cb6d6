"""The decoder reads segments from origins: random bytes and damaged MPEG-TS are decoded as
far as they go or refused with a DecodeError, never anything else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.app.synthetic.channel import SyntheticChannel
from monitor.inference.media import DecodeError, decode_bytes

pytestmark = pytest.mark.fuzz
SEGMENT = SyntheticChannel(seed=77, width=160, height=90).segment_bytes(0)


def _decode(data: bytes) -> None:
    try:
        decoded = decode_bytes(data)
    except DecodeError:
        return
    assert decoded.luma.ndim == 3 and decoded.audio.ndim == 2


@given(st.binary(max_size=4096))
def test_random_bytes_decode_or_are_a_decode_error(data: bytes) -> None:
    _decode(data)


@given(st.lists(st.tuples(st.integers(0, len(SEGMENT) - 1), st.integers(0, 255)), max_size=60))
def test_a_segment_with_bytes_overwritten_decodes_or_is_a_decode_error(
    edits: list[tuple[int, int]],
) -> None:
    data = bytearray(SEGMENT)
    for at, value in edits:
        data[at] = value
    _decode(bytes(data))


@given(st.integers(0, len(SEGMENT)), st.integers(0, len(SEGMENT)))
def test_a_segment_cut_anywhere_decodes_or_is_a_decode_error(a: int, b: int) -> None:
    _decode(SEGMENT[: min(a, b)] + SEGMENT[max(a, b) :])
