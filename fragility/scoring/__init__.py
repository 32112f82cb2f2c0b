"""From stress-test tables to findings (no torch): the scores r, r_ε, Δr and their labels
(:mod:`.scores`), bootstrap intervals (:mod:`.bootstrap`), the score table (:mod:`.tables`),
rank agreement between stress tests (:mod:`.agreement`), the retraining statistics
(:mod:`.stats`) and the paper's claims (:mod:`.claims`)."""
