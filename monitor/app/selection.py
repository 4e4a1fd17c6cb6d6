"""What to annotate next: the seed rule, uncertainty only, or random.

The seed rule (uncertainty *and* diversity) takes the most uncertain half of the unlabelled
candidates, clusters that half into ``budget`` clusters in the model's embedding space
(k-means) and returns, per cluster, the candidate nearest its centroid: a budget spent on
what the model is unsure of, without spending it on twenty frames of the same scene.

    chosen = select(embeddings, uncertainty(scores, thresholds), budget=20, strategy="seed")

Uncertainty is the distance to the decision in logit space, negated (higher: less sure), so a
frame scored 0.89 against a threshold of 0.9 comes before one scored 0.5.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Strategy = Literal["seed", "uncertainty", "random"]
STRATEGIES: tuple[Strategy, ...] = ("seed", "uncertainty", "random")
_EPS = 1e-6


def logit(p: np.ndarray | float) -> np.ndarray:
    q = np.clip(np.asarray(p, np.float64), _EPS, 1 - _EPS)
    return np.asarray(np.log(q / (1 - q)))


def uncertainty(scores: np.ndarray, thresholds: np.ndarray | float) -> np.ndarray:
    """Minus the logit distance of each score from its decision threshold."""
    return -np.abs(logit(scores) - logit(thresholds))


def select(
    embeddings: np.ndarray,
    unsure: np.ndarray,
    budget: int,
    strategy: Strategy = "seed",
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Indices of at most ``budget`` candidates to label, by ``strategy``."""
    rng = rng or np.random.default_rng()
    n = len(unsure)
    budget = min(budget, n)
    if budget <= 0:
        return np.zeros(0, int)
    if strategy == "random":
        return np.sort(rng.choice(n, budget, replace=False))
    order = np.argsort(-unsure, kind="stable")
    if strategy == "uncertainty":
        return np.sort(order[:budget])
    half = order[: max(budget, (n + 1) // 2)]
    return np.sort(half[diverse(embeddings[half], budget, rng)])


def diverse(embeddings: np.ndarray, budget: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``budget`` points spread over ``embeddings`` (given most uncertain first):
    per k-means cluster of the unit-length embeddings, the member nearest its centroid."""
    if len(embeddings) <= budget:
        return np.arange(len(embeddings))
    return _nearest_centroids(_unit(embeddings), np.arange(len(embeddings)), budget, rng)


def kmeans(
    points: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 20
) -> tuple[np.ndarray, np.ndarray]:
    """(centroids (k, d), cluster of each point): k-means++ seeding, then Lloyd's steps.

    Distances come from one matrix product per step, so a budget of thousands of clusters
    stays seconds (SciPy's ``kmeans2`` took 118 s for 640 clusters of 6000 points here)."""
    n = len(points)
    squared = np.einsum("ij,ij->i", points, points)
    centroids = np.empty((k, points.shape[1]))
    centroids[0] = points[rng.integers(n)]
    nearest = np.maximum(squared - 2 * points @ centroids[0] + centroids[0] @ centroids[0], 0)
    for c in range(1, k):
        total = nearest.sum()
        pick = rng.choice(n, p=nearest / total) if total > 0 else rng.integers(n)
        centroids[c] = points[pick]
        gap = squared - 2 * points @ centroids[c] + centroids[c] @ centroids[c]
        nearest = np.minimum(nearest, np.maximum(gap, 0))
    for _ in range(iterations):
        member = _closest(points, squared, centroids)
        counts = np.bincount(member, minlength=k)
        sums = np.zeros_like(centroids)
        np.add.at(sums, member, points)
        filled = counts > 0
        moved = sums[filled] / counts[filled, None]
        if np.allclose(moved, centroids[filled]):
            break
        centroids[filled] = moved
    member = _closest(points, squared, centroids)
    return centroids, member


def _closest(points: np.ndarray, squared: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    lengths = np.einsum("ij,ij->i", centroids, centroids)
    return np.asarray(np.argmin(squared[:, None] - 2 * points @ centroids.T + lengths, axis=1))


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), _EPS)


def _nearest_centroids(
    points: np.ndarray, index: np.ndarray, k: int, rng: np.random.Generator
) -> np.ndarray:
    """Per k-means cluster the member nearest its centroid; a cluster k-means leaves empty
    is made up by the most uncertain points not yet chosen (``index`` is in that order)."""
    centroids, member = kmeans(points, k, rng)
    chosen: list[int] = []
    for c in range(k):
        inside = np.flatnonzero(member == c)
        if inside.size:
            d = np.linalg.norm(points[inside] - centroids[c], axis=1)
            chosen.append(int(inside[np.argmin(d)]))
    taken = set(chosen)
    for i in range(len(index)):
        if len(chosen) >= k:
            break
        if i not in taken:
            chosen.append(i)
            taken.add(i)
    return index[np.asarray(chosen, int)]


__all__ = ["STRATEGIES", "Strategy", "diverse", "kmeans", "logit", "select", "uncertainty"]
