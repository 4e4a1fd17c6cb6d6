"""The playlist parser faces the network: whatever text an origin serves, it returns a
playlist or raises its own error, never anything else, and never allocates beyond the input."""

from __future__ import annotations

import contextlib
from urllib.parse import urljoin

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream_ingest.playlist import MasterPlaylist, PlaylistError, _Parser, parse_playlist

pytestmark = pytest.mark.fuzz

TAGS = [
    "#EXTM3U", "#EXT-X-TARGETDURATION:", "#EXT-X-MEDIA-SEQUENCE:", "#EXTINF:", "#EXT-X-ENDLIST",
    "#EXT-X-DISCONTINUITY", "#EXT-X-DISCONTINUITY-SEQUENCE:", "#EXT-X-BYTERANGE:",
    "#EXT-X-MAP:URI=", "#EXT-X-KEY:METHOD=", "#EXT-X-STREAM-INF:BANDWIDTH=",
    "#EXT-X-PLAYLIST-TYPE:",
    "#EXT-X-PROGRAM-DATE-TIME:", "#EXT-X-SKIP:SKIPPED-SEGMENTS=", "#EXT-X-PART:",
    "#EXT-X-GAP", "#EXT-X-DATERANGE:ID=x,SCTE35-OUT=", "#EXT-X-CUE-OUT:", "#EXT-X-CUE-OUT-CONT:",
    "#EXT-X-CUE-IN", "#EXT-X-SCTE35:CUE-OUT=", "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=",
    "#EXT-X-KEY:METHOD=AES-128,URI=k,IV=", "#EXT-X-STREAM-INF:AUDIO=a,BANDWIDTH=", "\ufeff", "",
]  # fmt: skip
VALUES = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(
        [
            "",
            "NONE",
            "AES-128",
            "VOD",
            "EVENT",
            '"init.mp4"',
            "1000@5",
            "2024-01-01",
            "0x" + "f" * 32,
            "0x1",
            "YES",
            "CONT",
            "1.5",
            "10/30",
        ]
    ),  # fmt: skip
    st.text(max_size=12),
)
LINE = st.one_of(
    st.builds(lambda t, v: t + v, st.sampled_from(TAGS), VALUES),
    st.sampled_from(["seg.ts", "a/b.ts", "../x.ts", "http://o/s.ts", "file:///etc/passwd", ""]),
    st.text(max_size=40),
)
PLAYLIST = st.lists(LINE, max_size=60).map(lambda lines: "\n".join(["#EXTM3U", *lines]))


@given(PLAYLIST)
def test_any_tag_soup_is_a_playlist_or_a_playlist_error(text: str) -> None:
    try:
        playlist = parse_playlist(text, "http://origin.example/live/index.m3u8")
    except PlaylistError:
        return
    entries = playlist.variants if isinstance(playlist, MasterPlaylist) else playlist.segments
    assert len(entries) <= text.count("\n") + 1  # one entry per line at most
    if isinstance(playlist, MasterPlaylist):  # sub-channel ids: one per variant, all distinct
        labels = playlist.labels()
        assert len(set(labels)) == len(labels) == len(playlist.variants)
        for variant in playlist.variants:
            playlist.audio_for(variant, language="en")


@given(st.binary(max_size=2000).map(lambda b: b.decode("utf-8", errors="replace")))
def test_random_bytes_are_a_playlist_error_or_a_playlist(text: str) -> None:
    with contextlib.suppress(PlaylistError):
        parse_playlist(text, "http://origin.example/index.m3u8")


@given(
    st.sampled_from(["http://h/a/b/index.m3u8", "https://h:8/x?y=1", "http://h", "http://h/"]),
    st.from_regex(r"[A-Za-z0-9_.~%/-]{1,30}", fullmatch=True),
)
def test_the_fast_path_for_relative_names_resolves_as_urljoin_does(base: str, line: str) -> None:
    assert _Parser(base)._resolve(line) == urljoin(base, line)


# The same inputs through the ``m3u8`` library, which vqm measured itself against (see
# benchmarks/playlist_parsers.py): it has no error type of its own and raises what its code
# happens to (KeyError, TypeError, ValueError, IndexError, ...), so a caller must catch
# Exception. What must hold of it, as of ours, is that it ends and does not outgrow its input.
@given(PLAYLIST)
def test_m3u8_given_the_same_tag_soup_returns_or_raises_an_ordinary_exception(text: str) -> None:
    import m3u8

    try:
        playlist = m3u8.loads(text, uri="http://origin.example/live/index.m3u8")
    except Exception:
        return
    assert len(playlist.segments) + len(playlist.playlists) <= text.count("\n") + 1


@given(st.binary(max_size=2000).map(lambda b: b.decode("utf-8", errors="replace")))
def test_m3u8_given_random_bytes_returns_or_raises_an_ordinary_exception(text: str) -> None:
    import m3u8

    with contextlib.suppress(Exception):
        m3u8.loads(text, uri="http://origin.example/index.m3u8")
