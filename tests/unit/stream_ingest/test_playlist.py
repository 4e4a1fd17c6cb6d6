"""HLS playlist parsing: what the follower relies on, and clear errors for what it cannot use."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stream_ingest.playlist import (
    ByteRange,
    MasterPlaylist,
    MediaPlaylist,
    PlaylistError,
    parse_attributes,
    parse_media_playlist,
    parse_playlist,
)

URL = "https://origin.example/live/news/index.m3u8"

LIVE = """#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:6
#EXT-X-MEDIA-SEQUENCE:120
#EXT-X-DISCONTINUITY-SEQUENCE:4
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.000Z
#EXTINF:6.006,
seg120.ts
#EXTINF:5.994,Ad break
seg121.ts
#EXT-X-DISCONTINUITY
#EXTINF:6.0,
https://cdn.example/other/seg122.ts
"""


def media(text: str) -> MediaPlaylist:
    playlist = parse_playlist(text, URL)
    assert isinstance(playlist, MediaPlaylist)
    return playlist


def test_a_live_playlist_numbers_segments_from_the_media_sequence() -> None:
    playlist = media(LIVE)
    assert playlist.target_duration == 6
    assert [s.seq for s in playlist.segments] == [120, 121, 122]
    assert playlist.last_seq == 122
    assert [s.duration for s in playlist.segments] == [6.006, 5.994, 6.0]
    assert playlist.segments[1].title == "Ad break"
    assert not playlist.endlist and not playlist.is_vod


def test_relative_uris_resolve_against_the_playlist_url_and_absolute_ones_are_kept() -> None:
    segments = media(LIVE).segments
    assert segments[0].uri == "https://origin.example/live/news/seg120.ts"
    assert segments[2].uri == "https://cdn.example/other/seg122.ts"


def test_a_discontinuity_marks_the_next_segment_and_advances_the_discontinuity_sequence() -> None:
    segments = media(LIVE).segments
    assert [s.discontinuity for s in segments] == [False, False, True]
    assert [s.discontinuity_seq for s in segments] == [4, 4, 5]


def test_program_date_time_is_carried_forward_by_extinf_until_a_discontinuity() -> None:
    segments = media(LIVE).segments
    assert segments[0].program_date_time == datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert segments[1].program_date_time == datetime(2024, 5, 1, 12, 0, 6, 6000, tzinfo=UTC)
    assert segments[2].program_date_time is None


def test_ts_segments_are_mpegts_and_segments_under_a_map_are_fmp4_with_their_init() -> None:
    playlist = media(
        "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\na.ts\n"
        '#EXT-X-MAP:URI="init.mp4",BYTERANGE="720@0"\n#EXTINF:4,\nb.m4s\n#EXTINF:4,\nc.m4s\n'
    )
    a, b, c = playlist.segments
    assert a.container == "mpegts" and a.init is None
    assert b.container == c.container == "fmp4"
    assert b.init is not None and b.init.uri == "https://origin.example/live/news/init.mp4"
    assert b.init.byterange == ByteRange(length=720, offset=0)


def test_endlist_and_playlist_type_vod_make_a_complete_playlist() -> None:
    ended = media("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na.ts\n#EXT-X-ENDLIST\n")
    assert ended.endlist and ended.is_vod
    vod = media("#EXTM3U\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-TARGETDURATION:2\n")
    assert vod.playlist_type == "VOD" and vod.is_vod and vod.segments == []
    event = media("#EXTM3U\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-TARGETDURATION:2\n")
    assert event.playlist_type == "EVENT" and not event.is_vod


def test_byteranges_without_offset_continue_where_the_previous_range_of_the_file_ended() -> None:
    playlist = media(
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n"
        "#EXTINF:2,\n#EXT-X-BYTERANGE:1000@200\nall.ts\n"
        "#EXTINF:2,\n#EXT-X-BYTERANGE:500\nall.ts\n"
    )
    ranges = [s.byterange for s in playlist.segments]
    assert ranges == [ByteRange(length=1000, offset=200), ByteRange(length=500, offset=1200)]
    assert ranges[1] is not None and ranges[1].header == "bytes=1200-1699"


def test_a_byte_order_mark_blank_lines_comments_and_unknown_tags_are_ignored() -> None:
    playlist = media(
        "\ufeff#EXTM3U\n\n# a comment\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-TARGETDURATION:2\n"
        '#EXT-X-KEY:METHOD=NONE\n#EXT-X-FUTURE-TAG:X="1"\n#EXTINF:2,\r\na.ts\r\n'
    )
    assert [s.uri.rsplit("/", 1)[-1] for s in playlist.segments] == ["a.ts"]


MASTER = """#EXTM3U
#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,CODECS="avc1.4d401e,mp4a.40.2"
low/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=5000000,RESOLUTION=1920x1080,CODECS="avc1.640028,mp4a.40.2"
https://cdn.example/high/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=2000000,CODECS="avc1.4d401f,mp4a.40.2"
mid/index.m3u8
"""


def test_a_master_playlist_lists_variants_and_picks_the_highest_bandwidth() -> None:
    playlist = parse_playlist(MASTER, URL)
    assert isinstance(playlist, MasterPlaylist)
    assert [v.bandwidth for v in playlist.variants] == [800000, 5000000, 2000000]
    assert playlist.variants[0].uri == "https://origin.example/live/news/low/index.m3u8"
    best = playlist.best_variant()
    assert best.uri == "https://cdn.example/high/index.m3u8"
    assert best.codecs == "avc1.640028,mp4a.40.2" and best.resolution == "1920x1080"


def test_asking_for_a_media_playlist_and_getting_a_master_is_an_error() -> None:
    with pytest.raises(PlaylistError, match="master playlist"):
        parse_media_playlist(MASTER, URL)


def test_quoted_attribute_values_may_contain_commas() -> None:
    assert parse_attributes('A=1,B="x,y",C=0x1F') == {"A": "1", "B": "x,y", "C": "0x1F"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "missing #EXTM3U"),
        ("#EXTM3U\n", "missing EXT-X-TARGETDURATION"),
        ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=fast\nv.m3u8\n", "line 2: EXT-X-STREAM-INF needs"),
        ('#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-KEY:URI="k"\n', "line 3: EXT-X-KEY without"),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-KEY:METHOD=AES-128,IV=7\n",
            "line 3: EXT-X-KEY IV",
        ),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na.ts\n#EXT-X-SKIP:SKIPPED-SEGMENTS=2\n",
            "line 5: EXT-X-SKIP after the first segment",
        ),
        ("<html>Not found</html>", "line 1: missing #EXTM3U"),
        ("#EXTINF:2,\na.ts\n", "missing #EXTM3U"),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:six\n", "line 2: EXT-X-TARGETDURATION 'six'"),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:0\n", "line 2: EXT-X-TARGETDURATION must be positive"),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:abc,\na.ts\n", "line 3: EXTINF duration"),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:-1,\na.ts\n", "line 3: EXTINF duration"),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:2\na.ts\n", "line 3: URI 'a.ts' without a preceding"),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:-3\n", "line 3: EXT-X-MEDIA"),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-DISCONTINUITY-SEQUENCE:x\n", "line 3"),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na.ts\n#EXT-X-MEDIA-SEQUENCE:5\n",
            "line 5: #EXT-X-MEDIA-SEQUENCE after the first segment",
        ),
        ("#EXTM3U\n#EXT-X-PLAYLIST-TYPE:LIVE\n", "line 2: EXT-X-PLAYLIST-TYPE must be"),
        ("#EXTM3U\n#EXT-X-PROGRAM-DATE-TIME:yesterday\n", "line 2: EXT-X-PROGRAM-DATE-TIME"),
        ('#EXTM3U\n#EXT-X-MAP:BYTERANGE="1@0"\n', "line 2: EXT-X-MAP without URI"),
        ("#EXTM3U\n#EXT-X-MAP:URI=init.mp4 junk\n", "line 2: malformed attribute list"),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-BYTERANGE:12@x\n", "line 3: malformed byte"),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-BYTERANGE:12\n#EXTINF:2,\na.ts\n",
            "line 5: EXT-X-BYTERANGE without an offset",
        ),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na.ts\n#EXT-X-STREAM-INF:BANDWIDTH=1\n",
            "line 5: EXT-X-STREAM-INF in a media playlist",
        ),
        (
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n#EXTINF:2,\na.ts\n",
            "line 5: segment in a master playlist",
        ),
    ],
)
def test_malformed_playlists_raise_one_line_errors_naming_what_and_where(
    text: str, message: str
) -> None:
    with pytest.raises(PlaylistError, match=message.replace("(", r"\(")) as caught:
        parse_playlist(text, URL)
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith(URL)


def test_a_delta_update_numbers_the_segments_after_the_skipped_ones() -> None:
    playlist = media(
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-SERVER-CONTROL:CAN-SKIP-UNTIL=12\n"
        "#EXT-X-MEDIA-SEQUENCE:260\n#EXT-X-SKIP:SKIPPED-SEGMENTS=9\n"
        '#EXTINF:2,\nseg269.ts\n#EXT-X-PART:DURATION=0.5,URI="seg270.0.mp4"\n'
        '#EXTINF:2,\nseg270.ts\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI="seg271.0.mp4"\n'
    )
    assert [s.seq for s in playlist.segments] == [269, 270]
    assert (playlist.first_seq, playlist.last_seq, playlist.skipped) == (269, 270, 9)
    assert playlist.warnings == ()


def test_each_segment_carries_the_key_in_force_and_a_clear_key_wins_over_drm_formats() -> None:
    playlist = media(
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nclear.ts\n"
        '#EXT-X-KEY:METHOD=AES-128,URI="keys/1",IV=0x000102030405060708090a0b0c0d0e0f\n'
        '#EXT-X-KEY:METHOD=SAMPLE-AES,URI="skd://k",KEYFORMAT="com.apple.streamingkeydelivery"\n'
        '#EXTINF:2,\nsecret.ts\n#EXT-X-KEY:METHOD=SAMPLE-AES,URI="k2"\n#EXTINF:2,\nsample.ts\n'
        "#EXT-X-KEY:METHOD=NONE\n#EXTINF:2,\nclear-again.ts\n"
    )
    clear, secret, sample, again = playlist.segments
    assert clear.key is None and again.key is None
    assert secret.key is not None and secret.key.decryptable
    assert secret.key.uri == "https://origin.example/live/news/keys/1"
    assert secret.key.iv == bytes(range(16))
    assert sample.key is not None and sample.key.method == "SAMPLE-AES"
    assert not sample.key.decryptable


def test_gaps_and_ad_break_cues_mark_the_segment_they_precede() -> None:
    playlist = media(
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n"
        '#EXT-X-DATERANGE:ID="ad-1",START-DATE="2024-05-01T12:00:00Z",PLANNED-DURATION=30,'
        "SCTE35-OUT=0xFC302000\n#EXTINF:2,\na.ts\n"
        "#EXT-X-CUE-OUT-CONT:ElapsedTime=2.0,Duration=30,SCTE35=/DAlAAA=\n#EXT-X-GAP\n#EXTINF:2,\nb.ts\n"
        "#EXT-X-CUE-IN\n#EXTINF:2,\nc.ts\n#EXT-X-CUE-OUT:DURATION=15\n#EXTINF:2,\nd.ts\n"
        "#EXT-X-CUE-OUT-CONT:4/15\n#EXTINF:2,\ne.ts\n"
    )
    a, b, c, d, e = playlist.segments
    assert [cue.kind for s in playlist.segments for cue in s.cues] == [
        "out",
        "cont",
        "in",
        "out",
        "cont",
    ]
    assert a.cues[0].id == "ad-1" and a.cues[0].duration == 30 and a.cues[0].scte35 == "0xFC302000"
    assert b.gap and not a.gap and not c.gap
    assert b.cues[0].scte35 == "/DAlAAA=" and d.cues[0].duration == 15 and e.cues[0].duration == 15


def test_a_cue_that_does_not_read_is_a_warning_not_a_refused_playlist() -> None:
    playlist = media("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-CUE-OUT:soon\n#EXTINF:2,\na.ts\n")
    assert len(playlist.segments) == 1 and playlist.segments[0].cues == ()
    assert "cue ignored" in playlist.warnings[0]


def test_what_a_player_tolerates_is_followed_and_said_in_warnings() -> None:
    playlist = media("\n\n  #EXTM3U\n#EXTINF:5.5,\na.ts\n#EXTINF:4,\nb.ts\n#EXTINF:4,\n")
    assert [s.uri.rsplit("/", 1)[-1] for s in playlist.segments] == ["a.ts", "b.ts"]
    assert playlist.target_duration == 6
    assert len(playlist.warnings) == 3
    master = parse_playlist(
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1280000.5\nhi.m3u8\n"
        "#EXT-X-STREAM-INF:RESOLUTION=1x1\nnone.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=1\n",
        URL,
    )
    assert isinstance(master, MasterPlaylist)
    assert [v.bandwidth for v in master.variants] == [1280000, 0]
    assert len(master.warnings) == 3


def test_a_variant_is_chosen_by_highest_lowest_or_nearest_bandwidth_with_its_audio() -> None:
    master = parse_playlist(
        '#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="English",LANGUAGE="en",'
        'DEFAULT=YES,URI="audio/en.m3u8"\n'
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="Deutsch",LANGUAGE="de",URI="audio/de.m3u8"\n'
        + MASTER.replace("BANDWIDTH=800000,", 'BANDWIDTH=800000,AUDIO="aac",').removeprefix(
            "#EXTM3U\n"
        ),
        URL,
    )
    assert isinstance(master, MasterPlaylist)
    assert master.choose("highest").bandwidth == 5000000
    assert master.choose("lowest").bandwidth == 800000
    assert master.choose(2100000).bandwidth == 2000000
    low = master.choose("lowest")
    audio = master.audio_for(low)
    assert audio is not None and audio.name == "English"
    assert audio.uri == "https://origin.example/live/news/audio/en.m3u8"
    assert master.audio_for(master.choose("highest")) is None
    german = master.audio_for(low, language="DE")
    assert german is not None and german.name == "Deutsch"
    assert master.audio_for(low, language="fr") == audio  # not listed: the DEFAULT=YES one


@pytest.mark.parametrize(
    ("stream_infs", "labels"),
    [
        (["RESOLUTION=1280x720,BANDWIDTH=3000000", "RESOLUTION=640x360,BANDWIDTH=800000"],
         ["720p", "360p"]),
        (["RESOLUTION=1280x720,BANDWIDTH=3000000", "RESOLUTION=1280x720,BANDWIDTH=1500000",
          "RESOLUTION=640x360,BANDWIDTH=800000"], ["720p-3000k", "720p-1500k", "360p"]),
        (["BANDWIDTH=128000", "BANDWIDTH=64000", "RESOLUTION=axb,BANDWIDTH=32000"],
         ["128k", "64k", "32k"]),
        (["BANDWIDTH=128000", "BANDWIDTH=128000"], ["128k-0", "128k-1"]),
    ],
)  # fmt: skip
def test_each_variant_gets_a_short_label_that_no_other_variant_shares(
    stream_infs: list[str], labels: list[str]
) -> None:
    text = "#EXTM3U\n" + "".join(
        f"#EXT-X-STREAM-INF:{attributes}\nv{i}.m3u8\n" for i, attributes in enumerate(stream_infs)
    )
    master = parse_playlist(text, URL)
    assert isinstance(master, MasterPlaylist)
    assert master.labels() == labels
