import pandas as pd

from fragility.io import write_parquet
from fragility.stage import start
from fragility.stress import summary_owner

log = start(snakemake, uses_torch=False)
_, summary = summary_owner(snakemake.params.summary)
tables = {name: pd.read_parquet(snakemake.input[name]) for name in summary.tables}
table = summary.make(tables, dict(snakemake.params.settings))
log.info("%s:\n%s", summary.name, table.round(3).to_string(index=False, max_rows=40))
write_parquet(table, snakemake.output[0])
