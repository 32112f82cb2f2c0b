"""From stress-test tables to findings (no torch): the scores r_x, r_xε, r_ε and their labels
(:mod:`.scores`), bootstrap intervals (:mod:`.bootstrap`), the score table (:mod:`.tables`),
rank agreement between stress tests (:mod:`.agreement`), the retraining statistics
(:mod:`.stats`), representation similarity (linear CKA, :mod:`.similarity`) and the paper's
claims (:mod:`.claims`)."""
