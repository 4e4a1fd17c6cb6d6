"""FFmpeg's own filters as the baseline: blackdetect, freezedetect, silencedetect.

FFmpeg's CLI is a test peer and a baseline, never a runtime dependency: this module is
used only by the evaluation and the benchmarks. Times it prints are on the file's PTS
timeline; they are shifted so 0 is the first decoded frame, as in ``vqm scan``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

from lab.evaluation.scoring import Event

_BLACK = re.compile(r"black_start:(?P<s>[\d.]+) black_end:(?P<e>[\d.]+)")
_FREEZE_START = re.compile(r"freeze_start: (?P<t>[\d.]+)")
_FREEZE_END = re.compile(r"freeze_end: (?P<t>[\d.]+)")
_SILENCE_START = re.compile(r"silence_start: (?P<t>-?[\d.]+)")
_SILENCE_END = re.compile(r"silence_end: (?P<t>[\d.]+)")


class FfmpegMissing(RuntimeError):
    """The ffmpeg CLI is not on PATH."""


@dataclass(frozen=True)
class BaselineSettings:
    """The filters' documented defaults, with the same minimum duration vqm uses."""

    min_duration: float = 2.0
    black_pixel_threshold: float = 0.10
    black_picture_threshold: float = 0.98
    freeze_noise_db: float = -60.0
    silence_noise_db: float = -60.0

    def filters(self) -> tuple[str, str]:
        video = (
            f"blackdetect=d={self.min_duration}:pix_th={self.black_pixel_threshold}"
            f":pic_th={self.black_picture_threshold},"
            f"freezedetect=n={self.freeze_noise_db}dB:d={self.min_duration}"
        )
        audio = f"silencedetect=n={self.silence_noise_db}dB:d={self.min_duration}"
        return video, audio


def run_baseline(path: str, origin: float, settings: BaselineSettings | None = None) -> list[Event]:
    """Events FFmpeg's filters report for ``path``; ``origin`` is its first frame's time."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise FfmpegMissing("ffmpeg is not installed (Debian package 'ffmpeg')")
    video, audio = (settings or BaselineSettings()).filters()
    cmd = [
        ffmpeg,
        "-hide_banner",
        "-nostats",
        "-i",
        path,
        "-vf",
        video,
        "-af",
        audio,
        "-f",
        "null",
        "-",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed on {path}: {proc.stderr.strip().splitlines()[-1:]}")
    return parse_baseline_log(proc.stderr, origin, end_of_input=_duration(proc.stderr, origin))


def _duration(log: str, origin: float) -> float:
    match = re.search(r"Duration: (\d+):(\d+):([\d.]+)", log)
    if not match:
        return float("inf")
    h, m, s = match.groups()
    return int(h) * 3600 + int(m) * 60 + float(s)


def parse_baseline_log(log: str, origin: float, end_of_input: float = float("inf")) -> list[Event]:
    """Events from the filters' log lines; an event still open at the end ends with the input."""
    events = [
        Event("black", float(m["s"]) - origin, float(m["e"]) - origin) for m in _BLACK.finditer(log)
    ]
    events += _paired(log, _FREEZE_START, _FREEZE_END, "freeze", origin, end_of_input)
    events += _paired(log, _SILENCE_START, _SILENCE_END, "silence", origin, end_of_input)
    return events


def _paired(
    log: str, start: re.Pattern[str], end: re.Pattern[str], name: str, origin: float, eoi: float
) -> list[Event]:
    starts = [float(m["t"]) for m in start.finditer(log)]
    ends = [float(m["t"]) for m in end.finditer(log)]
    out = []
    for i, s in enumerate(starts):
        e = ends[i] if i < len(ends) else eoi
        out.append(Event(name, max(0.0, s - origin), e - origin))
    return out
