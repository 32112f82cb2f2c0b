import pytest
import torch

from fragility.filters import ThresholdRange, high_pass_mask, low_pass_mask, pulse_wave_mask, removal_mask, threshold

# m = -1, M = 2, A = 3, so Δ = 1: thresholds fall on the values, 0 appears twice (a tie).
VALUES = torch.tensor([-1.0, 0.0, 0.0, 1.0, 2.0])
RANGE = ThresholdRange.of(VALUES, 3)


def removed(mask):
    return mask.nonzero().flatten().tolist()


def test_range_and_thresholds():
    assert (RANGE.low, RANGE.high, RANGE.delta) == (-1.0, 2.0, 1.0)
    assert [threshold("h1", i, RANGE) for i in range(4)] == [-1.0, 0.0, 1.0, 2.0]
    assert [threshold("h2", i, RANGE) for i in range(4)] == [2.0, 1.0, 0.0, -1.0]
    assert [threshold("h3", i, RANGE) for i in range(4)] == [-1.0, 0.0, 1.0, 2.0]


@pytest.mark.parametrize("step, expected", [(0, [0]), (1, [0, 1, 2]), (2, [0, 1, 2, 3]), (3, [0, 1, 2, 3, 4])])
def test_high_pass_removes_values_at_or_below_threshold(step, expected):
    assert removed(high_pass_mask(VALUES, step, RANGE)) == expected


@pytest.mark.parametrize("step, expected", [(0, [4]), (1, [3, 4]), (2, [1, 2, 3, 4]), (3, [0, 1, 2, 3, 4])])
def test_low_pass_removes_values_at_or_above_threshold(step, expected):
    assert removed(low_pass_mask(VALUES, step, RANGE)) == expected


@pytest.mark.parametrize("step, expected", [(0, [0]), (1, [1, 2]), (2, [3]), (3, [4])])
def test_pulse_wave_removes_the_window_around_threshold(step, expected):
    assert removed(pulse_wave_mask(VALUES, step, RANGE)) == expected


def test_constant_tensor():
    values = torch.full((4,), 0.3)
    rng = ThresholdRange.of(values, 5)
    assert rng.delta == 0
    for step in range(6):
        # Δ = 0: every h1/h2 threshold equals the value, the pulse window (m, m] is empty.
        assert high_pass_mask(values, step, rng).all()
        assert low_pass_mask(values, step, rng).all()
        assert not pulse_wave_mask(values, step, rng).any()


def test_full_sweep_counts():
    torch.manual_seed(0)
    values = torch.randn(1000)
    rng = ThresholdRange.of(values, 25)
    counts = {h: [int(removal_mask(h, values, i, rng).sum()) for i in range(26)] for h in ("h1", "h2", "h3")}
    assert counts["h1"][-1] == counts["h2"][-1] == 1000
    assert counts["h1"] == sorted(counts["h1"]) and counts["h2"] == sorted(counts["h2"])
    assert counts["h1"][0] == 1 and counts["h2"][0] == 1  # the minimum, the maximum
    assert sum(counts["h3"]) == 1000  # the windows tile the range


def test_last_step_exact_despite_rounding():
    values = torch.tensor([-0.9368931781122907, 0.0, 0.11791870367106105], dtype=torch.float64)
    rng = ThresholdRange.of(values, 26)
    # m + A·Δ rounds below M and M − A·Δ above m: naive thresholds would keep one weight.
    assert rng.low + 26 * rng.delta < rng.high and rng.high - 26 * rng.delta > rng.low
    assert high_pass_mask(values, 26, rng).all() and low_pass_mask(values, 26, rng).all()


def test_invalid_inputs():
    with pytest.raises(ValueError, match="steps"):
        ThresholdRange.of(VALUES, 0)
    with pytest.raises(ValueError, match="NaN or inf"):
        ThresholdRange.of(torch.tensor([1.0, float("nan")]), 3)
    with pytest.raises(ValueError, match="step must lie"):
        high_pass_mask(VALUES, 4, RANGE)
    with pytest.raises(ValueError, match="unknown filter"):
        removal_mask("h4", VALUES, 0, RANGE)
