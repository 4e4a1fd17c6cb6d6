"""vqm's playlist parser beside the ``m3u8`` library, on the corpus the tests assert.

    python benchmarks/playlist_parsers.py

For each playlist of ``tests/unit/stream_ingest/playlist_corpus.py`` (written after what real
packagers serve, each with the verdict vqm must reach), prints what each parser does with it,
then what a follower needs of a delta update (the first segment's media sequence number) and
parse times for a 5-entry and a 100,000-entry live playlist (the ratio is m3u8 / vqm).
"""

from __future__ import annotations

import collections
import sys
import time
from collections.abc import Callable
from pathlib import Path

import m3u8

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream_ingest.playlist import PlaylistError, parse_playlist  # noqa: E402
from tests.unit.stream_ingest.playlist_corpus import CORPUS  # noqa: E402

URL = "https://origin.example/live/index.m3u8"


def vqm_verdict(text: str) -> str:
    try:
        return "tolerated" if parse_playlist(text, URL).warnings else "accepted"
    except PlaylistError:
        return "refused"


def m3u8_verdict(text: str) -> str:
    try:
        m3u8.loads(text, uri=URL)
    except Exception as exc:  # m3u8 has no error of its own: whatever it raises
        return f"raises {type(exc).__name__}"
    return "parses"


def seconds(parse: Callable[[], object], times: int) -> float:
    started = time.perf_counter()
    for _ in range(times):
        parse()
    return time.perf_counter() - started


def main() -> None:
    table: collections.Counter[tuple[str, str, str]] = collections.Counter()
    for case in CORPUS:
        table[(case.verdict, vqm_verdict(case.text), m3u8_verdict(case.text))] += 1
    print(f"{len(CORPUS)} playlists\nexpected   vqm        m3u8             count")
    for (expected, ours, theirs), count in sorted(table.items()):
        print(f"{expected:10} {ours:10} {theirs:16} {count}")
    delta = next(c for c in CORPUS if c.name == "llhls_delta")
    theirs = m3u8.loads(delta.text, uri=URL).segments[0].media_sequence
    ours = parse_playlist(delta.text, URL).segments[0].seq  # type: ignore[union-attr]
    print(f"delta update, first listed segment (truly 269): vqm {ours}, m3u8 {theirs}")
    small = CORPUS[0].text
    big = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n" + "".join(
        f"#EXTINF:2.0,\nseg{i}.ts\n" for i in range(100_000)
    )
    for name, text, times in (("5 entries x 2000", small, 2000), ("100,000 entries", big, 1)):
        ours_s = seconds(lambda t=text: parse_playlist(t, URL), times)
        theirs_s = seconds(lambda t=text: m3u8.loads(t, uri=URL), times)
        print(f"{name}: vqm {ours_s:.3f} s, m3u8 {theirs_s:.3f} s, x{theirs_s / ours_s:.1f}")


if __name__ == "__main__":
    main()
