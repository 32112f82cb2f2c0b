# Sweeps run one job per (checkpoint, layer) for the models in SINGLE_LAYER_SWEEPS (layers_per_job 1,
# the SLURM profile's choice: the analysis fans out over a cluster), and otherwise one job per
# (checkpoint, group of layers) — `auto`: all of a checkpoint's layers — so that a local run
# pays the start-up (imports, loading) once per checkpoint. Either way every layer has its own table.


rule sweep:
    """Filter sweep of one layer (or __global__) of one checkpoint, clean and adversarial."""
    input:
        **SWEEP_INPUTS,
    output:
        SWEEP_TABLE,
    log:
        f"{LOGS}/sweep/{{dataset}}/{{model}}/seed{{seed}}/epoch{{epoch}}/{{layer}}.log",
    benchmark:
        f"{BENCHMARKS}/sweep/{{dataset}}/{{model}}/seed{{seed}}/epoch{{epoch}}/{{layer}}.tsv"
    wildcard_constraints:
        model=SINGLE_LAYER_SWEEPS,
    priority: 5
    group:
        "sweep"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 2000 * attempt,
    params:
        **SWEEP_PARAMS,
    script:
        "../scripts/sweep.py"


for _model, _part, _layers in grouped_sweeps():

    rule:
        name:
            f"sweep_{_model}_part{_part}"
        input:
            **SWEEP_INPUTS,
        output:
            [SWEEP_TABLE.replace("{layer}", layer) for layer in _layers],
        log:
            f"{LOGS}/sweep/{{dataset}}/{{model}}/seed{{seed}}/epoch{{epoch}}/part{_part}.log",
        benchmark:
            f"{BENCHMARKS}/sweep/{{dataset}}/{{model}}/seed{{seed}}/epoch{{epoch}}/part{_part}.tsv"
        wildcard_constraints:
            model=_model,
        priority: 5
        group:
            "sweep"
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=lambda wildcards, attempt: 2000 * attempt,
        params:
            **SWEEP_PARAMS,
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
    conda:
        ENV
    resources:
        mem_mb=2000,
    script:
        "../scripts/collect.py"
