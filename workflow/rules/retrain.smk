rule retrain:
    """Regular vs selective retraining from one checkpoint (fragile layers frozen)."""
    input:
        checkpoint=CHECKPOINT,
        sweeps=checkpoint_sweeps,
        epsilon=f"{RUN_DIR}/epsilon.parquet",
    output:
        f"{RUN_DIR}/retrain/epoch{{epoch}}.parquet",
    params:
        data=data_params,
        retrain=config["retrain"],
        retrain_epochs=retrain_epochs(config),
        scores=config["scores"],
        clamp=config["attack"]["clamp"],
        batch_size=config["batch_size"],
        device=config["device"],
    log:
        f"{LOGS}/retrain/{{dataset}}/{{model}}/seed{{seed}}/epoch{{epoch}}.log",
    benchmark:
        f"{BENCHMARKS}/retrain/{{dataset}}/{{model}}/seed{{seed}}/epoch{{epoch}}.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        gpu=1 if config["device"] == "cuda" else 0,
    conda:
        ENV
    script:
        "../scripts/retrain.py"


rule collect_retrain:
    """Retraining results of every run and checkpoint of one (dataset, model)."""
    input:
        model_runs(f"{RUN_DIR}/retrain/epoch{{epoch}}.parquet"),
    output:
        f"{MODEL_DIR}/retrain.parquet",
    log:
        f"{LOGS}/collect_retrain/{{dataset}}/{{model}}.log",
    benchmark:
        f"{BENCHMARKS}/collect_retrain/{{dataset}}/{{model}}.tsv"
    resources:
        mem_mb=2000,
    conda:
        ENV
    script:
        "../scripts/collect.py"
