import pandas as pd
from stage import start

from fragility import plots
from fragility.io import save_figure

log = start(snakemake, uses_torch=False)


def read_tables(paths) -> pd.DataFrame:
    paths = [paths] if isinstance(paths, str) else list(paths)
    return pd.concat([pd.read_parquet(path) for path in paths], ignore_index=True)


tables = {name: read_tables(snakemake.input[name]) for name in snakemake.input.keys()}
options = snakemake.params.options
draw = {
    "local_scores": lambda: plots.local_score_heatmaps(tables["scores"]),
    "global_scores": lambda: plots.global_scores(tables["scores"]),
    "landscape": lambda: plots.learning_landscape(tables["sweep"]),
    "response": lambda: plots.filter_response(tables["sweep"], options["response_layer"], options["response_epoch"]),
    "retrain": lambda: plots.retrain_comparison(tables["retrain"], tables["retrain_summary"]),
    "compression": lambda: plots.compression_curve(tables["sweep"]),
    "kernels": lambda: plots.kernel_dropout(tables["kernels"], tables["targeting"]),
    "kernels_consistency": lambda: plots.kernel_consistency(tables["kernels"]),
    "agreement": lambda: plots.rank_agreement(tables["agreement"]),
    "removable": lambda: plots.removable(tables["removable"]),
    "compare_models": lambda: plots.compare_global(tables["scores"], hue="model"),
    "compare_datasets": lambda: plots.compare_global(tables["scores"], hue="dataset"),
}[snakemake.params.figure]
save_figure(draw(), snakemake.output[0], dpi=options["dpi"])
log.info("wrote %s", snakemake.output[0])
