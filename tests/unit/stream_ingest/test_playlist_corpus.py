"""The parser over a corpus of playlists as origins serve them (``playlist_corpus.py``): each
is accepted as written, tolerated with a warning naming what was forgiven, or refused with a
one-line error, as its entry says; together they cover the tags origins use."""

from __future__ import annotations

import pytest

from stream_ingest.playlist import MasterPlaylist, MediaPlaylist, PlaylistError, parse_playlist
from tests.unit.stream_ingest.playlist_corpus import CORPUS, Case

URL = "https://origin.example/live/index.m3u8"


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_each_playlist_is_accepted_tolerated_or_refused_as_its_entry_says(case: Case) -> None:
    if case.verdict == "refused":
        with pytest.raises(PlaylistError) as caught:
            parse_playlist(case.text, URL)
        assert "\n" not in str(caught.value) and str(caught.value).startswith(URL)
        return
    playlist = parse_playlist(case.text, URL)
    if case.verdict == "accepted":
        assert playlist.warnings == ()
    else:
        assert playlist.warnings and all("\n" not in w for w in playlist.warnings)
    if isinstance(playlist, MediaPlaylist):
        seqs = [s.seq for s in playlist.segments]
        assert seqs == list(range(playlist.first_seq, playlist.last_seq + 1))
    else:
        assert playlist.variants


def test_the_corpus_has_the_breadth_of_real_origins() -> None:
    verdicts = [c.verdict for c in CORPUS]
    assert len(CORPUS) >= 80 and len({c.name for c in CORPUS}) == len(CORPUS)
    assert verdicts.count("tolerated") >= 8 and verdicts.count("refused") >= 15
    text = "".join(c.text for c in CORPUS)
    for tag in (
        "EXT-X-KEY:METHOD=AES-128", "SAMPLE-AES", "EXT-X-MAP", "EXT-X-BYTERANGE", "EXT-X-GAP",
        "EXT-X-SKIP", "EXT-X-PART:", "EXT-X-PRELOAD-HINT", "EXT-X-SERVER-CONTROL",
        "EXT-X-RENDITION-REPORT", "EXT-X-DATERANGE", "SCTE35-OUT", "EXT-X-CUE-OUT-CONT",
        "EXT-X-CUE-IN", "EXT-X-MEDIA:TYPE=AUDIO", "EXT-X-I-FRAME-STREAM-INF",
        "EXT-X-SESSION-KEY", "EXT-X-PROGRAM-DATE-TIME", "EXT-X-DISCONTINUITY-SEQUENCE",
        "EXT-X-PLAYLIST-TYPE:VOD", "EXT-X-START", "EXT-X-INDEPENDENT-SEGMENTS",
    ):  # fmt: skip
        assert tag in text, tag


def test_what_the_corpus_says_the_follower_gets() -> None:
    by_name = {c.name: parse_playlist(c.text, URL) for c in CORPUS if c.verdict != "refused"}
    delta = by_name["llhls_delta"]
    assert isinstance(delta, MediaPlaylist) and delta.segments[0].seq == 269
    mid_write = by_name["trailing_extinf_mid_write"]
    assert isinstance(mid_write, MediaPlaylist) and len(mid_write.segments) == 3
    drm = by_name["multi_drm_with_clear"]
    assert isinstance(drm, MediaPlaylist)
    assert all(s.key is not None and s.key.decryptable for s in drm.segments)
    cues = by_name["cue_out_in"]
    assert isinstance(cues, MediaPlaylist)
    assert [[c.kind for c in s.cues] for s in cues.segments] == [[], ["out"], ["cont"], ["in"]]
    master = by_name["master_audio_groups"]
    assert isinstance(master, MasterPlaylist)
    audio = master.audio_for(master.choose())
    assert audio is not None and audio.language == "en"
