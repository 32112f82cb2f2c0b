"""Fragility, robustness and antifragility of deep networks, layer by layer (arXiv 2312.09821).

Layout, bottom up (nothing here needs Snakemake):

- ``structure``: a network's layers, blocks and roles as names, without torch (planning);
- ground floor: ``data``, ``models``, ``attack`` (attacks registered in ``ATTACKS``),
  ``filters``, ``evaluation``, ``artifacts`` (every stage file's save and load), ``config``,
  ``io``, ``train``, ``retrain``;
- ``engine``: the sweep engine (upstream cache, fused suffix, the variant loop);
- ``stress``: one module per stress test, registered once in ``STRESS_TESTS``;
- ``scoring``: scores, bootstrap intervals, rank agreement, retraining statistics, claims;
- ``figures`` (the figure registry) and ``plots`` (the drawing functions); ``bench``;
  ``stage``: what the workflow's stage scripts share.
"""

GLOBAL_LAYER = "__global__"  # the pseudo-layer of the global analysis: every filterable weight at once
