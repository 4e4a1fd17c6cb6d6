"""`vqm eval loudness`: vqm's loudness meter beside FFmpeg's ``ebur128`` filter, same inputs.

Inputs are the EBU Tech 3341 minimum-requirement signals (generated here: stereo 1 kHz tones
and tone sequences for integrated loudness, 12 kHz tones at phases that put the true peak
between samples) and real programme from the catalogue (``lab.data.real``: music, speech,
drama, measured whole). vqm reads what its detector reads: the decoder's 48 kHz stereo, fed to
the same :class:`~monitor.inference.detectors.loudness_meter.LoudnessMeter` with a window as
long as the input, so its integrated value is the programme's; FFmpeg reads the same 48 kHz
stereo WAV. Targets: integrated within 0.1 LU, true peak within 0.2 dB.

    vqm eval loudness            # prints the table; --out FILE also writes JSON
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from lab.data.real import catalogue
from monitor.app.progress import track
from monitor.inference.detectors.loudness_meter import LoudnessMeter, block_frames
from monitor.inference.media import iter_decoded
from monitor.inference.segment import DecodeNeeds

RATE = 48_000
_I = re.compile(r"I:\s+(-?[\d.]+|-inf) LUFS")
_TP = re.compile(r"Peak:\s+(-?[\d.]+|-inf) dBFS")
_LRA = re.compile(r"LRA:\s+(-?[\d.]+) LU")


def tone(db: float, seconds: float, freq: float = 1000.0, phase_deg: float = 0.0) -> np.ndarray:
    t = np.arange(int(round(seconds * RATE))) / RATE
    x = 10 ** (db / 20) * np.sin(2 * np.pi * freq * t + np.deg2rad(phase_deg))
    return np.stack([x, x]).astype(np.float32)


def programme(seconds: float, seed: int = 3) -> np.ndarray:
    """Stereo noise with a slow swell, a 50 Hz hum on one side and a 12 kHz whistle: energy
    in both the shelf's and the high pass's bands, never silent (the meter's tests and its
    benchmark read it)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    swell = 1 + 0.8 * np.sin(2 * np.pi * t / 7)
    left = 0.05 * rng.standard_normal(t.size) * swell + 0.01 * np.sin(2 * np.pi * 12e3 * t)
    right = 0.2 * np.sin(2 * np.pi * 50 * t) + 0.02 * rng.standard_normal(t.size)
    return np.stack([left, right]).astype(np.float32)


def libebur128_sliding(parts: list[np.ndarray], window: float) -> np.ndarray:
    """libebur128's integrated loudness after each 100 ms of stereo ``parts`` fed in turn (a
    part's samples past its last whole 100 ms are left out), its history ``window`` long:
    the reference the meter is held to."""
    import pyebur128  # a test and benchmark dependency, not the product's

    state = pyebur128.R128State(2, RATE, pyebur128.MeasurementMode.MODE_I)
    state.set_max_history(int(window * 1000))
    size, out = block_frames(RATE), []
    for part in parts:
        for i in range(0, part.shape[-1] - size + 1, size):
            state.add_frames(np.ascontiguousarray(part[:, i : i + size].T).ravel(), size)
            out.append(pyebur128.get_loudness_global(state))
    return np.array(out)


def tech3341() -> list[tuple[str, np.ndarray, float | None, float | None]]:
    """(name, stereo signal, expected integrated LUFS, expected true peak dBTP)."""
    seq = lambda *parts: np.concatenate([tone(db, s) for db, s in parts], axis=1)  # noqa: E731
    cases: list[tuple[str, np.ndarray, float | None, float | None]] = [
        ("3341 case 1: 1 kHz at -23 dBFS, 20 s", tone(-23, 20), -23.0, None),
        ("3341 case 2: 1 kHz at -33 dBFS, 20 s", tone(-33, 20), -33.0, None),
        (
            "3341 case 3: -36/-23/-36 dBFS, 10/60/10 s",
            seq((-36, 10), (-23, 60), (-36, 10)),
            -23.0,
            None,
        ),
        (
            "3341 case 4: -72/-36/-23/-36/-72 dBFS",
            seq((-72, 10), (-36, 10), (-23, 60), (-36, 10), (-72, 10)),
            -23.0,
            None,
        ),
        (
            "3341 case 5: -26/-20/-26 dBFS, 20/20.1/20 s",
            seq((-26, 20), (-20, 20.1), (-26, 20)),
            -23.0,
            None,
        ),
    ]
    for phase in (0.0, 45.0, 60.0, 67.5, 88.2):  # a 12 kHz tone at 48 kHz: 4 samples a cycle
        signal = tone(-6.0, 5, freq=12_000.0, phase_deg=phase)
        cases.append(
            (f"3341 true peak: 12 kHz at -6 dBTP, phase {phase:g} deg", signal, None, -6.0)
        )
    return cases


def real_programme(limit: int = 20) -> list[tuple[str, np.ndarray]]:
    """Up to ``limit`` real recordings (a few per source, 5 s or more), as the decoder gives."""
    picked: dict[str, int] = {}
    out = []
    for item in sorted(catalogue("audio"), key=lambda i: (i.source, str(i.path))):
        if item.duration < 5 or picked.get(item.source, 0) >= 2 or len(out) >= limit:
            continue
        audio = _decoded(item.path, seconds=120.0)
        if audio is None:
            continue
        picked[item.source] = picked.get(item.source, 0) + 1
        out.append((f"{item.source}: {item.path.name} ({item.licence})", audio))
    return out


def _decoded(path: Path, seconds: float) -> np.ndarray | None:
    parts = []
    try:
        for chunk in iter_decoded(str(path), DecodeNeeds(luma=False, audio=True), chunk_seconds=10):
            parts.append(chunk.audio)
            if sum(p.shape[-1] for p in parts) >= seconds * RATE:
                break
    except Exception:  # noqa: BLE001 - an undecodable catalogue file is skipped
        return None
    if not parts:
        return None
    audio = np.concatenate(parts, axis=1)
    return audio if audio.shape[-1] >= RATE else None


def vqm_measure(audio: np.ndarray) -> dict[str, float]:
    meter = LoudnessMeter(window=max(3.0, audio.shape[-1] / RATE + 1), channels=2, rate=RATE)
    meter.add(audio)
    # the whole programme as one block, so the last partial 100 ms counts too
    peak = float(meter.true_peak.block_peaks(audio, audio.shape[-1]).max())
    return {
        "integrated": meter.integrated(),
        "true_peak": 20 * math.log10(peak) if peak > 0 else -math.inf,
    }


def ffmpeg_measure(audio: np.ndarray) -> dict[str, float]:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("ffmpeg is not installed (Debian package 'ffmpeg')")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.wav"
        _write_wav(path, audio)
        cmd = [ffmpeg, "-hide_banner", "-nostats", "-i", str(path), "-af", "ebur128=peak=true"]
        result = subprocess.run([*cmd, "-f", "null", "-"], capture_output=True, text=True)
    summary = result.stderr[result.stderr.rfind("Summary:") :]
    return {
        "integrated": float(_I.search(summary).group(1)),  # type: ignore[union-attr]
        "true_peak": float(_TP.search(summary).group(1)),  # type: ignore[union-attr]
    }


def _write_wav(path: Path, audio: np.ndarray) -> None:
    """32-bit float WAV, so FFmpeg reads exactly the samples vqm measured."""
    data = np.ascontiguousarray(audio.T, dtype="<f4").tobytes()
    with path.open("wb") as f:
        f.write(b"RIFF" + (36 + len(data)).to_bytes(4, "little") + b"WAVEfmt ")
        f.write((16).to_bytes(4, "little") + (3).to_bytes(2, "little") + (2).to_bytes(2, "little"))
        f.write(RATE.to_bytes(4, "little") + (RATE * 8).to_bytes(4, "little"))
        f.write((8).to_bytes(2, "little") + (32).to_bytes(2, "little"))
        f.write(b"data" + len(data).to_bytes(4, "little") + data)


def evaluate(real_limit: int = 20) -> dict[str, Any]:
    rows = []
    inputs = [(name, audio, exp_i, exp_tp) for name, audio, exp_i, exp_tp in tech3341()]
    inputs += [(name, audio, None, None) for name, audio in real_programme(real_limit)]
    for name, audio, expected_i, expected_tp in track(inputs, "measuring"):
        ours, theirs = vqm_measure(audio), ffmpeg_measure(audio)
        rows.append(
            {
                "input": name,
                "expected_i": expected_i,
                "expected_tp": expected_tp,
                "vqm_i": round(ours["integrated"], 2),
                "ffmpeg_i": theirs["integrated"],
                "diff_i": round(abs(ours["integrated"] - theirs["integrated"]), 2),
                "vqm_tp": round(ours["true_peak"], 2),
                "ffmpeg_tp": theirs["true_peak"],
                "diff_tp": round(abs(ours["true_peak"] - theirs["true_peak"]), 2),
            }
        )
    finite = [r for r in rows if math.isfinite(r["diff_i"])]
    return {
        "rows": rows,
        "max_diff_integrated_lu": max(r["diff_i"] for r in finite),
        "max_diff_true_peak_db": max(r["diff_tp"] for r in rows if math.isfinite(r["diff_tp"])),
        "real_inputs": sum(1 for r in rows if not r["input"].startswith("3341")),
    }


def print_table(result: dict[str, Any]) -> None:
    head = ("I vqm", "I ffmpeg", "|d|", "TP vqm", "TP ffm", "|d|")
    print(f"{'input':70} " + " ".join(f"{h:>8}" for h in head))
    for r in result["rows"]:
        print(
            f"{r['input'][:70]:70} {r['vqm_i']:8.2f} {r['ffmpeg_i']:8.2f} {r['diff_i']:8.2f} "
            f"{r['vqm_tp']:8.2f} {r['ffmpeg_tp']:8.2f} {r['diff_tp']:8.2f}"
        )
    print(
        f"largest difference: integrated {result['max_diff_integrated_lu']:.2f} LU (target 0.1), "
        f"true peak {result['max_diff_true_peak_db']:.2f} dB (target 0.2); "
        f"{result['real_inputs']} real programmes"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="vqm eval loudness")
    parser.add_argument("command", nargs="?", default="eval")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--real", type=int, default=20, help="real programmes to measure")
    args = parser.parse_args(argv)
    result = evaluate(args.real)
    print_table(result)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
