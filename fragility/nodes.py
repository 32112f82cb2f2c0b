"""Deprecated: kernel dropout and targeting under their first import path, kept for users'
scripts for one release and removed in the next. Importing it warns
(``DeprecationWarning``): they live in :mod:`fragility.stress.kernels`."""

import warnings

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

warnings.warn(
    "fragility.nodes is deprecated and will be removed in the next release: import its names "
    "(kernel_dropout, targeting, analyse_kernels, KERNEL_COLUMNS, ...) from fragility.stress.kernels",
    DeprecationWarning,
    stacklevel=2,
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
