"""Synaptic filters h1 (ideal high-pass), h2 (ideal low-pass), h3 (pulse wave).

A filter at step i of A removes (sets to 0) a subset of a weight tensor θ, chosen on
its raw signed values by thresholds spaced Δ = (M − m)/A over θ's range [m, M]. All
arithmetic is float64 and the last step is exact: h1 and h2 at i = A remove everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

# torch and the modules that need it are imported where they are used: Snakemake imports this
# module while it plans a run, where torch may not be installed (fragility.structure).
if TYPE_CHECKING:
    import torch

FILTERS = ("h1", "h2", "h3")


@dataclass(frozen=True)
class ThresholdRange:
    """The range [m, M] of the filtered values and the number of steps A."""

    low: float
    high: float
    steps: int

    @property
    def delta(self) -> float:
        return (self.high - self.low) / self.steps

    @classmethod
    def of(cls, values: torch.Tensor, steps: int) -> ThresholdRange:
        import torch

        if steps < 1:
            raise ValueError(f"steps (A) must be >= 1, got {steps}")
        if values.numel() == 0:
            raise ValueError("cannot filter an empty weight tensor")
        if not torch.isfinite(values).all():
            raise ValueError("weights contain NaN or inf; a filter's thresholds would be undefined")
        values = values.double()
        return cls(values.min().item(), values.max().item(), steps)


def threshold(filter_name: str, step: int, rng: ThresholdRange) -> float:
    """The threshold α of ``filter_name`` at ``step`` (h3: the centre of its window)."""
    _check(filter_name, step, rng)
    if filter_name == "h2":
        return rng.low if step == rng.steps else rng.high - step * rng.delta
    if filter_name == "h1" and step == rng.steps:
        return rng.high
    return rng.low + step * rng.delta


def high_pass_mask(values: torch.Tensor, step: int, rng: ThresholdRange) -> torch.Tensor:
    """h1: remove θ ≤ α_i (the small values; i = A removes all)."""
    return values.double() <= threshold("h1", step, rng)


def low_pass_mask(values: torch.Tensor, step: int, rng: ThresholdRange) -> torch.Tensor:
    """h2: remove θ ≥ α'_i = M − i·Δ (the large values; i = A removes all)."""
    return values.double() >= threshold("h2", step, rng)


def pulse_wave_mask(values: torch.Tensor, step: int, rng: ThresholdRange) -> torch.Tensor:
    """h3: remove m + (i − ½)Δ < θ ≤ m + (i + ½)Δ, windows tiling (m − Δ/2, M + Δ/2]."""
    _check("h3", step, rng)
    v = values.double()
    return (v > rng.low + (step - 0.5) * rng.delta) & (v <= rng.low + (step + 0.5) * rng.delta)


MASKS = {"h1": high_pass_mask, "h2": low_pass_mask, "h3": pulse_wave_mask}


def removal_mask(filter_name: str, values: torch.Tensor, step: int, rng: ThresholdRange) -> torch.Tensor:
    """Boolean mask of the entries of ``values`` that ``filter_name`` removes at ``step``."""
    _check(filter_name, step, rng)
    return MASKS[filter_name](values, step, rng)


def _check(filter_name: str, step: int, rng: ThresholdRange) -> None:
    if filter_name not in FILTERS:
        raise ValueError(f"unknown filter {filter_name!r}; choose from {FILTERS}")
    if not 0 <= step <= rng.steps:
        raise ValueError(f"step must lie in 0..{rng.steps}, got {step}")
