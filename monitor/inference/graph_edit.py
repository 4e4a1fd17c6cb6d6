"""Edits of the block corruption graph that keep its trunk: its features as outputs, and a
new region head.

The region map is one 1x1 convolution (``region.weight`` (1, C, 1, 1), ``region.bias`` (1,))
over the trunk's last feature map, so the trunk's features are what an active-learning
selection clusters and what a retraining fits a new region head on. Two extra outputs expose
them without a second model::

    features    (batch, C, rows, cols)   the trunk's map, one C-vector per 32x32 region
    embedding   (batch, C)               its mean over the picture (the frame's embedding)

    add_feature_outputs(path)                      # once, at export (idempotent)
    with_region_head(data, weight, bias) -> bytes  # the same graph with a new head

Both change no existing output: the trunk, the head and their arithmetic stay as they were.
``onnx`` is needed only here, by the exporter and ``vqm retrain``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

FEATURES = "features"
EMBEDDING = "embedding"
REGION_WEIGHT = "region.weight"
REGION_BIAS = "region.bias"


class GraphEditError(ValueError):
    """A graph that is not the block corruption network this module knows."""


def _region_conv(graph: Any) -> Any:
    for node in graph.node:
        if node.op_type == "Conv" and REGION_WEIGHT in node.input:
            return node
    raise GraphEditError(f"no Conv node reads {REGION_WEIGHT}")


def _pooled(graph: Any, trunk: str) -> str:
    """The ReduceMean of the trunk's map the frame head already computes."""
    for node in graph.node:
        if node.op_type == "ReduceMean" and list(node.input)[:1] == [trunk]:
            return str(node.output[0])
    raise GraphEditError("no mean of the trunk's features in the graph")


def add_feature_outputs(path: Path) -> bool:
    """Add ``features`` and ``embedding`` outputs to the ONNX file at ``path``; False when
    it has them already."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(path))
    graph = model.graph
    if FEATURES in {o.name for o in graph.output}:
        return False
    trunk = str(_region_conv(graph).input[0])
    pooled = _pooled(graph, trunk)
    graph.node.extend(
        [
            helper.make_node("Identity", [trunk], [FEATURES], name="features_out"),
            helper.make_node("Identity", [pooled], [EMBEDDING], name="embedding_out"),
        ]
    )
    graph.output.extend(
        [
            helper.make_tensor_value_info(
                FEATURES, TensorProto.FLOAT, ["batch", "channels", "rows", "cols"]
            ),
            helper.make_tensor_value_info(EMBEDDING, TensorProto.FLOAT, ["batch", "channels"]),
        ]
    )
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return True


def region_head(data: bytes) -> tuple[np.ndarray, float]:
    """The graph's region head as (weight (C,), bias)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(data)
    found = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    if REGION_WEIGHT not in found or REGION_BIAS not in found:
        raise GraphEditError(f"no {REGION_WEIGHT}/{REGION_BIAS} initializers")
    return found[REGION_WEIGHT].reshape(-1).astype(np.float64), float(found[REGION_BIAS][0])


def with_region_head(data: bytes, weight: np.ndarray, bias: float) -> bytes:
    """The serialised graph ``data`` with its region head replaced (same shapes)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(data)
    replaced = 0
    for init in model.graph.initializer:
        if init.name == REGION_WEIGHT:
            old = numpy_helper.to_array(init)
            new = np.asarray(weight, np.float32).reshape(old.shape)
            init.CopyFrom(numpy_helper.from_array(new, REGION_WEIGHT))
            replaced += 1
        elif init.name == REGION_BIAS:
            init.CopyFrom(numpy_helper.from_array(np.asarray([bias], np.float32), REGION_BIAS))
            replaced += 1
    if replaced != 2:
        raise GraphEditError(f"no {REGION_WEIGHT}/{REGION_BIAS} initializers")
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


__all__ = [
    "EMBEDDING",
    "FEATURES",
    "GraphEditError",
    "add_feature_outputs",
    "region_head",
    "with_region_head",
]
