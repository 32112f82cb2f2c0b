"""The dependency measures of the semirobust analysis (fragility.scoring.dependency, METHOD §14):
the EDGE mutual information estimator on data whose mutual information is known in closed form,
and the class weighting of ρ and of linear CKA.

Measured tolerance of EDGE with the authors' settings (10 draws per cell, floor hashing, N =
2,000): independent Gaussians give 0.04–0.05 bits in 1 dimension per side, 0.13–0.16 in 2 and
0.23–0.28 in 3 (the plug-in bias of the buckets); correlated pairs (r per coordinate, MI
−½·log₂(1 − r²) per pair) lie within 0.15 bits of the closed form up to 0.7 bits per pair in
one dimension and 0.62 bits in three, and fall below it beyond (−0.24 bits at 0.97 bits in 2
dimensions, −0.5 at 1.46 in 3). Above 6 dimensions per side the projection to ⌊log₂(N/10)⌋
coordinates dominates: 50-dimensional independent Gaussians at N = 1,000 give about 2.8
bits, as the authors' code does on the same data.
"""

import math

import numpy as np
import pytest

from fragility.scoring.dependency import (
    class_weighted,
    class_weighted_cka,
    class_weighted_mi,
    edge_mi,
    knn_count,
    linear_cka,
    mean_knn_distance,
    shuffled_within_class,
)

TOLERANCE = 0.15  # bits, correlated Gaussians up to 0.7 bits per side (measured above)


def gaussians(n: int, dimension: int, r: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``dimension`` independent pairs (x_i, y_i) of correlation ``r``: MI −½·dimension·log₂(1 − r²)."""
    rng = np.random.default_rng(seed)
    x, noise = rng.normal(size=(n, dimension)), rng.normal(size=(n, dimension))
    return x, r * x + math.sqrt(1 - r * r) * noise


def closed_form(dimension: int, r: float) -> float:
    return -0.5 * dimension * math.log2(1 - r * r)


@pytest.mark.parametrize("dimension, bound", [(1, 0.07), (2, 0.2), (3, 0.3)])
def test_independent_gaussians_carry_almost_no_information(dimension, bound):
    found = edge_mi(*gaussians(2000, dimension, 0.0, 1), seed=0)
    assert 0 < found <= bound  # ≥ 0.001 per point by the estimator's floor


@pytest.mark.parametrize("dimension, r", [(1, 0.5), (1, 0.7), (2, 0.5), (3, 0.5)])
def test_correlated_gaussians_give_the_closed_form_within_the_measured_tolerance(dimension, r):
    assert edge_mi(*gaussians(2000, dimension, r, 2), seed=0) == pytest.approx(closed_form(dimension, r), abs=TOLERANCE)


def test_more_correlation_more_information():
    found = [edge_mi(*gaussians(2000, 1, r, 3), seed=0) for r in (0.0, 0.3, 0.5, 0.7, 0.9)]
    assert found == sorted(found) and found[-1] - found[0] > 0.5


def test_the_estimate_is_seeded_and_does_not_depend_on_the_row_order():
    x, y = gaussians(500, 40, 0.8, 4)  # > 6 dimensions: the random projection is used
    order = np.random.default_rng(5).permutation(len(x))
    assert edge_mi(x, y, seed=3) == edge_mi(x, y, seed=3) == edge_mi(x[order], y[order], seed=3)
    small, shuffled = gaussians(400, 2, 0.6, 6), np.random.default_rng(6).permutation(400)  # floor hashing
    assert edge_mi(*small, seed=1) == edge_mi(small[0][shuffled], small[1][shuffled], seed=1)
    assert edge_mi(x, y, seed=3) != edge_mi(x, y, seed=4)  # another projection and shift


def test_edge_takes_vectors_and_rejects_unpaired_rows():
    x, y = gaussians(300, 1, 0.5, 7)
    assert edge_mi(x[:, 0], y[:, 0]) == edge_mi(x, y)
    with pytest.raises(ValueError, match="paired rows"):
        edge_mi(x, y[:-1])
    with pytest.raises(ValueError, match="at least 2"):
        edge_mi(x[:1], y[:1])


def test_the_bandwidths_nearest_neighbour_distance_by_hand():
    values = np.array([0.0, 1.0, 3.0, 7.0])
    # k = 2 (the point itself first): nearest other point at 1, 1, 2, 4
    assert mean_knn_distance(values, 2) == pytest.approx((1 + 1 + 2 + 4) / 4)
    assert mean_knn_distance(values[::-1], 2) == mean_knn_distance(values, 2)
    assert mean_knn_distance(values, 1) == 0.0
    # k = 3: the second-nearest other point at 3, 2, 3, 6
    assert mean_knn_distance(values, 3) == pytest.approx((3 + 2 + 3 + 6) / 4)
    # k = ⌊0.43 · N^{2/3 + 0.17 d/(d+1)}⌋: 6 at N = 36, d = 1; never above N
    assert knn_count(36, 1) == 6 and knn_count(2, 1) == 1 and knn_count(10, 1) <= 10


def test_rho_weights_each_class_by_its_frequency():
    x, y = gaussians(90, 1, 0.8, 8)
    labels = np.array([0] * 60 + [1] * 30)
    expected = (60 * edge_mi(x[:60], y[:60], seed=2) + 30 * edge_mi(x[60:], y[60:], seed=2)) / 90
    assert class_weighted_mi(x, y, labels, seed=2) == pytest.approx(expected, rel=1e-12)
    lonely = np.array([0] * 89 + [1])  # a class of one image has no pairs to estimate from: left out
    assert class_weighted_mi(x, y, lonely, seed=2) == pytest.approx(edge_mi(x[:89], y[:89], seed=2), rel=1e-12)
    assert np.isnan(class_weighted(lambda a, b: np.nan, x, y, labels))


def test_linear_cka_is_the_gram_form_and_weighted_by_class_size():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(12, 5)), rng.normal(size=(12, 7))
    centred_a, centred_b = a - a.mean(axis=0), b - b.mean(axis=0)
    feature_form = np.linalg.norm(centred_b.T @ centred_a) ** 2 / (
        np.linalg.norm(centred_a.T @ centred_a) * np.linalg.norm(centred_b.T @ centred_b)
    )
    assert linear_cka(a, b) == pytest.approx(feature_form, rel=1e-12)
    labels = np.array([0] * 8 + [1] * 4)
    expected = (8 * linear_cka(a[:8], b[:8]) + 4 * linear_cka(a[8:], b[8:])) / 12
    assert class_weighted_cka(a, b, labels) == pytest.approx(expected, rel=1e-12)


def test_shuffling_within_class_keeps_each_class_and_breaks_the_dependence():
    x, y = gaussians(400, 1, 0.9, 9)
    labels = np.arange(400) % 4
    shuffled = shuffled_within_class(y, labels, seed=1)
    for label in range(4):  # the same rows of each class, in another order
        assert sorted(shuffled[labels == label, 0]) == sorted(y[labels == label, 0])
    assert not np.array_equal(shuffled, y) and np.array_equal(shuffled, shuffled_within_class(y, labels, seed=1))
    independent = class_weighted_mi(x, shuffled, labels)
    assert independent < 0.2 < class_weighted_mi(x, y, labels) - independent
