import pandas as pd
from stage import run_identity, start

from fragility.artifacts import epsilon_for
from fragility.attack import Attack
from fragility.data import load_dataset
from fragility.io import with_leading_columns, write_parquet
from fragility.retrain import layers_to_freeze, retrain
from fragility.scores import score_table

log = start(snakemake)
params = snakemake.params
scores = score_table(pd.concat([pd.read_parquet(p) for p in snakemake.input.sweeps]), params.integration, params.tau)
frozen = layers_to_freeze(scores, f"label_{params.label_score}", params.label_filter)
epsilon = epsilon_for(pd.read_parquet(snakemake.input.epsilon), int(snakemake.wildcards.epoch))
log.info("freezing %d fragile layers: %s", len(frozen), ", ".join(frozen) or "none")
data = load_dataset(**params.data)
table, _ = retrain(
    snakemake.input.checkpoint,
    data,
    frozen,
    params.epochs,
    epsilon,
    device=snakemake.config["device"],
    batch_size=snakemake.config["batch_size"],
    attack=Attack(**params.attack),
)
write_parquet(with_leading_columns(table, run_identity(snakemake.wildcards, epoch=False)), snakemake.output[0])
