rule claims:
    """The paper's findings, claim by claim, over every dataset and model of the run."""
    input:
        **{
            table: [p for dataset, model in pairs() for p in model_tables(dataset, model, table)]
            for table in ["trust", *claim_tables()]
        },
    output:
        table=f"{RESULTS}/reproduction/claims.parquet",
        markdown=f"{RESULTS}/reproduction/claims.md",
        html=report(f"{RESULTS}/reproduction/claims.html", caption="../report/claims.rst", category=report_category("Claims")),
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
        tests=claim_options(config),
    script:
        "../scripts/claims.py"
