"""A master playlist as FFmpeg's HLS muxer writes it for a multi-bitrate channel: two video
variants (320x180 and 160x90, no sound of their own) and one alternate audio rendition
(DEFAULT=YES) they both name. 10 s of media in 2 s segments; the sound is silent at 4-7 s
and the small variant alone is black at 2-5 s, so a defect shows which rendition it is in.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

SILENCE = (4.0, 7.0)
BLACK_90P = (2.0, 5.0)


def write_master(root: Path, fmp4: bool = False) -> Path:
    """Write the channel under ``root`` (in MPEG-TS segments, or fMP4 ones with their init
    sections: ``-hls_segment_type fmp4``); the master playlist's path."""
    kind = ["-hls_segment_type", "fmp4"] if fmp4 else []
    names = str(root / "%v" / ("seg%d.m4s" if fmp4 else "seg%d.ts"))
    silent = f"volume=enable='between(t,{SILENCE[0]:g},{SILENCE[1]:g})':volume=0"
    black = f"drawbox=enable='between(t,{BLACK_90P[0]:g},{BLACK_90P[1]:g})':color=black:t=fill"
    graph = f"[0:v]split=2[big][s];[s]scale=160:90,{black}[small];[1:a]{silent}[sound]"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=10",
         "-f", "lavfi", "-i", "sine=f=440:sample_rate=48000:d=10", "-filter_complex", graph,
         "-map", "[big]", "-map", "[small]", "-map", "[sound]", "-c:v", "libx264",
         "-g", "50", "-keyint_min", "50", "-sc_threshold", "0", "-b:v:0", "600k",
         "-b:v:1", "150k", "-c:a", "aac", "-b:a", "64k", "-f", "hls", "-hls_time", "2",
         "-hls_playlist_type", "vod", "-master_pl_name", "master.m3u8", *kind,
         "-var_stream_map", "v:0,agroup:aud v:1,agroup:aud a:0,agroup:aud,default:yes,language:en",
         "-hls_segment_filename", names, str(root / "%v" / "index.m3u8")],
        check=True, timeout=120,
    )  # fmt: skip
    return root / "master.m3u8"


def pack_audio(root: Path, rendition: str = "2") -> None:
    """Rewrite the audio rendition under ``root`` as packed audio, as Apple's segmenter and
    most packagers serve it: each segment the ADTS stream FFmpeg copies out of the MPEG-TS
    one (``.aac``), after an ID3 tag whose PRIV frame gives its first sample's PTS."""
    folder = root / rendition
    playlist = (folder / "index.m3u8").read_text()
    for ts in sorted(folder.glob("seg*.ts")):
        first = subprocess.run(
            ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
             "packet=pts", "-read_intervals", "%+#1", "-of", "csv=p=0", str(ts)],
            check=True, capture_output=True, text=True, timeout=60,
        ).stdout.split()[0].strip(",")  # fmt: skip
        adts = subprocess.run(
            ["ffmpeg", "-v", "error", "-i", str(ts), "-map", "0:a", "-c", "copy", "-f", "adts",
             "-"],
            check=True, capture_output=True, timeout=60,
        ).stdout  # fmt: skip
        ts.with_suffix(".aac").write_bytes(id3_timestamp_tag(int(first)) + adts)
        ts.unlink()
        playlist = playlist.replace(ts.name, ts.with_suffix(".aac").name)
    (folder / "index.m3u8").write_text(playlist)


def id3_timestamp_tag(pts: int) -> bytes:
    """An ID3v2.4 tag with the one PRIV frame of RFC 8216's packed audio: the 33-bit PTS."""
    body = b"com.apple.streaming.transportStreamTimestamp\x00" + pts.to_bytes(8, "big")
    frame = b"PRIV" + _syncsafe(len(body)) + b"\x00\x00" + body
    return b"ID3\x04\x00\x00" + _syncsafe(len(frame)) + frame


def _syncsafe(n: int) -> bytes:
    return bytes([(n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F])
