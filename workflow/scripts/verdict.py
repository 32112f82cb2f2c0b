import pandas as pd

from fragility.io import write_parquet
from fragility.scoring.verdict import verdict_table
from fragility.stage import start

log = start(snakemake, uses_torch=False)
tables = {name: pd.read_parquet(path) for name, path in snakemake.input.items()}
table = verdict_table(tables, snakemake.params.tolerance, snakemake.params.layers)
counts = table.groupby("unit", sort=False)[["fragile_by", "measured_by"]].first()
log.info("measures calling each unit fragile:\n%s", counts.to_string())
write_parquet(table, snakemake.output[0])
