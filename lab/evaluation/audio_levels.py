"""`vqm eval audio_levels`: how well ``audio_artifact`` measures how bad, on real programme.

Real sound from the catalogue's **test** split (``lab.data.real``: studio speech, game music,
codec examples), decoded at 48 kHz and cut into 2 s segments as a live channel delivers them:

- **level error**: 60 Hz hum (the fundamental and two weak harmonics) and white hiss (over
  100 Hz) mixed in at -30, -20 and -10 dB against the programme's gated level (BS.1770's
  gates, unweighted); each segment measured as the detector measures a flagged span; the
  error of the reading against the mix (median and 90th percentile of its size, and the
  share of segments that read nothing, which is a hum hidden under the programme);
- **pages per hour of clean programme** at the shipped defaults (``sensitivity: normal``):
  the detector and the alerting tracker (``min_duration``) over the clean sound, beside the
  alerts the model alone would open (every flagged span paging, as before sensitivity);
- **paged share** of the hum mixes: the share of their seconds in an alert.

    vqm eval audio_levels        # --seconds N of programme (default 300), --out FILE
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from alerting.intervals import join_offline
from lab.data.real import catalogue
from monitor.inference.detectors import audio_levels as levels
from monitor.inference.detectors.audio_artifact import (
    AudioArtifactConfig,
    AudioArtifactDetector,
    AudioSensitivity,
    measure,
)
from monitor.inference.media import iter_decoded
from monitor.inference.models import ModelCache
from monitor.inference.segment import DecodedSegment, DecodeNeeds

RATE = 48_000
SEGMENT = 2.0
LEVELS_DB = (-30.0, -20.0, -10.0)


def programme(seconds: float) -> list[tuple[str, np.ndarray]]:
    """Test-split audio, each file mono at 48 kHz, until ``seconds`` are gathered (the
    sources taken in turn, so speech and music both count)."""
    items = [i for i in catalogue("audio") if i.raw.get("split") == "test" and i.duration >= 2]
    by_source: dict[str, list] = {}
    for item in sorted(items, key=lambda i: str(i.path)):
        by_source.setdefault(item.source, []).append(item)
    out, total, turn = [], 0.0, 0
    queues = list(by_source.values())
    while total < seconds and any(queues):
        queue = queues[turn % len(queues)]
        turn += 1
        if not queue:
            continue
        item = queue.pop(0)
        chunks = list(iter_decoded(str(item.path), DecodeNeeds(luma=False, audio=True), 60.0))
        if not chunks:
            continue
        mono = np.concatenate([c.audio for c in chunks], axis=1).mean(axis=0)
        mono = mono[: int(min(mono.size, 120 * RATE))].astype(np.float64)
        if gated(mono) <= 0:
            continue  # a silent file has no programme to compare with
        out.append((item.source, mono))
        total += mono.size / RATE
    return out


def gated(x: np.ndarray) -> float:
    blocks = (x[: x.size // 4800 * 4800].reshape(-1, 4800) ** 2).mean(axis=1)
    return levels.gated_power(blocks)


def hum(n: int) -> np.ndarray:
    t = np.arange(n) / RATE
    out = np.sin(2 * np.pi * 60 * t) + 0.3 * np.sin(4 * np.pi * 60 * t + 1)
    out += 0.15 * np.sin(6 * np.pi * 60 * t + 2)
    return out / np.sqrt(np.mean(out**2))


def hiss(n: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum[: int(100 * n / RATE)] = 0
    out = np.fft.irfft(spectrum, n)
    return out / np.sqrt(np.mean(out**2))


def segments(x: np.ndarray) -> list[DecodedSegment]:
    size = int(SEGMENT * RATE)
    stereo = np.stack([x, x]).astype(np.float32)
    return [
        DecodedSegment(audio=stereo[:, i : i + size], audio_start=i / RATE)
        for i in range(0, x.size - size // 4, size)
    ]


def level_errors(clips: list[tuple[str, np.ndarray]]) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {}
    for label, make in (("hum", lambda n: hum(n)), ("hiss", lambda n: hiss(n, rng))):
        for db in LEVELS_DB:
            errors, missed = [], 0
            for _, clean in clips:
                x = clean + make(clean.size) * np.sqrt(gated(clean)) * 10 ** (db / 20)
                power = gated(x)
                for s in segments(x):
                    end = s.audio_start + s.audio.shape[-1] / RATE
                    value = measure(label, x, RATE, s.audio_start, end, power)
                    reading = value[f"{label}_relative_db"]
                    if reading <= -100:
                        missed += 1
                    else:
                        errors.append(reading - db)
            size = np.abs(np.asarray(errors)) if errors else np.asarray([np.nan])
            count = len(errors) + missed
            out[f"{label}_{int(db)}db"] = {
                "segments": count,
                "median_abs_error_db": round(float(np.median(size)), 2),
                "p90_abs_error_db": round(float(np.percentile(size, 90)), 2),
                "median_error_db": round(float(np.median(errors)), 2) if errors else None,
                "read_nothing": round(missed / count, 3) if count else None,
            }
    return out


def paging(clips: list[tuple[str, np.ndarray]], models: ModelCache) -> dict[str, Any]:
    """Alerts per hour on clean programme at the defaults and without sensitivity, and the
    paged share of the hum mixes."""
    everything = AudioSensitivity(
        hum_min_relative_db=-120, hiss_min_relative_db=-120, click_min_rate=0
    )
    configs = {
        "normal": AudioArtifactConfig(enabled=True),
        "model_only": AudioArtifactConfig(enabled=True, sensitivity=everything),
    }
    hours = sum(c.size for _, c in clips) / RATE / 3600
    out: dict[str, Any] = {"clean_hours": round(hours, 4)}
    for name, config in configs.items():
        alerts, flagged = 0, 0.0
        by_label: dict[str, int] = {}
        for _, clean in clips:
            found, spans = run(clean, config, models)
            alerts += len(found)
            for a in found:
                by_label[a.get("label", "")] = by_label.get(a.get("label", ""), 0) + 1
            flagged += sum(s.end - s.start for s in spans)
        out[f"{name}_alerts_per_hour"] = round(alerts / hours, 1)
        out[f"{name}_alerts_by_label"] = by_label
    for db in (-30.0, -10.0):
        paged = total = 0.0
        for _, clean in clips:
            x = clean + hum(clean.size) * np.sqrt(gated(clean)) * 10 ** (db / 20)
            found, _ = run(x, configs["normal"], models)
            paged += sum(a["end"] - a["start"] for a in found if a.get("label") == "hum")
            total += x.size / RATE
        out[f"hum_{int(db)}db_paged_share"] = round(paged / total, 3)
    return out


def run(x: np.ndarray, config: AudioArtifactConfig, models: ModelCache) -> tuple[list, list]:
    detector = AudioArtifactDetector(config, models)
    results, spans = [], []
    for segment in segments(x):
        found = detector.detect(segment)
        results.append((*segment.audio_span, found))
        spans += found
    return join_offline("audio_artifact", results, config.min_duration, config.recovery), spans


def evaluate(seconds: float = 300.0) -> dict[str, Any]:
    started = time.perf_counter()
    clips = programme(seconds)
    models = ModelCache()
    try:
        result: dict[str, Any] = {
            "programme_seconds": round(sum(c.size for _, c in clips) / RATE, 1),
            "sources": sorted({s for s, _ in clips}),
            "level_error": level_errors(clips),
            "paging": paging(clips, models),
        }
    finally:
        models.close()
    result["cpu_seconds"] = round(time.perf_counter() - started, 1)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="vqm eval audio_levels")
    parser.add_argument("command", nargs="?", default="eval")
    parser.add_argument("--seconds", type=float, default=300.0, help="seconds of programme")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    result = evaluate(args.seconds)
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
