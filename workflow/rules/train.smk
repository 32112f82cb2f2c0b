rule testset:
    """The test set, loaded once per dataset and shared by every attack and sweep job."""
    output:
        f"{RESULTS}/{{dataset}}/testset.pt",
    params:
        data=data_params("test"),
    log:
        f"{LOGS}/testset/{{dataset}}.log",
    benchmark:
        f"{BENCHMARKS}/testset/{{dataset}}.tsv"
    resources:
        mem_mb=4000,
    conda:
        ENV
    script:
        "../scripts/testset.py"


rule train:
    """Train one (dataset, model, seed) run and save its checkpoints."""
    output:
        checkpoints=expand(CHECKPOINT, epoch=EPOCHS, allow_missing=True),
        log_table=f"{RUN_DIR}/train_log.parquet",
    params:
        data=data_params("train", "test"),
        model=model_params,
        train=config["train"],
    log:
        f"{LOGS}/train/{{dataset}}/{{model}}/seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/train/{{dataset}}/{{model}}/seed{{seed}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        gpu=1 if config["device"] == "cuda" else 0,
    conda:
        ENV
    script:
        "../scripts/train.py"
