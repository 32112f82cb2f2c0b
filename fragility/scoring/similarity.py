"""How alike two representations of the same examples are: linear CKA (Kornblith et al. 2019,
"Similarity of Neural Network Representations Revisited"). No torch.

Linear CKA in its Gram form: with K = A Aᵀ and L = B Bᵀ the n × n Gram matrices of the two
representations (rows = examples, features flattened) and H = I − 11ᵀ/n the centring matrix,

    HSIC(K, L) = tr(HKH · HLH) / (n − 1)²,    CKA(A, B) = HSIC(K, L) / √(HSIC(K, K) · HSIC(L, L)).

It lies in [0, 1], is 1 for representations equal up to an orthogonal transform and an
isotropic scale, and does not depend on how many features each has (a block's output and a
layer replacing it may differ in width). HKH = (HA)(HA)ᵀ: the centred Gram matrix is the Gram
matrix of the column-centred features, so it is built from those, a block of rows at a
time (memory n × ``rows`` rather than n × n).
"""

from __future__ import annotations

import numpy as np

__all__ = ["linear_cka"]

ROWS = 1024  # rows of the centred Gram matrices held at once


def linear_cka(a: np.ndarray, b: np.ndarray) -> float:
    """Linear CKA between ``a`` (n × p) and ``b`` (n × q), rows the same n examples (more axes
    are flattened per example), in float64; NaN when either is constant over the examples
    (its centred Gram matrix is zero) or n < 2."""
    a, b = (np.asarray(x, dtype=np.float64) for x in (a, b))
    if len(a) != len(b):
        raise ValueError(f"linear_cka: {len(a)} examples against {len(b)}; rows must be the same examples")
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    if len(a) < 2:
        return float("nan")
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    # the (n − 1)² of each HSIC cancels in the ratio
    cross = self_a = self_b = 0.0
    for start in range(0, len(a), ROWS):
        gram_a, gram_b = a[start : start + ROWS] @ a.T, b[start : start + ROWS] @ b.T
        cross += float(np.sum(gram_a * gram_b))
        self_a += float(np.sum(gram_a * gram_a))
        self_b += float(np.sum(gram_b * gram_b))
    if self_a == 0 or self_b == 0:
        return float("nan")
    return cross / np.sqrt(self_a * self_b)
