rule criticality:
    """Re-initialise and re-randomise each swept layer of one checkpoint (Zhang et al. 2019)."""
    input:
        checkpoint=CHECKPOINT,
        testset=f"{RESULTS}/{{dataset}}/testset.pt",
        adversarial=f"{RUN_DIR}/adversarial/epoch{{epoch}}.pt",
    output:
        f"{RUN_DIR}/criticality/epoch{{epoch}}.parquet",
    log:
        f"{LOGS}/criticality/{{dataset}}/{{model}}/seed{{seed}}/epoch{{epoch}}.log",
    benchmark:
        f"{BENCHMARKS}/criticality/{{dataset}}/{{model}}/seed{{seed}}/epoch{{epoch}}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
    params:
        layers=lambda wildcards: perturbed_layers(config, wildcards.model),
        # re-randomisation draws from the run's initialiser; a given model has none of its own
        init=lambda wildcards: config["init"] if is_given(config, wildcards.model) else None,
    script:
        "../scripts/criticality.py"


rule collect_criticality:
    """Criticality of every run and checkpoint of one (dataset, model)."""
    input:
        model_runs(f"{RUN_DIR}/criticality/epoch{{epoch}}.parquet"),
    output:
        f"{MODEL_DIR}/criticality.parquet",
    log:
        f"{LOGS}/collect_criticality/{{dataset}}/{{model}}.log",
    benchmark:
        f"{BENCHMARKS}/collect_criticality/{{dataset}}/{{model}}.tsv"
    conda:
        ENV
    resources:
        mem_mb=2000,
    script:
        "../scripts/collect.py"


rule agreement:
    """Kendall's τ_b between the layer rankings of every score and perturbation measure."""
    input:
        scores=f"{MODEL_DIR}/scores.parquet",
        criticality=f"{MODEL_DIR}/criticality.parquet",
    output:
        f"{MODEL_DIR}/agreement.parquet",
    log:
        f"{LOGS}/agreement/{{dataset}}/{{model}}.log",
    benchmark:
        f"{BENCHMARKS}/agreement/{{dataset}}/{{model}}.tsv"
    conda:
        ENV
    resources:
        mem_mb=2000,
    script:
        "../scripts/agreement.py"
