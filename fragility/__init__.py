"""Fragility, robustness and antifragility of deep networks, layer by layer (arXiv 2312.09821).

Modules: data, models, train, attack, filters, sweep (with upstream caching), scores,
retrain, plots, config, io. Nothing here needs Snakemake.
"""

GLOBAL_LAYER = "__global__"  # the pseudo-layer of the global analysis: every filterable weight at once
