import pytest
import torch
from torch import nn

from fragility.attack import fgsm, gradient_sign, perturb, search_epsilon
from fragility.evaluation import accuracy


def test_fgsm_matches_hand_computed_gradient_sign():
    # logits = W x; for CE with true class 0 the input gradient is Σ_k (p_k − [k=0]) W_k.
    model = nn.Sequential(nn.Linear(2, 2, bias=False)).eval()
    model[0].weight.data = torch.tensor([[1.0, -2.0], [3.0, 0.5]])
    x = torch.tensor([[0.5, 0.5]])
    p = torch.softmax(model(x), 1)[0].detach()
    grad = (p[0] - 1) * torch.tensor([1.0, -2.0]) + p[1] * torch.tensor([3.0, 0.5])
    assert torch.equal(gradient_sign(model, x, torch.tensor([0])), grad.sign().unsqueeze(0))
    x_adv = fgsm(model, x, torch.tensor([0]), 0.1)
    assert torch.allclose(x_adv, x + 0.1 * grad.sign())


def test_clamp_keeps_pixel_range_and_unclamped_does_not():
    x, sign = torch.tensor([[0.95, 0.02]]), torch.tensor([[1.0, -1.0]])
    assert perturb(x, sign, 0.1).tolist() == [[1.0, 0.0]]
    assert perturb(x, sign, 0.1, clamp=False)[0].tolist() == pytest.approx([1.05, -0.08])


def test_search_epsilon_hits_target(digits, linear_digits_model):
    result = search_epsilon(linear_digits_model, digits.x_test, digits.y_test, target=0.5, tol=0.02, num_classes=10)
    assert result.reached and abs(result.ratio - 0.5) <= 0.02
    assert result.acc_clean > 0.9 and result.def7_holds and result.def8_holds
    x_adv = fgsm(linear_digits_model, digits.x_test, digits.y_test, result.epsilon)
    assert accuracy(linear_digits_model, x_adv, digits.y_test) == pytest.approx(result.acc_adv)


def test_search_epsilon_out_of_reach_reports_instead_of_crashing(digits, linear_digits_model):
    result = search_epsilon(linear_digits_model, digits.x_test, digits.y_test, eps_min=1e-6, eps_max=1e-5, grid_points=3)
    assert not result.reached and result.epsilon == pytest.approx(1e-5) and result.ratio > 0.9


def test_search_epsilon_rejects_bad_bounds(digits, linear_digits_model):
    with pytest.raises(ValueError, match="target"):
        search_epsilon(linear_digits_model, digits.x_test, digits.y_test, target=1.5)
    with pytest.raises(ValueError, match="eps_min"):
        search_epsilon(linear_digits_model, digits.x_test, digits.y_test, eps_min=-0.1)
