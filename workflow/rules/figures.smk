# One rule per figure, each reading only cached Parquet tables, so that
# `snakemake results/figures/<dataset>/<model>/<figure>.png` rebuilds that figure alone.

MODEL_FIGURE_INPUTS = {
    "local_scores": ["scores"],
    "global_scores": ["scores"],
    "landscape": ["sweep"],
    "response": ["sweep"],
    "retrain": ["retrain", "retrain_summary"],
    "compression": ["sweep"],
    "kernels": ["kernels", "targeting"],
    "kernels_consistency": ["kernels"],
    "agreement": ["agreement"],
    "removable": ["removable"],
}


for _figure, _tables in MODEL_FIGURE_INPUTS.items():

    rule:
        name:
            f"figure_{_figure}"
        input:
            **{table: f"{MODEL_DIR}/{table}.parquet" for table in _tables},
        output:
            report(
                f"{FIGURE_DIR}/{_figure}.png",
                caption=f"../report/{_figure}.rst",
                category="{dataset}",
                subcategory="{model}",
            ),
        log:
            f"{LOGS}/figures/{{dataset}}/{{model}}/{_figure}.log",
        benchmark:
            f"{BENCHMARKS}/figures/{{dataset}}/{{model}}/{_figure}.tsv"
        conda:
            ENV
        resources:
            mem_mb=2000,
        params:
            figure=_figure,
            options=figure_options(_figure),
        script:
            "../scripts/figure.py"


rule figure_compare_models:
    """Global scores of every model on one dataset (paper Fig. 9 layout)."""
    input:
        scores=lambda wildcards: expand(f"{MODEL_DIR}/scores.parquet", model=dataset_models(wildcards.dataset), **wildcards),
    output:
        report(f"{RESULTS}/figures/{{dataset}}/compare_models.png", caption="../report/compare.rst", category="comparisons"),
    log:
        f"{LOGS}/figures/{{dataset}}/compare_models.log",
    benchmark:
        f"{BENCHMARKS}/figures/{{dataset}}/compare_models.tsv"
    conda:
        ENV
    resources:
        mem_mb=2000,
    params:
        figure="compare_models",
        options=figure_options("compare"),
    script:
        "../scripts/figure.py"


rule figure_compare_datasets:
    """Global scores of one model on every dataset (paper Fig. 9 layout)."""
    input:
        scores=lambda wildcards: expand(f"{MODEL_DIR}/scores.parquet", dataset=model_dataset_list(wildcards.model), **wildcards),
    output:
        report(f"{RESULTS}/figures/compare_datasets/{{model}}.png", caption="../report/compare.rst", category="comparisons"),
    log:
        f"{LOGS}/figures/compare_datasets/{{model}}.log",
    benchmark:
        f"{BENCHMARKS}/figures/compare_datasets/{{model}}.tsv"
    conda:
        ENV
    resources:
        mem_mb=2000,
    params:
        figure="compare_datasets",
        options=figure_options("compare"),
    script:
        "../scripts/figure.py"
