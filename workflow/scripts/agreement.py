import pandas as pd
from stage import start

from fragility.io import write_parquet
from fragility.stats import rank_agreement

log = start(snakemake, uses_torch=False)
table = rank_agreement(pd.read_parquet(snakemake.input.scores), pd.read_parquet(snakemake.input.criticality))
log.info("mean Kendall tau_b by pair (last epoch):\n%s", table[table["epoch"] == table["epoch"].max()].to_string(index=False))
write_parquet(table, snakemake.output[0])
