"""``block_corruption`` on real footage: the real test split beside FFmpeg's ``blockdetect``,
and false alerts per hour of clean real footage through the scan's alerting rules.

*Frames*: the ``real_validation`` and ``real_test`` clips (:mod:`lab.training.block_real`:
windows of catalogued footage, encoded, damaged and concealed, labelled against their clean
decode). Thresholds, vqm's region threshold and blockdetect's score threshold alike, are chosen
on ``real_validation`` (best F1 with at most 1 % of its undamaged frames flagged); the test
split is scored once.

*Clean footage*: every catalogued video of the catalogue's test split, undamaged, scanned whole
at its own size as ``vqm scan --enable block_corruption`` does (the detector at its shipped
defaults, spans joined by the same minimum-duration rule a channel's alerts use), and again
re-encoded at broadcast settings (:data:`BROADCAST`). Each defect reported is a false alert.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from lab.data.real import catalogue

logger = logging.getLogger(__name__)

# (name, scale filter, ffmpeg video options): what a contribution or distribution encoder makes
BROADCAST = (
    ("h264 1080p 8 Mb/s", "scale=1920:1080", ["-c:v", "libx264", "-b:v", "8M", "-r", "25"]),
    ("h264 720p 4 Mb/s", "scale=1280:720", ["-c:v", "libx264", "-b:v", "4M", "-r", "50"]),
    ("mpeg2 576 5 Mb/s", "scale=720:576", ["-c:v", "mpeg2video", "-b:v", "5M", "-r", "25"]),
)


def test_footage() -> list[Path]:
    return [i.path for i in catalogue("video") if i.raw.get("split") == "test"]


def clean_alerts(models_dir: Path, broadcast: bool = True) -> dict[str, Any]:
    """False alerts of the shipped detector on the clean test footage, per encode."""
    from monitor.app.config import VqmConfig
    from monitor.app.scan import ScanError, scan
    from monitor.core.settings import Settings

    only = {"type": "block_corruption", "enabled": True}
    off = [{"type": t, "enabled": False} for t in ("black", "freeze", "silence", "loudness")]
    config = VqmConfig.model_validate({"detectors": [only, *off]})
    settings = Settings(model_dir=str(models_dir))
    encodes: list[tuple[str, str, list[str]]] = [("as shipped", "", [])]
    encodes += list(BROADCAST) if broadcast else []
    out: dict[str, Any] = {}
    for name, scale, options in encodes:
        alerts, seconds, details = 0, 0.0, []
        for path in test_footage():
            with tempfile.TemporaryDirectory() as tmp:
                source = _encode(path, Path(tmp), scale, options) if options else path
                try:
                    defects = scan(str(source), config, settings=settings)
                except ScanError as exc:
                    logger.warning("%s: %s", path.name, exc)
                    continue
                seconds += _duration(source)
            found = [d for d in defects if d.detector == "block_corruption"]
            alerts += len(found)
            details += [f"{path.name} {d.start:.1f}-{d.end:.1f}" for d in found]
        out[name] = {"alerts": alerts, "hours": round(seconds / 3600, 4), "where": details[:20]}
    return out


def _encode(path: Path, tmp: Path, scale: str, options: list[str]) -> Path:
    out = tmp / "clip.ts"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-an", "-vf", f"{scale},format=yuv420p",
         *options, "-f", "mpegts", str(out)],
        check=True, timeout=600,
    )  # fmt: skip
    return out


def _duration(path: Path) -> float:
    from monitor.inference.media import probe_duration

    return float(probe_duration(str(path)) or 0.0)


def real_split_figures(
    val: dict[str, dict], test: dict[str, dict], model: Any | None
) -> dict[str, Any]:
    """Frame figures on ``real_test`` with thresholds from ``real_validation``."""
    from lab.training import block_corruption as bc

    truth_v, truth_t = bc.concat(val, "frames"), bc.concat(test, "frames")
    clean_v = bc.concat(val, "undamaged")
    clean_t = bc.concat(test, "undamaged")
    peer_v, peer_t = bc.blockdetect_split(val), bc.blockdetect_split(test)
    grid = np.unique(np.quantile(peer_v, np.linspace(0, 1, 400)))
    t_peer = bc.choose_threshold(peer_v, truth_v, peer_v[clean_v], grid)
    out: dict[str, Any] = {
        "frames": {"validation": int(len(truth_v)), "test": int(len(truth_t))},
        "blockdetect": _figures(truth_t, peer_t > t_peer, clean_t, f"lavfi.block > {t_peer:.4g}"),
    }
    if model is not None:
        maps_v, _ = bc.onnx_scores(model, val)
        maps_t, _ = bc.onnx_scores(model, test)
        clean_maps = [m for m, c in zip(maps_v, clean_v, strict=True) if c]
        region_t = bc.choose_region_threshold(maps_v, truth_v, clean_maps)
        flagged = bc._shares(maps_t, region_t) > bc.AREA_THRESHOLD
        out["light"] = _figures(truth_t, flagged, clean_t, f"region >= {region_t:.3g}")
        out["light"]["region_threshold"] = round(region_t, 3)
    return out


def _figures(truth: np.ndarray, flagged: np.ndarray, clean: np.ndarray, rule: str) -> dict:
    from lab.training.block_corruption import frame_metrics

    return {
        "rule": rule,
        "test": frame_metrics(truth, flagged),
        "clean_fpr": round(float(flagged[clean].mean()) if clean.any() else 0.0, 4),
        "clean_frames": int(clean.sum()),
    }
