"""Kernel dropout and targeting under their first import path (kept for users' scripts):
they live in :mod:`fragility.stress.kernels`."""

from .stress.kernels import (
    KERNEL_COLUMNS,
    TARGETING_COLUMNS,
    KernelRemoval,
    analyse_kernels,
    kernel_distances,
    kernel_dropout,
    targeting,
    targeting_from_distances,
)

__all__ = [
    "KERNEL_COLUMNS",
    "TARGETING_COLUMNS",
    "KernelRemoval",
    "analyse_kernels",
    "kernel_distances",
    "kernel_dropout",
    "targeting",
    "targeting_from_distances",
]
