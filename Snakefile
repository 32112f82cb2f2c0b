# Fragility, robustness and antifragility of deep networks, layer by layer (arXiv 2312.09821).
# Stages: train -> checkpoints -> ε search -> adversarial sets -> per-layer sweeps -> scores
#         -> figures, selective retraining from every checkpoint, kernel dropout, and
#         re-initialisation / rank agreement.


configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/attack.smk"
include: "workflow/rules/sweep.smk"
include: "workflow/rules/scores.smk"
include: "workflow/rules/retrain.smk"
include: "workflow/rules/kernels.smk"
include: "workflow/rules/criticality.smk"
include: "workflow/rules/reproduction.smk"
include: "workflow/rules/figures.smk"


# Cheap table and figure jobs run on the submitting machine, never queued on a cluster.
localrules:
    all,
    given_model,
    collect_epsilon,
    collect_sweeps,
    collect_retrain,
    retrain_summary,
    collect_kernels,
    collect_targeting,
    collect_criticality,
    agreement,
    removable,
    claims,
    scores,
    figure_local_scores,
    figure_global_scores,
    figure_landscape,
    figure_response,
    figure_retrain,
    figure_compression,
    figure_kernels,
    figure_kernels_consistency,
    figure_agreement,
    figure_removable,
    figure_compare_models,
    figure_compare_datasets,


rule all:
    default_target: True
    input:
        all_targets(),
