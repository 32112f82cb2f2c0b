# Fragility, robustness and antifragility of deep networks, layer by layer (arXiv 2312.09821).
# Stages: train -> checkpoints -> ε search -> adversarial sets -> stress tests per unit
#         (synaptic filters, kernel dropout, re-initialisation: fragility.stress) -> scores,
#         rank agreement, claims -> figures (fragility.figures); selective retraining from
#         every checkpoint. Cheap table and figure rules are `localrule: True`: they run on
#         the submitting machine, never queued on a cluster.


configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/attack.smk"
include: "workflow/rules/stress.smk"
include: "workflow/rules/scores.smk"
include: "workflow/rules/agreement.smk"
include: "workflow/rules/retrain.smk"
include: "workflow/rules/reproduction.smk"
include: "workflow/rules/figures.smk"


rule all:
    default_target: True
    input:
        all_targets(),
    localrule: True
