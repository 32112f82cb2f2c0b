import pandas as pd

from fragility.io import write_parquet
from fragility.scoring.stats import retrain_summary
from fragility.stage import start

log = start(snakemake, uses_torch=False)
summary = retrain_summary(pd.read_parquet(snakemake.input[0]))
log.info("selective - regular:\n%s", summary.to_string(index=False))
write_parquet(summary, snakemake.output[0])
