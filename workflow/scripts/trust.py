import sys

import pandas as pd

from fragility.io import write_parquet
from fragility.stage import start
from fragility.trust import UntrustedError, check_required, checkpoint_name, read_attack_records, trust_table

log = start(snakemake, uses_torch=False)
params = snakemake.params
searches = pd.concat([pd.read_parquet(path) for path in snakemake.input.epsilon], ignore_index=True)
trust = trust_table(read_attack_records(snakemake.input.records), searches, params.alpha, params.ratio_tol, params.target)
for _, row in trust[~trust["usable"]].iterrows():
    log.warning("checkpoint %s is not usable: %s", checkpoint_name(row), row["why"])
log.info("%d of %d checkpoints usable", int(trust["usable"].sum()), len(trust))
if params.require:
    try:
        check_required(trust)
    except UntrustedError as exc:
        sys.exit(f"Error: {exc}")  # one line in the log, and no table written
write_parquet(trust, snakemake.output[0])
