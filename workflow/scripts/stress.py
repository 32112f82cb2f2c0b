from pathlib import Path

from stage import run_identity, start

from fragility.engine.sweep import SweepOptions
from fragility.stress import STRESS_TESTS, Context
from fragility.stress.job import run_stress_job

log = start(snakemake)
test = STRESS_TESTS[snakemake.params.test]
execution = snakemake.config["sweep"]
options = SweepOptions(
    batch_size=snakemake.config["batch_size"],
    method=execution["method"],
    cache_budget_mb=execution["cache_budget_mb"],
    margin_guard=execution["margin_guard"],
)
outputs = {}  # unit -> table -> path: outputs are named {table}/epoch{EEE}/{unit}.parquet
for path in map(Path, snakemake.output):
    outputs.setdefault(path.name.removesuffix(".parquet"), {})[path.parent.parent.name] = path
first = Path(snakemake.output[0]).parent
inputs = snakemake.input
run_stress_job(
    test,
    Context(inputs.checkpoint, inputs.testset, inputs.adversarial, snakemake.config["device"], options),
    outputs,
    dict(snakemake.params.settings),
    run_identity(snakemake.wildcards),
    memo_folder=first / ".memo" if len(outputs) > 1 else None,
)
