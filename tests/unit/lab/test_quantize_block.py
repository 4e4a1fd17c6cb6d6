"""The block corruption quantizer: the trunk in int8, the heads in float, retraining's graph
edits still working, and the agreement figures it writes into the card."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from lab.synth.corrupt import ClipSpec, corrupted_clip
from lab.training.quantize_block import MODEL, agreement, quantize, trunk_nodes
from monitor.inference.engine import default_model_dir
from monitor.inference.graph_edit import region_head, with_region_head
from monitor.inference.models import ModelCache

FLOAT = default_model_dir() / f"{MODEL}_fp32.onnx"


def _frames() -> np.ndarray:
    clip = corrupted_clip(ClipSpec(seed=78_123, scenes=("slow_pan",), frames=12, damage=1.0))
    return np.concatenate([clip.damaged[::3], clip.clean[::3]])


def test_the_trunk_is_quantized_and_the_heads_stay_float(tmp_path: Path) -> None:
    frames = _frames()
    out = tmp_path / "q.onnx"
    quantize(FLOAT, out, iter(frames))
    graph = onnx.load(str(out)).graph
    ints = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.INT8}
    trunk_weights = {i for n in graph.node if n.op_type == "DequantizeLinear" for i in n.input}
    assert ints and ints <= trunk_weights  # every int8 tensor is a trunk weight, dequantized
    assert trunk_nodes(FLOAT)  # the names the quantizer picks exist in the float graph
    data = out.read_bytes()
    w, b = region_head(data)  # still a float 1x1 convolution that retraining refits
    edited = with_region_head(data, -w, -b)
    x = frames[:2].transpose(0, 3, 1, 2).astype(np.float32)
    old = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"rgb": x})
    new = ort.InferenceSession(edited, providers=["CPUExecutionProvider"]).run(None, {"rgb": x})
    np.testing.assert_allclose(new[0], 1 - old[0], atol=1e-5)
    np.testing.assert_allclose(new[2], old[2], atol=1e-6)  # the trunk's features unchanged


def test_agreement_counts_the_changed_decisions_of_the_shipped_pair() -> None:
    frames = _frames()
    groups = {"192x320": {"rgb": frames, "clip": np.zeros(len(frames), int)}}
    models = ModelCache()
    shipped, source = models.model(MODEL), models.model(f"{MODEL}_fp32")
    same = agreement(source, source, groups)
    assert same["frames"] == len(frames) and same["max_abs_prob_diff"] == 0.0
    assert same["frame_decisions_changed"] == 0.0
    pair = agreement(source, shipped, groups)
    assert 0.0 < pair["mean_abs_prob_diff"] < 0.05
    assert pair["frame_decisions_changed"] <= 0.25
