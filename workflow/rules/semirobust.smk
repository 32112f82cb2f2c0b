# The robust network F* of a checkpoint (METHOD §14): what the semirobust stress test's jobs,
# one per split, start from.


rule robust:
    """F*: the checkpoint's network adversarially trained as a whole, and the accuracies of
    the normal and the robust network under PGD made against each."""
    input:
        **STRESS_INPUTS,
    output:
        robust=TEST_INPUTS["robust"],
        table=TEST_INPUTS["robust_table"],
    log:
        f"{LOGS}/robust/{{dataset}}/{{model}}/seed{{seed}}/epoch{{epoch}}.log",
    benchmark:
        f"{BENCHMARKS}/robust/{{dataset}}/{{model}}/seed{{seed}}/epoch{{epoch}}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        gpu=1 if config["device"] == "cuda" else 0,
    params:
        data=data_params("train"),
        settings=lambda wildcards: semirobust_settings(config),
    script:
        "../scripts/robust.py"


rule semirobust_scores:
    """Beside each split, Acc_sr − Acc and the mean r_ε and Δr of f_a's and f_b's layers."""
    input:
        scores=f"{MODEL_DIR}/scores.parquet",
        semirobust=f"{MODEL_DIR}/semirobust.parquet",
    output:
        f"{MODEL_DIR}/semirobust_scores.parquet",
    log:
        f"{LOGS}/semirobust_scores/{{dataset}}/{{model}}.log",
    benchmark:
        f"{BENCHMARKS}/semirobust_scores/{{dataset}}/{{model}}.tsv"
    localrule: True
    conda:
        ENV
    resources:
        mem_mb=2000,
    params:
        layers=lambda wildcards: model_roles(config, wildcards.model)["layers"],
    script:
        "../scripts/semirobust_scores.py"
