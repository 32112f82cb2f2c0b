from pathlib import Path

import pandas as pd

from fragility.stage import run_identity, start, stress_context
from fragility.stress import STRESS_TESTS
from fragility.stress.job import run_stress_job
from fragility.trust import checkpoint_name, unusable_checkpoint

log = start(snakemake)
test = STRESS_TESTS[snakemake.params.test]
outputs = {}  # unit -> table -> path: outputs are named {table}/epoch{EEE}/{unit}.parquet
for path in map(Path, snakemake.output):
    outputs.setdefault(path.name.removesuffix(".parquet"), {})[path.parent.parent.name] = path
first = Path(snakemake.output[0]).parent
for _, row in unusable_checkpoint(pd.read_parquet(snakemake.input.trust), run_identity(snakemake.wildcards)).iterrows():
    log.warning("checkpoint %s is not usable: %s (its tables are computed and flagged)", checkpoint_name(row), row["why"])
run_stress_job(
    test,
    stress_context(snakemake, test),
    outputs,
    dict(snakemake.params.settings),
    run_identity(snakemake.wildcards),
    memo_folder=first / ".memo" if len(outputs) > 1 else None,
)
