from pathlib import Path

import pandas as pd
from stage import run_identity, start

from fragility.engine.sweep import SweepOptions, variant_batch_for
from fragility.models import resolve_device
from fragility.stress import STRESS_TESTS, Context
from fragility.stress.job import run_stress_job
from fragility.trust import checkpoint_name, unusable_checkpoint

log = start(snakemake)
test = STRESS_TESTS[snakemake.params.test]
execution = snakemake.config["sweep"]
options = SweepOptions(
    batch_size=snakemake.config["batch_size"],
    method=execution["method"],
    cache_budget_mb=execution["cache_budget_mb"],
    margin_guard=execution["margin_guard"],
    variant_batch=variant_batch_for(execution["variant_batch"], resolve_device(snakemake.config["device"])),
)
outputs = {}  # unit -> table -> path: outputs are named {table}/epoch{EEE}/{unit}.parquet
for path in map(Path, snakemake.output):
    outputs.setdefault(path.name.removesuffix(".parquet"), {})[path.parent.parent.name] = path
first = Path(snakemake.output[0]).parent
inputs = snakemake.input
for _, row in unusable_checkpoint(pd.read_parquet(inputs.trust), run_identity(snakemake.wildcards)).iterrows():
    log.warning("checkpoint %s is not usable: %s (its tables are computed and flagged)", checkpoint_name(row), row["why"])
run_stress_job(
    test,
    Context(
        inputs.checkpoint,
        inputs.testset,
        inputs.adversarial,
        snakemake.config["device"],
        options,
        snakemake.params.training,
        {name: inputs[name] for name in test.inputs},
    ),
    outputs,
    dict(snakemake.params.settings),
    run_identity(snakemake.wildcards),
    memo_folder=first / ".memo" if len(outputs) > 1 else None,
)
