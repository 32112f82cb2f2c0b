# One rule per figure of fragility.figures.FIGURES, each reading only cached Parquet tables, so
# that `snakemake results/figures/<dataset>/<model>/<figure>.png` rebuilds that figure alone.
# Captions come from the registry through one report template.


def figure_caption(figure):
    """Params function: the registry's caption of ``figure`` for the job's wildcards."""
    return lambda wildcards: FIGURES[figure].caption.format(**wildcards)


def compared_scores(wildcards):
    """The score tables a comparison figure reads: every model of a dataset, or every dataset of a model."""
    if "dataset" in wildcards.keys():
        return expand(f"{MODEL_DIR}/scores.parquet", model=dataset_models(wildcards.dataset), dataset=wildcards.dataset)
    return expand(f"{MODEL_DIR}/scores.parquet", dataset=model_dataset_list(wildcards.model), model=wildcards.model)


FIGURE_PATHS = {  # scope -> (path with {figure}, report subcategory); the category is the figure's section
    "model": (f"{FIGURE_DIR}/{{figure}}.png", "{dataset} / {model}"),
    "dataset": (f"{RESULTS}/figures/{{dataset}}/{{figure}}.png", "{dataset}"),
    "across_datasets": (f"{RESULTS}/figures/compare_datasets/{{model}}.png", "{model}"),
}


for _figure, _spec in FIGURES.items():
    _path = FIGURE_PATHS[_spec.scope][0].replace("{figure}", _figure)

    rule:
        name:
            f"figure_{_figure}"
        input:
            **(
                {table: f"{MODEL_DIR}/{table}.parquet" for table in _spec.tables}
                if _spec.scope == "model"
                else {"scores": compared_scores}
            ),
        output:
            report(
                _path,
                caption="../report/figure.rst",
                category=report_category(_spec.section),
                subcategory=FIGURE_PATHS[_spec.scope][1],
            ),
        log:
            _path.replace(f"{RESULTS}/figures", f"{LOGS}/figures").replace(".png", ".log"),
        benchmark:
            _path.replace(f"{RESULTS}/figures", f"{BENCHMARKS}/figures").replace(".png", ".tsv")
        localrule: True
        conda:
            ENV
        resources:
            mem_mb=2000,
        params:
            figure=_figure,
            options=figure_options(_figure),
            caption=figure_caption(_figure),
        script:
            "../scripts/figure.py"
