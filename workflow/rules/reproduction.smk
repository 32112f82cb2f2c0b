rule removable:
    """Pruning sensitivity: per layer and filter, the largest fraction of weights removable within `removable.max_loss`."""
    input:
        f"{MODEL_DIR}/sweep.parquet",
    output:
        f"{MODEL_DIR}/removable.parquet",
    log:
        f"{LOGS}/removable/{{dataset}}/{{model}}.log",
    benchmark:
        f"{BENCHMARKS}/removable/{{dataset}}/{{model}}.tsv"
    localrule: True
    conda:
        ENV
    resources:
        mem_mb=2000,
    params:
        max_loss=config["removable"]["max_loss"],
    script:
        "../scripts/removable.py"


rule claims:
    """The paper's findings, claim by claim, over every dataset and model of the run."""
    input:
        scores=[p for dataset, model in pairs() for p in model_tables(dataset, model, "scores")],
        sweep=[p for dataset, model in pairs() for p in model_tables(dataset, model, "sweep")],
        retrain=[p for dataset, model in pairs() for p in model_tables(dataset, model, "retrain")],
        trust=[p for dataset, model in pairs() for p in model_tables(dataset, model, "trust")],
        triage=[p for dataset, model in pairs() for p in model_tables(dataset, model, "triage")],
        semirobust=[p for dataset, model in pairs() for p in model_tables(dataset, model, "semirobust")],
        dependency=[p for dataset, model in pairs() for p in model_tables(dataset, model, "dependency")],
    output:
        table=f"{RESULTS}/reproduction/claims.parquet",
        markdown=f"{RESULTS}/reproduction/claims.md",
        html=report(f"{RESULTS}/reproduction/claims.html", caption="../report/claims.rst", category="reproduction"),
    log:
        f"{LOGS}/claims.log",
    benchmark:
        f"{BENCHMARKS}/claims.tsv"
    localrule: True
    conda:
        ENV
    resources:
        mem_mb=2000,
    params:
        roles={model: model_roles(config, model) for model in MODELS},
        chance={dataset: 1 / dataset_info(config, dataset).num_classes for dataset in DATASETS},
        tau=config["scores"]["tau"],
        triage={key: config["triage"][key] for key in ("tolerance", "block_range")},
        semirobust_delta=config["semirobust"]["delta"],
    script:
        "../scripts/claims.py"
