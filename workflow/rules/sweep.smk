rule sweep:
    """Filter sweep of one layer (or __global__) of one checkpoint, clean and adversarial."""
    input:
        checkpoint=CHECKPOINT,
        testset=RESULTS + "/{dataset}/testset.pt",
        adversarial=RUN_DIR + "/adversarial/epoch{epoch}.pt",
    output:
        RUN_DIR + "/sweep/epoch{epoch}/{layer}.parquet",
    params:
        sweep=config["sweep"],
        regenerate=config["attack"]["regenerate"],
        clamp=config["attack"]["clamp"],
        batch_size=config["batch_size"],
        device=config["device"],
    log:
        LOGS + "/sweep/{dataset}/{model}/seed{seed}/epoch{epoch}/{layer}.log",
    benchmark:
        BENCHMARKS + "/sweep/{dataset}/{model}/seed{seed}/epoch{epoch}/{layer}.tsv"
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
        MODEL_DIR + "/sweep.parquet",
    log:
        LOGS + "/collect_sweeps/{dataset}/{model}.log",
    conda:
        ENV
    script:
        "../scripts/collect.py"
