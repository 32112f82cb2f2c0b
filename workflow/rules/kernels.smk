rule kernels:
    """Kernel dropout of one layer of one checkpoint, and whether the attack targets its fragile kernels."""
    input:
        checkpoint=CHECKPOINT,
        testset=f"{RESULTS}/{{dataset}}/testset.pt",
        adversarial=f"{RUN_DIR}/adversarial/epoch{{epoch}}.pt",
    output:
        kernels=f"{RUN_DIR}/kernels/epoch{{epoch}}/{{layer}}.parquet",
        targeting=f"{RUN_DIR}/targeting/epoch{{epoch}}/{{layer}}.parquet",
    log:
        f"{LOGS}/kernels/{{dataset}}/{{model}}/seed{{seed}}/epoch{{epoch}}/{{layer}}.log",
    benchmark:
        f"{BENCHMARKS}/kernels/{{dataset}}/{{model}}/seed{{seed}}/epoch{{epoch}}/{{layer}}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 2000 * attempt,
    script:
        "../scripts/kernels.py"


for _table in ("kernels", "targeting"):

    rule:
        name:
            f"collect_{_table}"
        input:
            lambda wildcards, table=_table: kernel_paths(wildcards, table),
        output:
            f"{MODEL_DIR}/{_table}.parquet",
        log:
            f"{LOGS}/collect_{_table}/{{dataset}}/{{model}}.log",
        benchmark:
            f"{BENCHMARKS}/collect_{_table}/{{dataset}}/{{model}}.tsv"
        conda:
            ENV
        resources:
            mem_mb=2000,
        script:
            "../scripts/collect.py"
