rule sweep:
    """Filter sweep of one layer (or __global__) of one checkpoint, clean and adversarial."""
    input:
        checkpoint=CHECKPOINT,
        testset=f"{RESULTS}/{{dataset}}/testset.pt",
        adversarial=f"{RUN_DIR}/adversarial/epoch{{epoch}}.pt",
    output:
        f"{RUN_DIR}/sweep/epoch{{epoch}}/{{layer}}.parquet",
    params:
        steps=config["sweep"]["steps"],
        filters=config["sweep"]["filters"],
        regenerate=ATTACK if config["attack"]["regenerate"] else None,
    log:
        f"{LOGS}/sweep/{{dataset}}/{{model}}/seed{{seed}}/epoch{{epoch}}/{{layer}}.log",
    benchmark:
        f"{BENCHMARKS}/sweep/{{dataset}}/{{model}}/seed{{seed}}/epoch{{epoch}}/{{layer}}.tsv"
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 2000 * attempt,
    group:
        "sweep"
    conda:
        ENV
    script:
        "../scripts/sweep.py"


rule collect_sweeps:
    """All sweep tables of one (dataset, model) in one Parquet file."""
    input:
        model_sweeps,
    output:
        f"{MODEL_DIR}/sweep.parquet",
    log:
        f"{LOGS}/collect_sweeps/{{dataset}}/{{model}}.log",
    benchmark:
        f"{BENCHMARKS}/collect_sweeps/{{dataset}}/{{model}}.tsv"
    resources:
        mem_mb=2000,
    conda:
        ENV
    script:
        "../scripts/collect.py"
