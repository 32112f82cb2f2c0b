# Fragility, robustness and antifragility of deep networks, layer by layer (arXiv 2312.09821).
# Stages: train -> checkpoints -> ε search -> adversarial sets -> per-layer sweeps -> scores
#         -> figures, and selective retraining from every checkpoint.

configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/attack.smk"
include: "workflow/rules/sweep.smk"
include: "workflow/rules/scores.smk"
include: "workflow/rules/retrain.smk"
include: "workflow/rules/figures.smk"


rule all:
    default_target: True
    input:
        all_targets(),
