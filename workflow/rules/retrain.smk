rule retrain:
    """Regular vs selective retraining from one checkpoint (fragile layers frozen)."""
    input:
        checkpoint=CHECKPOINT,
        sweeps=checkpoint_sweeps,
        epsilon=f"{RUN_DIR}/epsilon.parquet",
    output:
        f"{RUN_DIR}/retrain/epoch{{epoch}}.parquet",
    log:
        f"{LOGS}/retrain/{{dataset}}/{{model}}/seed{{seed}}/epoch{{epoch}}.log",
    benchmark:
        f"{BENCHMARKS}/retrain/{{dataset}}/{{model}}/seed{{seed}}/epoch{{epoch}}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        gpu=1 if config["device"] == "cuda" else 0,
    params:
        data=data_params("train", "test"),
        epochs=retrain_epochs(config),
        label_score=config["retrain"]["label_score"],
        label_filter=config["retrain"]["label_filter"],
        label_attack=config["retrain"]["label_attack"],
        integration=config["scores"]["integration"],
        tau=config["scores"]["tau"],
        attack=ATTACK,
    script:
        "../scripts/retrain.py"


rule collect_retrain:
    """Retraining results of every run and checkpoint of one (dataset, model)."""
    input:
        units=model_runs(f"{RUN_DIR}/retrain/epoch{{epoch}}.parquet"),
        trust=TRUST,
    output:
        f"{MODEL_DIR}/retrain.parquet",
    log:
        f"{LOGS}/collect_retrain/{{dataset}}/{{model}}.log",
    benchmark:
        f"{BENCHMARKS}/collect_retrain/{{dataset}}/{{model}}.tsv"
    localrule: True
    conda:
        ENV
    resources:
        mem_mb=2000,
    script:
        "../scripts/collect.py"


rule retrain_summary:
    """Selective − regular per checkpoint and over all: pairs, mean, std, Wilcoxon p."""
    input:
        f"{MODEL_DIR}/retrain.parquet",
    output:
        f"{MODEL_DIR}/retrain_summary.parquet",
    log:
        f"{LOGS}/retrain_summary/{{dataset}}/{{model}}.log",
    benchmark:
        f"{BENCHMARKS}/retrain_summary/{{dataset}}/{{model}}.tsv"
    localrule: True
    conda:
        ENV
    resources:
        mem_mb=2000,
    script:
        "../scripts/retrain_summary.py"
