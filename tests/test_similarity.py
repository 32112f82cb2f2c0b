"""Linear CKA (fragility.scoring.similarity) against hand-computed cases."""

import numpy as np
import pytest

from fragility.scoring import similarity
from fragility.scoring.similarity import linear_cka


def test_one_feature_each_is_the_squared_correlation():
    # centred: a = (−1, 0, 1), b = (0, −1, 1); correlation 1 / (√2 · √2) = 1/2, CKA = 1/4
    assert linear_cka(np.array([[1.0], [2.0], [3.0]]), np.array([[1.0], [0.0], [2.0]])) == pytest.approx(0.25)


def test_invariant_to_rotation_scale_and_shift_not_to_a_general_linear_map():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 6))
    rotation, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    assert linear_cka(a, a) == pytest.approx(1.0)
    assert linear_cka(a, 3.0 * a @ rotation + 7.0) == pytest.approx(1.0)
    assert linear_cka(a, a @ np.diag([1, 1, 1, 1, 1, 10.0])) < 0.99
    assert 0 <= linear_cka(a, rng.normal(size=(50, 3))) < 0.3  # unrelated, and of another width


def test_the_gram_form_equals_the_feature_form_at_any_block_of_rows(monkeypatch):
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(37, 2, 3, 3)), rng.normal(size=(37, 5)) + rng.normal(size=(37, 1))
    flat = a.reshape(37, -1) - a.reshape(37, -1).mean(axis=0)
    centred = b - b.mean(axis=0)
    # ‖BᵀA‖²_F / (‖AᵀA‖_F ‖BᵀB‖_F) on centred features (Kornblith et al. 2019, Eq. 2)
    expected = np.linalg.norm(centred.T @ flat) ** 2 / (np.linalg.norm(flat.T @ flat) * np.linalg.norm(centred.T @ centred))
    assert linear_cka(a, b) == pytest.approx(expected, rel=1e-12)
    monkeypatch.setattr(similarity, "ROWS", 5)  # the centred Gram matrices five rows at a time
    assert linear_cka(a, b) == pytest.approx(expected, rel=1e-12)


def test_undefined_cases():
    assert np.isnan(linear_cka(np.ones((4, 3)), np.arange(8.0).reshape(4, 2)))  # constant: zero centred Gram matrix
    assert np.isnan(linear_cka(np.ones((1, 3)), np.ones((1, 2))))
    with pytest.raises(ValueError, match="4 examples against 3"):
        linear_cka(np.ones((4, 2)), np.ones((3, 2)))
