from pathlib import Path

from stage import run_identity, start

from fragility.pipeline import sweep_job
from fragility.sweep import SweepOptions

log = start(snakemake)
execution = snakemake.config["sweep"]
options = SweepOptions(
    steps=snakemake.params.steps,
    filters=tuple(snakemake.params.filters),
    batch_size=snakemake.config["batch_size"],
    method=execution["method"],
    cache_budget_mb=execution["cache_budget_mb"],
    margin_guard=execution["margin_guard"],
)
outputs = {Path(path).name.removesuffix(".parquet"): path for path in snakemake.output}  # one table per layer
sweep_job(
    snakemake.input.checkpoint,
    snakemake.input.testset,
    snakemake.input.adversarial,
    outputs,
    options,
    run_identity(snakemake.wildcards),
    snakemake.params.regenerate,
    snakemake.config["device"],
    memo_folder=Path(snakemake.output[0]).parent / ".memo" if len(outputs) > 1 else None,
)
