"""Post-training int8 quantization of the block corruption trunk (ONNX Runtime, QDQ format).

The trunk's convolutions, ReLUs, additions and pooling are quantized (weights per output
channel, int8; activations uint8, their ranges calibrated on training frames); the heads are
left in float: the region head (a 1x1 convolution on the trunk's map) because ``vqm retrain``
refits it as a float initializer (:mod:`monitor.inference.graph_edit`), the frame head because
it is tiny. The ``features`` and ``embedding`` outputs are then the dequantized trunk map.

Why: on a CPU with 8-bit dot-product instructions (AVX-512 VNNI, AVX-VNNI, Arm dotprod) the
quantized graph runs two to three times faster than float32 (``benchmarks/
block_corruption_speed.py`` times both, the float32 model being shipped beside it as
``block_corruption_light_fp32``). What it costs in accuracy is measured, not assumed:
:func:`agreement` with the float model on the real validation and test splits, and every
figure of the card re-measured on the quantized model (``vqm eval block_corruption``).

    python -m lab.training.quantize_block --models exported_models --out /tmp/q8 [--data DIR]

writes ``block_corruption_light.onnx`` and its card into ``--out``: the float card with the new
version, file hash, a ``quantization`` section (method, calibration data, agreement with the
float model) and every metric re-measured on the quantized model (thresholds from validation
only, as the float model's were chosen).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

MODEL = "block_corruption_light"
TRUNK_PREFIX = "/trunk/"  # node names of the trunk as exported (see lab.training.resnet)
CALIBRATION_CLIPS = 24  # real_train clips (three picture sizes), every 6th frame of each
CALIBRATION_STEP = 6
VERSION = "2.2.0"


def trunk_nodes(path: Path) -> list[str]:
    """Names of the graph's trunk nodes: what is quantized."""
    import onnx

    graph = onnx.load(str(path)).graph
    names = [n.name for n in graph.node if n.name.startswith(TRUNK_PREFIX)]
    if not names:
        raise ValueError(f"{path}: no node named {TRUNK_PREFIX}...: not the trunk this knows")
    return names


def calibration_frames(clips: int = CALIBRATION_CLIPS) -> Iterator[np.ndarray]:
    """RGB frames (H, W, 3) of the first ``clips`` real_train recipes, damaged as trained,
    so the activation ranges cover corrupted pictures as well as clean ones. Training data
    only: the validation and test splits judge the result."""
    from lab.synth.corrupt import corrupted_clip
    from lab.training.block_real import real_specs

    specs = real_specs("real_train")[:clips]
    if not specs:
        raise RuntimeError("no real footage catalogued: run python -m lab.data.fetch first")
    for spec in specs:
        yield from corrupted_clip(spec).damaged[::CALIBRATION_STEP]


def quantize(src: Path, dst: Path, frames: Iterator[np.ndarray]) -> None:
    """Write the QDQ int8 model of ``src`` (float32) to ``dst``."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        """The calibrator's reader over the frames, one at a time."""

        def get_next(self) -> dict[str, np.ndarray] | None:
            frame = next(frames, None)
            if frame is None:
                return None
            return {"rgb": frame.transpose(2, 0, 1)[None].astype(np.float32)}

        def rewind(self) -> None:  # a one-pass reader; the calibrator does not rewind it
            raise NotImplementedError

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # Constant folding and shape inference first, as the quantizer's guide asks; the
        # symbolic pass needs SymPy and the graph's shapes are plain without it.
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(dst),
            Reader(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            nodes_to_quantize=trunk_nodes(prepared),
            calibrate_method=CalibrationMethod.MinMax,
        )


def agreement(float_model: Any, int8_model: Any, groups: dict[str, dict]) -> dict[str, float]:
    """How the quantized region maps differ from the float ones on a split's frames: the
    largest and mean absolute probability difference, and the share of regions and of frames
    whose decision (the card's region threshold, the 0.07 area rule) changes."""
    from lab.training.block_corruption import AREA_THRESHOLD, _shares, onnx_scores

    t = float(float_model.card.thresholds.get("region", 0.5))
    maps_f, _ = onnx_scores(float_model, groups)
    maps_q, _ = onnx_scores(int8_model, groups)
    diff = np.concatenate([np.abs(a - b).ravel() for a, b in zip(maps_f, maps_q, strict=True)])
    regions = np.concatenate(
        [((a >= t) != (b >= t)).ravel() for a, b in zip(maps_f, maps_q, strict=True)]
    )
    frames = (_shares(maps_f, t) > AREA_THRESHOLD) != (_shares(maps_q, t) > AREA_THRESHOLD)
    return {
        "frames": len(frames),
        "max_abs_prob_diff": round(float(diff.max()), 4),
        "mean_abs_prob_diff": round(float(diff.mean()), 5),
        "region_decisions_changed": round(float(regions.mean()), 5),
        "frame_decisions_changed": round(float(np.mean(frames)), 4),
    }


def write_card(float_dir: Path, out_dir: Path, agreed: dict[str, Any]) -> None:
    """The float model's card for the quantized file (metrics are rewritten after)."""
    import onnxruntime

    card = json.loads((float_dir / f"{MODEL}.json").read_text())
    data = (out_dir / f"{MODEL}.onnx").read_bytes()
    card.update(
        version=VERSION,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        file_size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    card["architecture"]["weights_storage"] = (
        "int8 trunk (QDQ, weights per output channel, uint8 activations), float32 heads"
    )
    card["quantization"] = {
        "method": "ONNX Runtime static quantization, QDQ format, MinMax calibration",
        "onnxruntime": onnxruntime.__version__,
        "quantized": f"the trunk's nodes ({TRUNK_PREFIX}*); the region and frame heads stay "
        "float32 (vqm retrain refits the region head as a float initializer)",
        "calibration": f"{CALIBRATION_CLIPS} real_train clips (damaged as for training), "
        f"every {CALIBRATION_STEP}th frame: training data only",
        "from": {
            "version": "2.1.0",
            "sha256": hashlib.sha256((float_dir / f"{MODEL}.onnx").read_bytes()).hexdigest(),
        },  # fmt: skip
        "agreement_with_float": agreed,
    }
    card.setdefault("history", []).append(
        {
            "version": VERSION,
            "change": "the trunk quantized to int8 (2.1.0's weights); "
            "metrics re-measured on the quantized model",
        }  # fmt: skip
    )
    (out_dir / f"{MODEL}.json").write_text(json.dumps(card, indent=2) + "\n")


def main() -> None:
    from lab.training import block_corruption as bc
    from monitor.inference.engine import OnnxModel

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=bc.REPO_MODELS)
    parser.add_argument("--out", type=Path, required=True, help="folder for the int8 model")
    parser.add_argument("--data", type=Path, default=None, help="the lab's split cache")
    parser.add_argument("--clips", type=int, default=CALIBRATION_CLIPS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    quantize(
        args.models / f"{MODEL}.onnx", args.out / f"{MODEL}.onnx", calibration_frames(args.clips)
    )
    cpu = ["CPUExecutionProvider"]
    original = OnnxModel(MODEL, args.models, providers=cpu)
    agreed = {}
    write_card(args.models, args.out, agreed)  # hash first, so the model loads
    quantized = OnnxModel(MODEL, args.out, providers=cpu)
    for split in ("real_validation", "real_test"):
        agreed[split] = agreement(original, quantized, bc.cached_split(split, args.data))
        logger.info("%s: %s", split, agreed[split])
    write_card(args.models, args.out, agreed)
    results = bc.evaluate(args.out, args.data)
    bc._write_metrics(args.out, results)
    bc.print_real(results["real"])
    bc.print_table(results)


if __name__ == "__main__":
    main()
