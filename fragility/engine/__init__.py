"""The sweep engine: many variants of one layer evaluated fast and exactly — the upstream
cache (:mod:`.upstream`), the fused downstream graph (:mod:`.fusion`) and the loop that
masks, classifies and restores (:mod:`.sweep`)."""
