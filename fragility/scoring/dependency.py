"""How strongly two layers' outputs depend on each other (METHOD §14): the semirobustness
paper's ρ, mutual information by the EDGE estimator (Noshad, Zeng & Hero 2019, "Scalable
mutual information estimation using dependence graphs", the estimator Craig et al. use), and
linear CKA (Kornblith et al. 2019; Gram form, :mod:`.similarity`) as a second, named measure.
NumPy only.

EDGE hashes each side into buckets and reads the mutual information off the graph of the
buckets that occur together: with N pairs (x_i, y_i), a vertex per X bucket (N_i points) and
per Y bucket (M_j points) and an edge of weight N_ij per pair of buckets that share points,

    Î(X; Y) = (1/N) Σ_edges N_ij · g(N_ij · N / (N_i · M_j)),   g = log₂ clipped to [0.001, U],

in bits. A point hashes to ⌊(v + b) / ε⌋ per coordinate of v: its coordinates as they are
("floor" hashing) when both sides have at most 6, else a p-stable (Gaussian) random
projection to ⌊log₂(N / 10)⌋ coordinates (at least one), each input coordinate scaled by its
standard deviation. The bandwidth ε of a coordinate is its mean k-nearest-neighbour distance
(k = ⌊0.43 · N^{2/3 + 0.17 · d/(d+1)} · exp(−1 / max(10⁴, d⁴))⌋ over the d coordinates of
that side, the point itself counted) + 10⁻⁴, times 18 · d / max(1 + ln D, 1) (D the side's
input dimension) and the smoothness γ = 0.4; the shift b is drawn uniformly in [0, 0.1 · ε).
U = 10 bits, one ensemble member: the settings of the authors' code. Every random draw comes
from one generator seeded by ``seed``, and the nearest-neighbour distances are taken over
every point rather than a sample, so the estimate is deterministic for a seed and does not
depend on the order of the rows.
"""

from __future__ import annotations

import math

import numpy as np

from .similarity import linear_cka

__all__ = ["class_weighted_cka", "class_weighted_mi", "edge_mi", "linear_cka", "shuffled_within_class"]

UPPER_BITS = 10.0  # U: the largest contribution of one edge
LOWER_BITS = 0.001  # the smallest (the authors' floor of g)
SMOOTHNESS = 0.4  # γ
FLOOR_DIMENSIONS = 6  # both sides at most this wide: hash the coordinates themselves
SHIFT_FRACTION = 0.1  # b ~ U[0, 0.1 ε)
BANDWIDTH_SCALE = 18.0


def edge_mi(x: np.ndarray, y: np.ndarray, *, seed: int = 0) -> float:
    """Mutual information (bits) between the rows of ``x`` and of ``y`` (N × d_x, N × d_y or
    1-d: one coordinate) by EDGE with the authors' settings (module docstring)."""
    x, y = _matrix(x), _matrix(y)
    if len(x) != len(y):
        raise ValueError(f"edge_mi needs paired rows, got {len(x)} and {len(y)}")
    if len(x) < 2:
        raise ValueError("edge_mi needs at least 2 pairs")
    rng = np.random.default_rng(seed)
    if x.shape[1] <= FLOOR_DIMENSIONS and y.shape[1] <= FLOOR_DIMENSIONS:
        projected = x, y
    else:
        width = max(1, math.floor(math.log2(len(x) / 10)))
        projected = tuple(_project(side, width, rng) for side in (x, y))
    codes = [_hash(side, original.shape[1], rng) for side, original in zip(projected, (x, y))]
    return _graph_information(*codes)


def _matrix(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return values.reshape(len(values), -1)


def _project(side: np.ndarray, width: int, rng: np.random.Generator) -> np.ndarray:
    """p-stable LSH: ``side`` times a Gaussian d × min(d, width) matrix whose row i has standard
    deviation 1 / (σ_i √d), σ_i the std of coordinate i (1 where below 10⁻⁴)."""
    dimension = side.shape[1]
    scale = np.sort(side, axis=0).std(axis=0)  # sorted: the same value whatever the row order
    scale[scale < 1e-4] = 1.0
    matrix = rng.normal(size=(dimension, min(dimension, width))) / (scale[:, None] * math.sqrt(dimension))
    return side @ matrix


def _hash(side: np.ndarray, input_dimension: int, rng: np.random.Generator) -> np.ndarray:
    """Each row's bucket: ⌊(v + b) / ε⌋ per coordinate, as one integer id per row."""
    dimension = side.shape[1]
    neighbours = knn_count(len(side), dimension)
    distance = np.array([mean_knn_distance(side[:, j], neighbours) for j in range(dimension)]) + 1e-4
    epsilon = distance * BANDWIDTH_SCALE * dimension / max(1.0 + math.log(input_dimension), 1.0) * SMOOTHNESS
    shift = SHIFT_FRACTION * rng.random(dimension) * epsilon
    buckets = np.floor((side + shift) / epsilon).astype(np.int64)
    return np.unique(buckets, axis=0, return_inverse=True)[1].reshape(-1)


def knn_count(n: int, dimension: int) -> int:
    """k of the bandwidth's nearest-neighbour distance for ``n`` points in ``dimension``
    hashed coordinates (the point itself counted), between 1 and n."""
    k = 0.43 * n ** (2 / 3 + 0.17 * dimension / (dimension + 1)) * math.exp(-1.0 / max(10_000, dimension**4))
    return int(min(n, max(1, math.floor(k))))


def mean_knn_distance(values: np.ndarray, k: int) -> float:
    """The mean over the points of the distance to the k-th nearest of ``values`` (1-d, the
    point itself the first): the k nearest of a point are k consecutive sorted values, so the
    distance is the smallest, over the windows of k that hold it, of its distance to the
    farther end."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    n = len(ordered)
    index = np.arange(n)
    best = np.full(n, np.inf)
    for back in range(k):  # window [i − back, i − back + k − 1]
        start = index - back
        valid = (start >= 0) & (start + k - 1 < n)
        low, high = ordered[np.clip(start, 0, n - 1)], ordered[np.clip(start + k - 1, 0, n - 1)]
        reach = np.maximum(ordered - low, high - ordered)
        best = np.where(valid, np.minimum(best, reach), best)
    return float(best.mean())


def _graph_information(x_bucket: np.ndarray, y_bucket: np.ndarray) -> float:
    """Î from the dependence graph of the buckets (module docstring), in bits."""
    n = len(x_bucket)
    x_count, y_count = np.bincount(x_bucket), np.bincount(y_bucket)
    edges, edge_count = np.unique(np.stack([x_bucket, y_bucket], axis=1), axis=0, return_counts=True)
    ratio = edge_count * n / (x_count[edges[:, 0]] * y_count[edges[:, 1]])
    return float(np.sum(edge_count * np.clip(np.log2(ratio), LOWER_BITS, UPPER_BITS)) / n)


def class_weighted(measure, a: np.ndarray, b: np.ndarray, labels: np.ndarray) -> float:
    """``measure(a_c, b_c)`` within each class c of at least 2 examples, averaged weighted by
    class size (p(c) over those classes); finite values only, NaN when none."""
    labels = np.asarray(labels)
    values, weights = [], []
    for label in np.unique(labels):
        chosen = labels == label
        if chosen.sum() >= 2:
            value = measure(a[chosen], b[chosen])
            if np.isfinite(value):
                values.append(value)
                weights.append(chosen.sum())
    return float(np.average(values, weights=weights)) if values else float("nan")


def class_weighted_mi(a: np.ndarray, b: np.ndarray, labels: np.ndarray, seed: int = 0) -> float:
    """ρ (METHOD §14): Σ_c p(c) · EDGE(a | c, b | c), in bits."""
    return class_weighted(lambda x, y: edge_mi(x, y, seed=seed), a, b, labels)


def shuffled_within_class(b: np.ndarray, labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """``b`` with its rows permuted within each class (seeded): paired with ``a`` it keeps both
    sides' distributions per class and breaks their dependence, so ``class_weighted_mi`` on it
    is what the estimator reads for independent outputs (its bias at this N and dimension)."""
    labels, rng = np.asarray(labels), np.random.default_rng(seed)
    order = np.arange(len(labels))
    for label in np.unique(labels):
        chosen = np.flatnonzero(labels == label)
        order[chosen] = rng.permutation(chosen)
    return np.asarray(b)[order]


def class_weighted_cka(a: np.ndarray, b: np.ndarray, labels: np.ndarray) -> float:
    """Linear CKA within each class (of at least 2 examples), averaged weighted by class size."""
    return class_weighted(linear_cka, a, b, labels)
