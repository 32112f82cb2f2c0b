import pytest
import torch
from torch import nn

from fragility.attack import Attack, fgsm, gradient_sign, perturb, pgd, search_epsilon
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


def _linear_gradient(weight: torch.Tensor, x: torch.Tensor, label: int) -> torch.Tensor:
    """∇x CE(Wx, y) = Wᵀ(softmax(Wx) − e_y) for a bias-free linear model, by hand."""
    p = torch.softmax(weight @ x, 0)
    p[label] -= 1
    return weight.T @ p


def test_pgd_two_steps_match_a_hand_computation():
    weight = torch.tensor([[1.0, -2.0, 0.5], [3.0, 0.5, -1.0], [-1.0, 1.0, 2.0]])
    model = nn.Sequential(nn.Linear(3, 3, bias=False)).eval()
    model[0].weight.data = weight.clone()
    x, label, epsilon, alpha = torch.tensor([0.5, 0.97, 0.02]), 0, 0.1, 0.06
    current = x.clone()
    for _ in range(2):  # x^{t+1} = clamp(x + clamp(x^t + α·sign(g) − x, −ε, ε), 0, 1)
        current = (x + (current + alpha * _linear_gradient(weight, current, label).sign() - x).clamp(-epsilon, epsilon)).clamp(
            0, 1
        )
    x_adv = pgd(model, x.unsqueeze(0), torch.tensor([label]), epsilon, steps=2, step_size=alpha, random_start=False)
    assert torch.allclose(x_adv[0], current, atol=1e-7)
    assert (x_adv - x).abs().max() <= epsilon + 1e-7 and x_adv.min() >= 0 and x_adv.max() <= 1


def test_pgd_matches_torchattacks_without_random_start(digits, linear_digits_model):
    import torchattacks  # an independent implementation (test-only dependency)

    epsilon, steps = 0.1, 10
    ours = pgd(linear_digits_model, digits.x_test, digits.y_test, epsilon, steps=steps, random_start=False, batch_size=100)
    reference = torchattacks.PGD(linear_digits_model, eps=epsilon, alpha=2.5 * epsilon / steps, steps=steps, random_start=False)
    theirs = reference(digits.x_test, digits.y_test)
    assert torch.allclose(ours, theirs, atol=1e-6)
    assert accuracy(linear_digits_model, ours, digits.y_test) == accuracy(linear_digits_model, theirs, digits.y_test)


def test_pgd_stays_in_the_ball_and_pixel_range_and_is_reproducible(digits, linear_digits_model):
    x, y, epsilon = digits.x_test[:100], digits.y_test[:100], 0.2
    first = pgd(linear_digits_model, x, y, epsilon, steps=5, seed=3)
    assert (first - x).abs().max() <= epsilon + 1e-6 and first.min() >= 0 and first.max() <= 1
    assert torch.equal(first, pgd(linear_digits_model, x, y, epsilon, steps=5, seed=3))
    assert not torch.equal(first, pgd(linear_digits_model, x, y, epsilon, steps=5, seed=4))
    unclamped = pgd(linear_digits_model, x, y, epsilon, steps=5, clamp=False)
    assert unclamped.min() < 0 and (unclamped - x).abs().max() <= epsilon + 1e-6


def test_pgd_is_at_least_as_strong_as_fgsm(digits, linear_digits_model):
    for epsilon in (0.05, 0.1, 0.2):
        fgsm_accuracy = accuracy(
            linear_digits_model, fgsm(linear_digits_model, digits.x_test, digits.y_test, epsilon), digits.y_test
        )
        pgd_accuracy = accuracy(
            linear_digits_model, pgd(linear_digits_model, digits.x_test, digits.y_test, epsilon), digits.y_test
        )
        assert pgd_accuracy <= fgsm_accuracy


def test_search_epsilon_hits_target_with_pgd(digits, linear_digits_model):
    result = search_epsilon(
        linear_digits_model,
        digits.x_test,
        digits.y_test,
        target=0.5,
        tol=0.02,
        num_classes=10,
        attack="pgd",
        attack_options={"steps": 5},
    )
    assert result.reached and abs(result.ratio - 0.5) <= 0.02
    x_adv = Attack("pgd", options={"steps": 5})(linear_digits_model, digits.x_test, digits.y_test, result.epsilon)
    assert accuracy(linear_digits_model, x_adv, digits.y_test) == pytest.approx(result.acc_adv)
    fgsm_search = search_epsilon(linear_digits_model, digits.x_test, digits.y_test, target=0.5, tol=0.02, num_classes=10)
    assert result.epsilon <= fgsm_search.epsilon * 1.05  # the stronger attack needs no larger ε


def test_attack_rejects_unknown_methods_and_options():
    with pytest.raises(ValueError, match="unknown attack 'cw'"):
        Attack("cw")
    with pytest.raises(ValueError, match="takes no option 'steps'"):
        Attack("fgsm", options={"steps": 3})
    assert Attack("pgd", options={"steps": 7}).name == "pgd-7" and Attack().name == "fgsm"


def test_every_registered_attack_has_its_options_in_the_schema():
    """A new attack is one function + one ATTACKS entry + its block under `attack.<name>`."""
    from fragility.attack import ATTACKS
    from fragility.config import load_schema

    attack = load_schema()["properties"]["attack"]["properties"]
    assert attack["method"]["enum"] == list(ATTACKS)
    for name, method in ATTACKS.items():
        block = attack.get(name, {}).get("properties", {})
        assert {key: spec["default"] for key, spec in block.items()} == method.options, name
        assert Attack(name, options=dict(method.options)).name  # its defaults are accepted as options
