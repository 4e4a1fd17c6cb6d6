"""Train, export and evaluate the ``block_corruption`` models (full ResNet18 and light trunk).

    vqm train block_corruption      # python -m lab.training.block_corruption train
    vqm export block_corruption     # ONNX + model cards in exported_models/
    vqm eval block_corruption       # held-out metrics beside FFmpeg's blockdetect (no torch)

**Data** (:mod:`lab.synth.corrupt`): synthetic content encoded to H.264, non-key packets
damaged as a network damages them (bytes overwritten or cut, slices or whole packets lost),
decoded with FFmpeg's concealment. A 32x32 region is corrupted where a viewer sees the damage:
compared as 8x8 block means with the clean decode of the same stream, its blocks are more than
6 luma codes off on average or two of them more than 12 off, against its own clean frame and
the 3 before it (a repeated picture is a stutter, not blocks). A frame is corrupted where more
than 7 % of its regions are. Training clips, validation clips and held-out clips have disjoint
seeds and disjoint scene mixes; held-out overlays are another family (fonts, confetti,
ripples). Two more sets of undamaged hard content (crowds, high motion, grain, noise, text,
confetti, water) give the false-positive rates: one for validation, one held out.

**Decisions.** *map*: a region is corrupted when its probability reaches ``region_threshold``,
a frame when the corrupted share of its area exceeds 0.07. *head*: the jointly learned frame
probability reaches ``head_threshold``. Both thresholds, and FFmpeg ``blockdetect``'s, are
chosen on validation (best F1 with at most 1 % false positives on the validation clean set);
the held-out sets are scored once, for the card.

Torch is imported only by ``train`` and ``export``; ``eval`` runs the exported ONNX files.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lab.evaluation import block_real
from lab.synth.corrupt import (
    AREA_THRESHOLD,
    BLOCK,
    BLOCK_THRESHOLD,
    BLOCKS_VISIBLE,
    HOLD_FRAMES,
    OVERLAYS,
    REGION,
    REGION_THRESHOLD,
    ClipSpec,
    corrupted_clip,
    split_specs,
)
from lab.training import onnx_init
from lab.training.block_real import REAL_CLIPS, real_specs
from lab.training.common import REPO_MODELS
from monitor.app.progress import track_time
from monitor.inference.detectors.block_corruption import whole_regions
from monitor.inference.graph_edit import add_feature_outputs

logger = logging.getLogger(__name__)

MODELS = {"light": "block_corruption_light"}
VERSIONS = {"light": "2.1.0"}  # 2.0: trained on damaged real footage; 2.1: features as outputs
CROP = (192, 320)
FRAMES = 48
CLIPS = {"train": 400, "validation": 60, "heldout": 120}
CLEAN_CLIPS = {"train_clean": 160, "validation_clean": 24, "heldout_clean": 48}
TRAIN_SETS = ("real_train", "train", "train_clean")
TRAIN_FRAMES_PER_CLIP = 16
EVAL_FRAME_STEP = 3
MAX_FPR = 0.01
_CLEAN_SEEDS = {"train_clean": 50_000, "validation_clean": 45_000, "heldout_clean": 40_000}
_CLEAN_MIXES = (("crowd",), ("high_motion",), ("crowd", "high_motion"), ("high_motion", "crowd"))


FEATURE_OUTPUTS = [
    {
        "name": "features",
        "shape": ["batch", 192, "rows", "cols"],
        "dtype": "float32",
        "meaning": "the trunk's last feature map, one 192-vector per 32x32 region (what "
        "region_prob's 1x1 convolution reads): for active-learning selection and region-head "
        "retraining",
    },
    {
        "name": "embedding",
        "shape": ["batch", 192],
        "dtype": "float32",
        "meaning": "the mean of features over the picture: the frame's embedding",
    },
]


def default_out_dir() -> Path:
    return Path.home() / ".cache" / "vqm" / "training" / "block_corruption"


# ----------------------------------------------------------------------------- data


def clean_specs(split: str, clips: int) -> list[ClipSpec]:
    """Undamaged hard content: crowds and high motion under grain and every overlay."""
    family = 1 if split == "heldout_clean" else 0
    specs = []
    for i in range(clips):
        seed = _CLEAN_SEEDS[split] + i
        rng = np.random.default_rng(seed)
        specs.append(
            ClipSpec(
                seed=seed,
                scenes=_CLEAN_MIXES[i % len(_CLEAN_MIXES)],
                frames=FRAMES,
                grain=float(rng.choice([0.0, 1.5, 3.0, 5.0])),
                damage=0.0,
                crf=int(rng.integers(20, 32)),
                slices=int(rng.choice([1, 2, 4])),
                overlay=OVERLAYS[i % len(OVERLAYS)],
                family=family,
                width=640 if i % 3 == 2 else 320,
                height=352 if i % 3 == 2 else 192,
            )
        )
    return specs


def split_clip_specs(split: str) -> list[ClipSpec]:
    if split in REAL_CLIPS:
        return real_specs(split, FRAMES)
    if split in CLEAN_CLIPS:
        return clean_specs(split, CLEAN_CLIPS[split])
    return list(split_specs(split, CLIPS[split], FRAMES))


def is_hard(spec: ClipSpec) -> bool:
    """Content that fools signal processing: crowds, high motion, grain, noise, text..."""
    return (
        bool({"crowd", "high_motion"} & set(spec.scenes))
        or spec.overlay != "none"
        or (spec.grain > 0)
    )


def _clip_frames(job: tuple[str, int, ClipSpec]) -> dict[str, Any]:
    """Frames of one clip as a split keeps them: training crops, or whole evaluation frames."""
    split, index, spec = job
    clip = corrupted_clip(spec)
    rng = np.random.default_rng([index, 0xC0DE])
    if split.startswith("train"):
        picks = np.sort(rng.choice(FRAMES, TRAIN_FRAMES_PER_CLIP, replace=False))
    else:
        picks = np.arange(0, FRAMES, EVAL_FRAME_STEP)
    rgb, regions = clip.damaged[picks], clip.region_labels[picks]
    if split.startswith("train") and rgb.shape[1:3] != CROP:
        rows, cols = regions.shape[1] - CROP[0] // REGION, regions.shape[2] - CROP[1] // REGION
        r, c = int(rng.integers(0, rows + 1)), int(rng.integers(0, cols + 1))
        rgb = rgb[:, r * REGION : r * REGION + CROP[0], c * REGION : c * REGION + CROP[1]]
        regions = regions[:, r : r + CROP[0] // REGION, c : c + CROP[1] // REGION]
    return {
        "rgb": np.ascontiguousarray(rgb),
        "regions": regions,
        "frames": regions.mean(axis=(1, 2)) > AREA_THRESHOLD,
        "clip": np.full(len(picks), index),
        "hard": np.full(len(picks), is_hard(spec)),
        "undamaged": np.full(len(picks), spec.damage == 0.0),
    }


def make_split(split: str, workers: int = 2) -> dict[str, dict[str, np.ndarray]]:
    """Every frame of a split, grouped by picture size (``"192x320"`` -> arrays)."""
    jobs = [(split, i, spec) for i, spec in enumerate(split_clip_specs(split))]
    if workers > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_clip_frames, jobs, chunksize=4)
    else:
        parts = [_clip_frames(job) for job in jobs]
    groups: dict[str, list[dict[str, Any]]] = {}
    for part in parts:
        h, w = part["rgb"].shape[1:3]
        groups.setdefault(f"{h}x{w}", []).append(part)
    return {
        size: {key: np.concatenate([p[key] for p in items]) for key in items[0]}
        for size, items in groups.items()
    }


def cached_split(split: str, out_dir: Path | None = None, workers: int = 2) -> dict[str, dict]:
    path = (out_dir or default_out_dir()) / f"{split}.npz"
    if path.exists():
        with np.load(path) as data:
            out: dict[str, dict] = {}
            for key in data.files:
                size, name = key.split("/")
                out.setdefault(size, {})[name] = data[key]
            return out
    started = time.perf_counter()
    groups = make_split(split, workers)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"{s}/{k}": v for s, g in groups.items() for k, v in g.items()}
    np.savez(path, **arrays)  # type: ignore[arg-type]
    logger.info("generated %s in %.0f s", split, time.perf_counter() - started)
    return groups


def frames_of(groups: dict[str, dict]) -> int:
    return sum(len(g["frames"]) for g in groups.values())


# ----------------------------------------------------------------------------- metrics


def frame_metrics(truth: np.ndarray, flagged: np.ndarray) -> dict[str, float]:
    truth, flagged = np.asarray(truth, bool), np.asarray(flagged, bool)
    tp = int((truth & flagged).sum())
    fp = int((~truth & flagged).sum())
    fn = int((truth & ~flagged).sum())
    precision = tp / max(tp + fp, 1)
    recall = tp / max(tp + fn, 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-9)
    return {
        "f1": round(f1, 4),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "fpr": round(fp / max(int((~truth).sum()), 1), 4),
        "frames": int(len(truth)),
        "corrupted": int(truth.sum()),
    }


def choose_threshold(
    scores: np.ndarray, truth: np.ndarray, clean_scores: np.ndarray, candidates: np.ndarray
) -> float:
    """Best F1 on validation among thresholds with at most ``MAX_FPR`` on the clean set;
    when none qualifies, the one with the fewest clean false positives."""
    return _best_rule(candidates, truth, lambda t: scores > t, lambda t: clean_scores > t)


def _best_rule(
    candidates: np.ndarray,
    truth: np.ndarray,
    flagged: Callable[[float], np.ndarray],
    clean_flagged: Callable[[float], np.ndarray],
) -> float:
    """The candidate whose rule (``flagged(t)`` on validation, ``clean_flagged(t)`` on the
    validation clean set) has the best F1 with at most ``MAX_FPR`` clean false positives, or
    failing that the fewest clean false positives."""
    best, best_key = float(candidates[0]), (-1.0, -1.0)
    for t in candidates:
        clean = clean_flagged(float(t))
        fpr = float(clean.mean()) if len(clean) else 0.0
        f1 = frame_metrics(truth, flagged(float(t)))["f1"]
        key = (1.0, f1) if fpr <= MAX_FPR else (0.0, -fpr)
        if key > best_key:
            best, best_key = float(t), key
    return best


# ----------------------------------------------------------------------------- FFmpeg peer

_BLOCK = re.compile(r"lavfi\.block=(?P<v>[-\d.eE+naif]+)")


def blockdetect_scores(rgb: np.ndarray) -> np.ndarray:
    """FFmpeg ``blockdetect``'s ``lavfi.block`` for each frame of ``rgb`` (N, H, W, 3)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("the ffmpeg CLI is needed for the blockdetect baseline")
    n, h, w, _ = rgb.shape
    cmd = [
        ffmpeg, "-hide_banner", "-nostats", "-f", "rawvideo", "-pix_fmt", "rgb24",
        "-s", f"{w}x{h}", "-r", "25", "-i", "-",
        "-vf", "format=yuv420p,blockdetect,metadata=print:file=-", "-f", "null", "-",
    ]  # fmt: skip
    done = subprocess.run(cmd, input=rgb.tobytes(), capture_output=True, check=True)
    values = [float(m["v"]) for m in _BLOCK.finditer(done.stdout.decode())]
    if len(values) != n:
        raise RuntimeError(f"blockdetect printed {len(values)} values for {n} frames")
    return np.nan_to_num(np.asarray(values), nan=0.0)


def blockdetect_split(groups: dict[str, dict]) -> np.ndarray:
    """Scores in the order :func:`concat` uses, one ffmpeg run per clip."""
    out = []
    for g in groups.values():
        for clip in np.unique(g["clip"]):
            out.append(blockdetect_scores(g["rgb"][g["clip"] == clip]))
    return np.concatenate(out)


def concat(groups: dict[str, dict], key: str) -> np.ndarray:
    """One key over every size group, clips in order within each group (as the peer runs)."""
    out = []
    for g in groups.values():
        for clip in np.unique(g["clip"]):
            out.append(g[key][g["clip"] == clip])
    return np.concatenate(out)


# ----------------------------------------------------------------------------- ONNX scoring


def onnx_scores(model: Any, groups: dict[str, dict], batch: int = 16) -> tuple[list, np.ndarray]:
    """(region maps per frame over whole regions, head probabilities) in :func:`concat`
    order."""
    maps: list[np.ndarray] = []
    heads: list[np.ndarray] = []
    for g in groups.values():
        for clip in np.unique(g["clip"]):
            rgb = g["rgb"][g["clip"] == clip]
            for i in range(0, len(rgb), batch):
                x = rgb[i : i + batch].transpose(0, 3, 1, 2).astype(np.float32)
                region, frame = model.run_all(x)[:2]  # then features, embedding
                maps.extend(whole_regions(region, *x.shape[2:])[:, 0])  # as the detector does
                heads.append(frame[:, 0])
    return maps, np.concatenate(heads)


def _shares(maps: list[np.ndarray], threshold: float) -> np.ndarray:
    """Corrupted share per frame over the regions the labels cover (whole 32x32 cells)."""
    return np.asarray([float((m >= threshold).mean()) for m in maps])


def _map_region_labels(groups: dict[str, dict]) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    for g in groups.values():
        for clip in np.unique(g["clip"]):
            out.extend(g["regions"][g["clip"] == clip])
    return out


def evaluate(models_dir: Path = REPO_MODELS, out_dir: Path | None = None) -> dict[str, Any]:
    """Score the exported models and FFmpeg's blockdetect; thresholds from validation only."""
    from monitor.inference.engine import OnnxModel

    data = {
        s: cached_split(s, out_dir)
        for s in ("validation", "validation_clean", "heldout", "heldout_clean")
    }
    truth = {s: concat(g, "frames") for s, g in data.items()}
    hard = {s: concat(g, "hard") & concat(g, "undamaged") for s, g in data.items()}
    specs = split_clip_specs("heldout_clean")
    overlay = np.array([specs[i].overlay for i in concat(data["heldout_clean"], "clip")])
    hard["heldout_clean_overlay"] = overlay
    results: dict[str, Any] = {"sets": {s: frames_of(g) for s, g in data.items()}}
    light = models_dir / f"{MODELS['light']}.onnx"
    model = OnnxModel(MODELS["light"], models_dir, providers=["CPUExecutionProvider"])
    real = block_real.real_split_figures(
        cached_split("real_validation", out_dir),
        cached_split("real_test", out_dir),
        model if light.exists() else None,
    )
    real["clean_alerts"] = block_real.clean_alerts(models_dir)
    results["real"] = real

    peer = {s: blockdetect_split(g) for s, g in data.items()}
    grid = np.unique(
        np.quantile(
            np.concatenate([peer["validation"], peer["validation_clean"]]), np.linspace(0, 1, 400)
        )
    )
    t_peer = choose_threshold(
        peer["validation"], truth["validation"], peer["validation_clean"], grid
    )
    results["blockdetect"] = _report(peer, truth, hard, t_peer, "lavfi.block >")

    for trunk, name in MODELS.items():
        if not (models_dir / f"{name}.onnx").exists():
            continue
        model = OnnxModel(name, models_dir, providers=["CPUExecutionProvider"])
        scored = {s: onnx_scores(model, g) for s, g in data.items()}
        maps = {s: scored[s][0] for s in data}
        region_t = choose_region_threshold(
            maps["validation"], truth["validation"], maps["validation_clean"]
        )
        shares = {s: _shares(maps[s], region_t) for s in data}
        heads = {s: scored[s][1] for s in data}
        head_t = choose_threshold(
            heads["validation"],
            truth["validation"],
            heads["validation_clean"],
            np.linspace(0.05, 0.95, 91),
        )
        region_f1 = _region_f1(maps["heldout"], _map_region_labels(data["heldout"]), region_t)
        results[trunk] = {
            "model": name,
            "thresholds": {
                "region": round(region_t, 3),
                "area": AREA_THRESHOLD,
                "head": round(head_t, 3),
            },
            "map": _report(shares, truth, hard, AREA_THRESHOLD, "share >"),
            "head": _report(heads, truth, hard, head_t, "frame_prob >"),
            "heldout_region_f1": region_f1,
        }
    return results


def choose_region_threshold(
    maps: list[np.ndarray], truth: np.ndarray, clean_maps: list[np.ndarray]
) -> float:
    """The region probability that, with the fixed 0.07 area rule, gives the best validation
    F1 with at most ``MAX_FPR`` false positives on the validation clean set."""
    return _best_rule(
        np.linspace(0.1, 0.9, 17),
        truth,
        lambda t: _shares(maps, t) > AREA_THRESHOLD,
        lambda t: _shares(clean_maps, t) > AREA_THRESHOLD,
    )


def _region_f1(maps: list[np.ndarray], labels: list[np.ndarray], t: float) -> float:
    pred = np.concatenate([(m >= t).ravel() for m in maps])
    true = np.concatenate([lab.ravel() for lab in labels])
    return frame_metrics(true, pred)["f1"]


def _report(scores: dict, truth: dict, hard: dict, t: float, rule: str) -> dict[str, Any]:
    flagged = {s: scores[s] > t for s in scores}
    clean_hard = np.concatenate([flagged["heldout_clean"], flagged["heldout"][hard["heldout"]]])
    return {
        "rule": f"{rule} {t:.4g}",
        "threshold": round(float(t), 5),
        "validation": frame_metrics(truth["validation"], flagged["validation"]),
        "heldout": frame_metrics(truth["heldout"], flagged["heldout"]),
        "heldout_clean_hard_fpr": round(float(clean_hard.mean()), 4),
        "heldout_clean_hard_frames": int(len(clean_hard)),
        "heldout_clean_fpr_by_overlay": {
            str(o): round(
                float(flagged["heldout_clean"][hard["heldout_clean_overlay"] == o].mean()), 4
            )
            for o in np.unique(hard["heldout_clean_overlay"])
        },
    }


def print_real(real: dict[str, Any], out: Any = sys.stdout) -> None:
    """The real-footage figures: test split frames, then false alerts on clean footage."""
    print(f"real test split ({real['frames']['test']} frames; thresholds from real validation)",
          file=out)  # fmt: skip
    print(f"{'decision':24} {'rule':26} {'F1':>6} {'prec':>6} {'recall':>6} {'FPR clean':>9}",
          file=out)  # fmt: skip
    for label, key in (("blockdetect (FFmpeg)", "blockdetect"), ("vqm light map", "light")):
        if key in real:
            r, t = real[key], real[key]["test"]
            print(f"{label:24} {r['rule']:26} {t['f1']:6.3f} {t['precision']:6.3f} "
                  f"{t['recall']:6.3f} {r['clean_fpr']:9.4f}", file=out)  # fmt: skip
    for encode, c in real.get("clean_alerts", {}).items():
        rate = c["alerts"] / c["hours"] if c["hours"] else float("nan")
        print(f"clean real footage, {encode:20} {c['alerts']:3d} alerts in {c['hours'] * 60:5.1f} "
              f"min ({rate:.1f} per hour)", file=out)  # fmt: skip


def print_table(results: dict[str, Any], out: Any = sys.stdout) -> None:
    rows = [("blockdetect (FFmpeg)", results["blockdetect"])]
    for trunk in MODELS:
        if trunk in results:
            rows += [
                (f"{trunk} map", results[trunk]["map"]),
                (f"{trunk} head", results[trunk]["head"]),
            ]
    print(
        f"{'decision':24} {'rule':26} {'F1':>6} {'prec':>6} {'recall':>6} {'FPR':>6} "
        f"{'FPR clean hard':>14}",
        file=out,
    )
    for label, r in rows:
        h = r["heldout"]
        print(
            f"{label:24} {r['rule']:26} {h['f1']:6.3f} {h['precision']:6.3f} {h['recall']:6.3f} "
            f"{h['fpr']:6.3f} {r['heldout_clean_hard_fpr']:14.4f}",
            file=out,
        )
    print(f"held-out frames: {results['sets']}; thresholds chosen on validation", file=out)


# ----------------------------------------------------------------------------- training

TRAIN_MINUTES = {"light": 35.0, "full": 35.0}
TRAIN_SUBCROP = {"full": (128, 192)}  # trunks trained on windows of the 192x320 crops
TRAIN_SETTINGS: dict[str, Any] = {
    "batch": 32,
    "optimizer": "AdamW",
    "lr": {"light": 3e-3, "full": 1.5e-3},
    "weight_decay": 1e-4,
    "schedule": "3 % linear warm-up, then cosine to 0 over the time budget",
    "loss": "BCE per region (positive weight 3) + 0.5 * BCE of the frame head",
    "augmentation": "horizontal flip; random 32-aligned 192x320 crops of 640x352 clips; "
    "the ResNet18 trains on random 32-aligned 128x192 windows of those",
    "seed": 0,
    "threads": 2,
}


def _subcrop(x: Any, y: Any, size: tuple[int, int], rng: np.random.Generator) -> tuple:
    """A random 32-aligned ``size`` window of a batch, with its region and frame labels: more
    steps per CPU minute for the ResNet18, whose cost grows with the picture."""
    rows, cols = size[0] // REGION, size[1] // REGION
    r = int(rng.integers(0, y.shape[1] - rows + 1))
    c = int(rng.integers(0, y.shape[2] - cols + 1))
    x = x[:, :, r * REGION : (r + rows) * REGION, c * REGION : (c + cols) * REGION]
    y = y[:, r : r + rows, c : c + cols]
    return x, y, (y.mean(dim=(1, 2)) > AREA_THRESHOLD).float()


def _batches(n: int, size: int, rng: np.random.Generator):  # type: ignore[no-untyped-def]
    while True:
        order = rng.permutation(n)
        for i in range(0, n - size + 1, size):
            yield order[i : i + size]


def _torch_validate(model: Any, groups: dict[str, dict]) -> dict[str, float]:
    """Frame F1 of both decisions at default thresholds, for picking a checkpoint."""
    import torch

    model.eval()
    shares, heads, truth = [], [], []
    with torch.no_grad():
        for g in groups.values():
            for i in range(0, len(g["frames"]), 32):
                x = torch.from_numpy(g["rgb"][i : i + 32]).permute(0, 3, 1, 2).float()
                region, frame = model(x)
                lab = g["regions"][i : i + 32]
                m = region[:, 0, : lab.shape[1], : lab.shape[2]].numpy()
                shares.append((m >= 0.5).reshape(len(m), -1).mean(axis=1))
                heads.append(frame[:, 0].numpy())
                truth.append(g["frames"][i : i + 32])
    model.train()
    t = np.concatenate(truth)
    return {
        "map_f1": frame_metrics(t, np.concatenate(shares) > AREA_THRESHOLD)["f1"],
        "head_f1": frame_metrics(t, np.concatenate(heads) > 0.5)["f1"],
    }


def train(
    trunk: str,
    out_dir: Path,
    minutes: float | None = None,
    init: Path | None = None,
    lr: float | None = None,
) -> Path:
    """Train one trunk for a wall-clock budget, from scratch, from the checkpoint ``init``
    (a second round on new data) or from a shipped ONNX file ``init`` (``.onnx``: its folded
    batch norms then stay frozen, see :mod:`lab.training.onnx_init`); keeps the best
    validation step."""
    import torch
    from torch.nn import functional as F  # noqa: N812

    from lab.training.resnet import BlockCorruptionNet

    torch.manual_seed(TRAIN_SETTINGS["seed"])
    torch.set_num_threads(TRAIN_SETTINGS["threads"])
    rng = np.random.default_rng(TRAIN_SETTINGS["seed"])
    parts = [cached_split(s, out_dir)["192x320"] for s in TRAIN_SETS]
    data = {k: np.concatenate([p[k] for p in parts]) for k in ("rgb", "regions", "frames")}
    validation = cached_split("real_validation", out_dir)
    x_all = torch.from_numpy(data["rgb"])
    regions = torch.from_numpy(data["regions"].astype(np.float32))
    frames = torch.from_numpy(data["frames"].astype(np.float32))
    model = BlockCorruptionNet(trunk)
    frozen = init is not None and init.suffix == ".onnx"
    if frozen:
        assert init is not None
        onnx_init.load_onnx_weights(model, init)
    elif init is not None:
        model.load_state_dict(torch.load(init, weights_only=True)["state"])
    lr = lr or TRAIN_SETTINGS["lr"][trunk]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=TRAIN_SETTINGS["weight_decay"])
    budget = 60.0 * (minutes or TRAIN_MINUTES[trunk])
    pos_weight = torch.tensor(3.0)
    path = out_dir / f"{trunk}.pt"
    best, step, started, last_val = -1.0, 0, time.perf_counter(), time.perf_counter()
    history = []
    batches = _batches(len(frames), TRAIN_SETTINGS["batch"], rng)
    for idx in track_time(batches, f"training {trunk}", budget):
        elapsed = time.perf_counter() - started
        if elapsed >= budget:
            break
        frac = elapsed / budget
        scale = min(1.0, frac / 0.03) * 0.5 * (1 + np.cos(np.pi * frac))
        for group in opt.param_groups:
            group["lr"] = lr * scale
        if frozen:
            onnx_init.freeze_bn(model)  # validation's model.train() woke them
        x = x_all[idx].permute(0, 3, 1, 2).float()
        y, f = regions[idx], frames[idx]
        if trunk in TRAIN_SUBCROP:
            x, y, f = _subcrop(x, y, TRAIN_SUBCROP[trunk], rng)
        if rng.random() < 0.5:
            x, y = x.flip(3), y.flip(2)
        region, frame = model.logits(x)
        loss = F.binary_cross_entropy_with_logits(
            region[:, 0], y, pos_weight=pos_weight
        ) + 0.5 * F.binary_cross_entropy_with_logits(frame[:, 0], f)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 50 == 0:
            logger.info("%s step %d loss %.4f lr %.2e", trunk, step, loss.item(), lr * scale)
        end = time.perf_counter() - started >= budget
        if time.perf_counter() - last_val > budget / 6 or end:
            scores = _torch_validate(model, validation)
            score = (scores["map_f1"] + scores["head_f1"]) / 2
            history.append({"step": step, "seconds": round(elapsed), **scores})
            logger.info("%s step %d validation %s", trunk, step, scores)
            if score >= best:
                best = score
                torch.save({"state": model.state_dict(), "step": step}, path)
            last_val = time.perf_counter()
    scores = _torch_validate(model, validation)
    history.append({"step": step, "seconds": round(time.perf_counter() - started), **scores})
    if (scores["map_f1"] + scores["head_f1"]) / 2 >= best:
        torch.save({"state": model.state_dict(), "step": step}, path)
    info = {
        "init": str(init.name) if init else None,
        "lr": lr,
        "minutes": budget / 60,
        "steps": step,
        "seconds": round(time.perf_counter() - started),
        "history": history,
        "examples": int(len(frames)),
    }
    (out_dir / f"{trunk}.json").write_text(json.dumps(info, indent=2))
    logger.info("%s: %d steps, best validation %.4f -> %s", trunk, step, best, path)
    return path


# ----------------------------------------------------------------------------- export


def _fp16_weights(path: Path) -> None:
    """Store float weights as float16, cast back to float32 in the graph: half the file, the
    same float32 arithmetic (CPUs run fp32 convolutions fastest)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    casts, keep = [], []
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT and np.prod(init.dims) > 16:
            half = numpy_helper.from_array(
                numpy_helper.to_array(init).astype(np.float16), init.name + "_fp16"
            )
            keep.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT))
        else:
            keep.append(init)
    del graph.initializer[:]
    graph.initializer.extend(keep)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def export(trunk: str, out_dir: Path, models_dir: Path) -> Path:
    """ONNX with dynamic batch, height and width, and the model card (metrics come after)."""
    import torch

    from lab.training.common import export_onnx, write_card
    from lab.training.resnet import MEAN, STD, TRUNKS, BlockCorruptionNet

    name = MODELS[trunk]
    model = BlockCorruptionNet(trunk)
    checkpoint = torch.load(out_dir / f"{trunk}.pt", weights_only=True)
    model.load_state_dict(checkpoint["state"])
    path = models_dir / f"{name}.onnx"
    fp32 = out_dir / f"{name}.fp32.onnx"
    export_onnx(
        model,
        (torch.zeros(1, 3, 192, 320),),
        fp32,
        {"rgb": {0: "batch", 2: "height", 3: "width"}},
        {"region_prob": {0: "batch", 2: "rows", 3: "cols"}, "frame_prob": {0: "batch"}},
    )
    shutil.copy(fp32, path)
    add_feature_outputs(path)  # what active selection clusters and retraining fits a head on
    storage = "float32"
    if trunk == "full":
        _fp16_weights(path)
        storage = "float16 weights, float32 compute"
    drift = _compare(fp32, path, out_dir)
    info = json.loads((out_dir / f"{trunk}.json").read_text())
    widths, blocks = TRUNKS[trunk]
    card = {
        "name": name,
        "version": VERSIONS[trunk],
        "description": (
            "Block corruption (transmission errors concealed by the decoder): per-32x32-region "
            "probability map from a ResNet trunk ending in a 1x1 convolution, plus a frame "
            "decision head trained jointly."
        ),
        "architecture": {
            "trunk": "ResNet18" if trunk == "full" else "light ResNet (one basic block per stage)",
            "widths": list(widths),
            "blocks": list(blocks),
            "output_stride": 32,
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "weights_storage": storage,
            "fp16_max_abs_drift_vs_fp32": drift,
        },
        "inputs": [
            {
                "name": "rgb",
                "shape": ["batch", 3, "height", "width"],
                "dtype": "float32",
                "layout": "NCHW, RGB",
                "range": "0-255 (uint8 pictures cast to float); any height and width",
                "normalisation": f"inside the graph: (x / 255 - {MEAN[0]}) / {STD[0]}",
            }
        ],
        "outputs": [
            {
                "name": "region_prob",
                "shape": ["batch", 1, "rows", "cols"],
                "dtype": "float32",
                "meaning": "corruption probability of each 32x32 region; rows = ceil(H/32), "
                "cols = ceil(W/32) (224x224 -> 7x7, 1080x1920 -> 34x60)",
            },
            {
                "name": "frame_prob",
                "shape": ["batch", 1],
                "dtype": "float32",
                "meaning": "probability the frame is corrupted, from the jointly learned head",
            },
            *FEATURE_OUTPUTS,
        ],
        "classes": [],
        "thresholds": {"region": 0.5, "area": AREA_THRESHOLD, "head": 0.5},
        "data": {
            "recipe": (__doc__ or "").split("**Decisions.**")[0].split("**Data**")[1].strip(),
            "label_rule": {
                "compared_as_block_means_of": f"{BLOCK}x{BLOCK}",
                "region_mean_abs_block_luma_diff_over": REGION_THRESHOLD,
                "or_blocks_off_by_more_than": BLOCK_THRESHOLD,
                "at_least_blocks": BLOCKS_VISIBLE,
                "against_clean_frames_back_too": HOLD_FRAMES,
                "frame_corrupted_area_share_over": AREA_THRESHOLD,
            },
            "clips": {**CLIPS, **CLEAN_CLIPS},
            "frames_per_clip": FRAMES,
            "train_frames_per_clip": TRAIN_FRAMES_PER_CLIP,
            "eval_every_nth_frame": EVAL_FRAME_STEP,
            "train_examples": info["examples"],
        },
        "training": {
            "settings": {
                **TRAIN_SETTINGS,
                "lr": info.get("lr", TRAIN_SETTINGS["lr"][trunk]),
                "minutes": info.get("minutes", TRAIN_MINUTES[trunk]),
                "started_from": info.get("init") or "scratch",
            },
            "steps": info["steps"],
            "seconds": info["seconds"],
            "validation_history": info["history"],
            **_earlier_rounds(out_dir, trunk),
        },
    }
    write_card(models_dir / f"{name}.json", card)
    logger.info("exported %s (%d bytes)", path, path.stat().st_size)
    return path


def _earlier_rounds(out_dir: Path, trunk: str) -> dict[str, Any]:
    """What a warm-started model was trained on before: ``<trunk>.rounds.json`` in the
    working directory, written by whoever ran the earlier round (its data recipe may differ)."""
    path = out_dir / f"{trunk}.rounds.json"
    return {"earlier_rounds": json.loads(path.read_text())} if path.exists() else {}


def _compare(reference: Path, candidate: Path, out_dir: Path | None = None) -> float:
    """Largest output difference between two ONNX files on a few validation frames."""
    import onnxruntime as ort

    g = cached_split("validation", out_dir)
    x = next(iter(g.values()))["rgb"][:8].transpose(0, 3, 1, 2).astype(np.float32)
    outs = [
        ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"rgb": x})
        for p in (reference, candidate)
    ]
    pairs = zip(outs[0], outs[1][: len(outs[0])], strict=True)  # the fp32 file has no features
    return round(float(max(np.abs(a - b).max() for a, b in pairs)), 6)


# ----------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="block_corruption")
    parser.add_argument("command", choices=["train", "export", "eval", "data"])
    parser.add_argument("--trunk", choices=["light", "full", "both"], default="both")
    parser.add_argument("--minutes", type=float, default=None, help="Training time per trunk.")
    parser.add_argument("--out", type=Path, default=None, help="Cache for data and checkpoints.")
    parser.add_argument("--models", type=Path, default=REPO_MODELS)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--init", type=Path, default=None, help="Checkpoint to start from.")
    parser.add_argument("--lr", type=float, default=None, help="Peak learning rate.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    trunks = list(MODELS) if args.trunk == "both" else [args.trunk]
    if args.command == "data":
        for split in (
            *REAL_CLIPS,
            "train",
            "train_clean",
            "validation",
            "validation_clean",
            "heldout",
            "heldout_clean",
        ):
            groups = cached_split(split, args.out, args.workers)
            logger.info("%s: %d frames", split, frames_of(groups))
    elif args.command == "train":
        for trunk in trunks:
            train(trunk, args.out or default_out_dir(), args.minutes, args.init, args.lr)
    elif args.command == "export":
        for trunk in trunks:
            export(trunk, args.out or default_out_dir(), args.models)
        results = evaluate(args.models, args.out)
        _write_metrics(args.models, results)
        print_real(results["real"])
        print_table(results)
    else:
        results = evaluate(args.models, args.out)
        print_real(results["real"])
        print_table(results)
        print(json.dumps(results, indent=2))


def _write_metrics(models_dir: Path, results: dict[str, Any]) -> None:
    """Put validated thresholds and the real and synthetic figures into the card, and re-hash
    nothing: the card's sha256 covers the ONNX file, which does not change here. The shipped
    region threshold is the one chosen on real validation footage."""
    for trunk, name in MODELS.items():
        path = models_dir / f"{name}.json"
        if trunk not in results or not path.exists():
            continue
        card = json.loads(path.read_text())
        r, real = results[trunk], results["real"]
        card["thresholds"] = {**r["thresholds"], "region": real[trunk]["region_threshold"]}
        card["metrics"] = {
            "real": real,
            "synthetic": {
                "sets": results["sets"],
                "map": r["map"],
                "head": r["head"],
                "heldout_region_f1": r["heldout_region_f1"],
                "blockdetect": results["blockdetect"],
            },
        }
        card["targets"] = targets(real, trunk)
        path.write_text(json.dumps(card, indent=2) + "\n")


def targets(real: dict[str, Any], trunk: str = "light") -> dict[str, Any]:
    """The issue's row against the real figures, with the gaps stated plainly."""
    f1 = real[trunk]["test"]["f1"]
    peer = real["blockdetect"]["test"]["f1"]
    clean = real["clean_alerts"]
    alerts = sum(c["alerts"] for c in clean.values())
    hours = sum(c["hours"] for c in clean.values())
    return {
        "real_test_frame_f1_at_least": 0.90,
        "clean_real_false_alerts": 0,
        "clean_real_hours_at_least": 1.0,
        "f1": f1,
        "beats_blockdetect_f1": f1 > peer,
        "clean_alerts": alerts,
        "clean_hours": round(hours, 3),
        "met": f1 >= 0.90 and f1 > peer and alerts == 0 and hours >= 1.0,
    }


if __name__ == "__main__":
    main()
