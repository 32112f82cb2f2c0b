import pandas as pd

from fragility.io import write_parquet
from fragility.scoring.tables import score_table
from fragility.stage import start

log = start(snakemake, uses_torch=False)
params = snakemake.params
table = score_table(pd.read_parquet(snakemake.input[0]), params.integration, params.tau, params.bootstrap, params.bootstrap_seed)
log.info(
    "%d score rows; labels (combined, difference): %s",
    len(table),
    table.loc[table["filter"] == "combined", "label_diff"].value_counts().to_dict(),
)
write_parquet(table, snakemake.output[0])
