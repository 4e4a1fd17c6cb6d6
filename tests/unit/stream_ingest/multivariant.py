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


def write_master(root: Path) -> Path:
    """Write the channel under ``root``; the master playlist's path."""
    silent = f"volume=enable='between(t,{SILENCE[0]:g},{SILENCE[1]:g})':volume=0"
    black = f"drawbox=enable='between(t,{BLACK_90P[0]:g},{BLACK_90P[1]:g})':color=black:t=fill"
    graph = f"[0:v]split=2[big][s];[s]scale=160:90,{black}[small];[1:a]{silent}[sound]"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=10",
         "-f", "lavfi", "-i", "sine=f=440:sample_rate=48000:d=10", "-filter_complex", graph,
         "-map", "[big]", "-map", "[small]", "-map", "[sound]", "-c:v", "libx264",
         "-g", "50", "-keyint_min", "50", "-sc_threshold", "0", "-b:v:0", "600k",
         "-b:v:1", "150k", "-c:a", "aac", "-b:a", "64k", "-f", "hls", "-hls_time", "2",
         "-hls_playlist_type", "vod", "-master_pl_name", "master.m3u8",
         "-var_stream_map", "v:0,agroup:aud v:1,agroup:aud a:0,agroup:aud,default:yes,language:en",
         "-hls_segment_filename", str(root / "%v" / "seg%d.ts"), str(root / "%v" / "index.m3u8")],
        check=True, timeout=120,
    )  # fmt: skip
    return root / "master.m3u8"
