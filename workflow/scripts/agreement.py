import pandas as pd

from fragility.io import write_parquet
from fragility.scoring.agreement import rank_agreement
from fragility.stage import start

log = start(snakemake, uses_torch=False)
tables = {name: pd.read_parquet(path) for name, path in snakemake.input.items()}
table = rank_agreement(tables, snakemake.params.families)
log.info("mean Kendall tau_b by pair (last epoch):\n%s", table[table["epoch"] == table["epoch"].max()].to_string(index=False))
write_parquet(table, snakemake.output[0])
