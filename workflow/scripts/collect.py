import pandas as pd

from fragility.io import write_parquet
from fragility.stage import start
from fragility.trust import with_usable

log = start(snakemake, uses_torch=False)
# a stress test with no unit for this model (e.g. only __global__ swept: nothing to re-initialise)
# collects an empty table with its columns, so that what reads it still runs
columns = getattr(snakemake.params, "columns", None)
paths = getattr(snakemake.input, "units", snakemake.input)
tables = [pd.read_parquet(path) for path in paths]
table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=columns)
if hasattr(snakemake.input, "trust"):  # every checkpoint's row says whether it can be read
    table = with_usable(table, pd.read_parquet(snakemake.input.trust))
log.info("%d tables, %d rows", len(paths), len(table))
write_parquet(table, snakemake.output[0])
