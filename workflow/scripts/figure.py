import pandas as pd
from stage import start

from fragility import plots
from fragility.io import save_figure

log = start(snakemake, uses_torch=False)
table = pd.concat([pd.read_parquet(path) for path in snakemake.input], ignore_index=True)
options = snakemake.params.options
draw = {
    "local_scores": lambda: plots.local_score_heatmaps(table),
    "global_scores": lambda: plots.global_scores(table),
    "landscape": lambda: plots.learning_landscape(table),
    "response": lambda: plots.filter_response(table, options["response_layer"], options["response_epoch"]),
    "retrain": lambda: plots.retrain_comparison(table),
    "compression": lambda: plots.compression_curve(table),
    "compare_models": lambda: plots.compare_global(table, hue="model"),
    "compare_datasets": lambda: plots.compare_global(table, hue="dataset"),
}[snakemake.params.figure]
save_figure(draw(), snakemake.output[0], dpi=options["dpi"])
log.info("wrote %s", snakemake.output[0])
