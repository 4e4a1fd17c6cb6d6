"""AES-128 segment keys: fetched through the channel's URL policy, cached, and used to
decrypt segments before they are published.

    keys = KeyRing(fetcher)
    try:
        clear = await keys.decrypt(payload, segment.key, segment.seq)
    except SegmentKeyError as exc:
        ...  # exc.kind, exc.detail: an unsupported method, no key, bytes that do not decrypt

RFC 8216 section 5.2: AES-128 is AES-CBC over the whole segment with PKCS#7 padding; the IV
is the tag's, or else the media sequence number as a 16-byte big-endian integer. A key URI is
a URI like any other the origin names: it goes through the same URL policy as segments (no
local files, no other hosts, no metadata addresses), and its answer is capped at a few bytes
(a key is 16). SAMPLE-AES (encrypted samples inside the stream), SAMPLE-AES-CTR and DRM key
formats cannot be undone by a monitor: they are reported, and the segment is not published.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from monitor.core.errors import VqmError
from monitor.core.messages import StreamEventKind
from stream_ingest.fetch import Fetcher, FetchError
from stream_ingest.playlist import Key

KEY_BYTES = 16
# A key answer larger than this is not a key; nothing beyond it is read.
MAX_KEY_RESPONSE_BYTES = 64
# Keys kept per follower (rotating keys move on; old ones are not needed again).
CACHED_KEYS = 8
# Segments larger than this are decrypted in a worker thread, off the event loop.
DECRYPT_IN_THREAD_BYTES = 1024 * 1024


class SegmentKeyError(VqmError):
    """A segment that cannot be decrypted; ``kind`` is the stream event to report."""

    def __init__(self, kind: StreamEventKind, detail: str, url: str = "") -> None:
        super().__init__(detail, retriable=False)
        self.kind = kind
        self.detail = detail
        self.url = url


def iv_for(key: Key, seq: int) -> bytes:
    """The tag's IV, else the media sequence number as a 16-byte big-endian integer."""
    return key.iv if key.iv is not None else seq.to_bytes(KEY_BYTES, "big")


def decrypt_aes128(data: bytes, key: bytes, iv: bytes) -> bytes:
    """AES-128-CBC with PKCS#7 padding removed; ValueError when it does not decrypt."""
    if len(data) % 16:
        raise ValueError(f"{len(data)} bytes is not a whole number of AES blocks")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


class KeyRing:
    """The keys of one follower, fetched once per URI through its :class:`Fetcher`."""

    def __init__(self, fetcher: Fetcher) -> None:
        self._fetcher = fetcher
        self._keys: OrderedDict[str, bytes] = OrderedDict()

    def check(self, key: Key) -> None:
        """Raise :class:`SegmentKeyError` when ``key`` is of a kind ingest cannot undo."""
        if key.decryptable:
            return
        if key.method == "AES-128" and not key.uri:
            raise SegmentKeyError(StreamEventKind.ENCRYPTION, "EXT-X-KEY AES-128 without URI")
        what = f"METHOD={key.method}" + (
            f", KEYFORMAT={key.keyformat}" if key.keyformat != "identity" else ""
        )
        raise SegmentKeyError(
            StreamEventKind.ENCRYPTION,
            f"segments encrypted with {what} cannot be decrypted by a monitor (only AES-128 "
            "with a clear key); not analysed",
            key.uri,
        )

    async def key_bytes(self, key: Key) -> bytes:
        """The 16 key bytes, from the cache or fetched (policy-checked, size-capped)."""
        cached = self._keys.get(key.uri)
        if cached is not None:
            self._keys.move_to_end(key.uri)
            return cached
        try:
            data = await self._fetcher.get(key.uri, cap=MAX_KEY_RESPONSE_BYTES)
        except FetchError as exc:
            raise SegmentKeyError(exc.kind, f"key: {exc.detail}", exc.url) from None
        if len(data) != KEY_BYTES:
            raise SegmentKeyError(
                StreamEventKind.ENCRYPTION,
                f"key is {len(data)} bytes, not {KEY_BYTES}",
                key.uri,
            )
        self._keys[key.uri] = data
        while len(self._keys) > CACHED_KEYS:
            self._keys.popitem(last=False)
        return data

    async def decrypt(self, data: bytes, key: Key, seq: int) -> bytes:
        """``data`` of segment ``seq`` decrypted with ``key``, or :class:`SegmentKeyError`."""
        self.check(key)
        secret = await self.key_bytes(key)
        iv = iv_for(key, seq)
        try:
            if len(data) > DECRYPT_IN_THREAD_BYTES:
                return await asyncio.to_thread(decrypt_aes128, data, secret, iv)
            return decrypt_aes128(data, secret, iv)
        except ValueError as exc:
            self._keys.pop(key.uri, None)  # a rotated key under the same URI: fetch it again
            raise SegmentKeyError(
                StreamEventKind.ENCRYPTION,
                f"segment {seq} does not decrypt with its AES-128 key: {exc}",
                key.uri,
            ) from None
