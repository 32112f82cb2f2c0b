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
