import pandas as pd
from stage import start

from fragility.io import write_parquet

log = start(snakemake, uses_torch=False)
table = pd.concat([pd.read_parquet(path) for path in snakemake.input], ignore_index=True)
log.info("%d tables, %d rows", len(snakemake.input), len(table))
write_parquet(table, snakemake.output[0])
