import pandas as pd
from stage import start

from fragility.io import write_parquet
from fragility.scoring.propagation import gain_agreement, split_scores

log = start(snakemake, uses_torch=False)
table = split_scores(
    pd.read_parquet(snakemake.input.scores),
    pd.read_parquet(snakemake.input.semirobust),
    {snakemake.wildcards.model: snakemake.params.layers},
)
log.info("per split, Acc_sr − Acc and the mean scores of f_a and f_b:\n%s", table.round(3).to_string(index=False))
log.info("Kendall τ_b between Acc_sr − Acc and each mean: %s", gain_agreement(table))
write_parquet(table, snakemake.output[0])
