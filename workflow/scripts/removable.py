import pandas as pd
from stage import start

from fragility.io import write_parquet
from fragility.scoring.claims import removable

log = start(snakemake, uses_torch=False)
table = removable(pd.read_parquet(snakemake.input[0]), snakemake.params.max_loss)
log.info(
    "largest removable fraction (clean and adversarial within %.3f), mean over seeds and checkpoints:\n%s",
    snakemake.params.max_loss,
    table.pivot_table(index="layer", columns="filter", values="removable").round(2).to_string(),
)
write_parquet(table, snakemake.output[0])
