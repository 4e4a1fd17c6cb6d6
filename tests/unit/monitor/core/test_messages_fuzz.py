"""The message decoder reads the bus: any bytes are a message or a MessageError."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.messages import (
    DetectionMessage,
    MessageError,
    SegmentMessage,
    StreamEvent,
    decode_message,
    encode_message,
)

pytestmark = pytest.mark.fuzz
KINDS = [SegmentMessage, DetectionMessage, StreamEvent]
JSON = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=6)
    ),
    max_leaves=20,
)


@given(st.sampled_from(KINDS), st.binary(max_size=512))
def test_random_bytes_are_a_message_error(kind: type, data: bytes) -> None:
    with contextlib.suppress(MessageError):
        decode_message(data, kind)


@given(st.sampled_from(KINDS), JSON, st.binary(max_size=64))
def test_any_json_header_is_a_message_or_a_message_error(
    kind: type, header: object, tail: bytes
) -> None:
    import json

    body = json.dumps(header).encode()
    with contextlib.suppress(MessageError):
        decode_message(struct.pack(">I", len(body)) + body + tail, kind)


@given(st.integers(0, 2**31), st.binary(max_size=256))
def test_a_segment_round_trips_with_any_payload(seq: int, payload: bytes) -> None:
    message = SegmentMessage(channel_id="c", seq=seq, duration=2.0, payload=payload)
    assert decode_message(encode_message(message), SegmentMessage) == message
