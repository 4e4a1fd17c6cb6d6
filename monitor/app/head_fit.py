"""Refit the block corruption region head (one 1x1 convolution: a logistic regression on each
32x32 region's trunk features) from labelled regions, kept near the shipped head.

The trunk stays frozen: a few hundred operator labels cannot retrain a network, but they can
move a decision boundary the network's features already support. The loss is the weighted
binary cross-entropy summed over the labelled regions plus ``prior / 2`` times the squared
distance to the shipped head (a Gaussian prior centred on it): a few labels move the head a
little, many move it further, and none leave it as shipped::

    w, b = fit_head(w0, b0, RegionLabels(features, targets, weights))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

PRIOR = 1.0  # a unit Gaussian on the change; fixed beforehand, not tuned on any evaluation


@dataclass
class RegionLabels:
    features: np.ndarray  # (M, C)
    targets: np.ndarray  # (M,) 0 or 1
    weights: np.ndarray  # (M,) how much each counts

    @classmethod
    def join(cls, parts: list[RegionLabels]) -> RegionLabels:
        kept = [p for p in parts if len(p.targets)]
        if not kept:
            return cls(np.zeros((0, 0)), np.zeros(0), np.zeros(0))
        return cls(
            np.concatenate([p.features for p in kept]),
            np.concatenate([p.targets for p in kept]),
            np.concatenate([p.weights for p in kept]),
        )


def fit_head(
    w0: np.ndarray, b0: float, labels: RegionLabels, prior: float = PRIOR
) -> tuple[np.ndarray, float]:
    """The refitted (weight (C,), bias); the shipped head when there is nothing to fit."""
    if len(labels.targets) == 0:
        return w0.copy(), b0
    x = np.asarray(labels.features, np.float64)
    y = np.asarray(labels.targets, np.float64)
    sw = np.asarray(labels.weights, np.float64)
    start = np.concatenate([w0, [b0]])

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ theta[:-1] + theta[-1]
        # log(1 + e^z) - y z, written to stay finite for large |z|
        value = float(np.sum(sw * (np.logaddexp(0.0, z) - y * z)))
        residual = sw * (1.0 / (1.0 + np.exp(-z)) - y)
        grad = np.concatenate([x.T @ residual, [residual.sum()]])
        delta = theta - start
        return value + 0.5 * prior * float(delta @ delta), grad + prior * delta

    found = minimize(loss, start, jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return found.x[:-1].copy(), float(found.x[-1])


def region_probs(features: np.ndarray, w: np.ndarray, b: float) -> np.ndarray:
    """Region probabilities of a head over features (..., C)."""
    z = np.asarray(features, np.float64) @ w + b
    return np.asarray(1.0 / (1.0 + np.exp(-z)))


__all__ = ["PRIOR", "RegionLabels", "fit_head", "region_probs"]
