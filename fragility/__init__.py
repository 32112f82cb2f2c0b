"""Fragility, robustness and antifragility of deep networks, layer by layer."""
