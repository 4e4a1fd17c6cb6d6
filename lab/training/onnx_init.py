"""Start a block corruption network from a shipped ONNX model's weights.

The export folds each batch norm into the convolution before it, so the ONNX file holds one
(weight, bias) pair per convolution. Loaded back, every batch norm becomes the identity plus
that bias (gamma 1, beta the bias, mean 0, variance 1 - eps); the network computes exactly
what the ONNX file does as long as its batch norms stay in eval mode, which :func:`freeze_bn`
keeps while the rest fine-tunes. Used to start a real-footage round from the model trained on
synthetic content when the training checkpoint itself is gone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def load_onnx_weights(model: Any, path: Path) -> None:
    """Copy the ONNX file's folded convolutions and heads into ``model`` (a
    :class:`lab.training.resnet.BlockCorruptionNet`); raises ValueError on any mismatch."""
    import onnx
    import torch
    from onnx import numpy_helper
    from torch import nn

    graph = onnx.load(str(path)).graph
    weights = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    trunk_convs = [m for m in model.trunk.modules() if isinstance(m, nn.Conv2d)]
    bns = [m for m in model.trunk.modules() if isinstance(m, nn.BatchNorm2d)]
    trunk_nodes = [n for n in convs if n.input[1] != "region.weight"]
    if len(trunk_nodes) != len(trunk_convs) or len(bns) != len(trunk_convs):
        raise ValueError(f"{path}: {len(trunk_nodes)} convolutions, the network has "
                         f"{len(trunk_convs)}")  # fmt: skip
    pairs = []
    for node, conv in zip(trunk_nodes, trunk_convs, strict=True):
        w, b = weights[node.input[1]], weights[node.input[2]]
        if tuple(w.shape) != tuple(conv.weight.shape):
            raise ValueError(f"{path}: {node.name} is {w.shape}, not {conv.weight.shape}")
        pairs.append((torch.from_numpy(w.copy()), torch.from_numpy(b.astype(np.float32))))
    restore_folded(trunk_convs, bns, pairs)
    with torch.no_grad():
        for name in ("region.weight", "region.bias", "head.weight", "head.bias"):
            target = dict(model.named_parameters())[name]
            value = weights[name]
            if name == "head.weight" and value.shape != tuple(target.shape):
                value = value.T  # a Gemm may store the linear layer transposed
            target.copy_(torch.from_numpy(np.ascontiguousarray(value)).reshape(target.shape))


def restore_folded(convs: list[Any], norms: list[Any], pairs: list[tuple[Any, Any]]) -> None:
    """Each convolution gets its folded weight, the batch norm after it the identity plus the
    folded bias (gamma 1, beta the bias, mean 0, variance 1 - eps): exact while the norms
    stay frozen (:func:`freeze_bn`)."""
    import torch

    with torch.no_grad():
        for (weight, bias), conv, norm in zip(pairs, convs, norms, strict=True):
            conv.weight.copy_(weight)
            norm.weight.fill_(1.0)
            norm.bias.copy_(bias)
            norm.running_mean.zero_()
            norm.running_var.fill_(1.0 - norm.eps)


def freeze_bn(model: Any) -> None:
    """Keep every batch norm in eval mode (the folded statistics; their scale and shift still
    learn), whatever model.train() did."""
    from torch import nn

    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            m.eval()
