import pandas as pd

from fragility.artifacts import epsilon_for
from fragility.attack import Attack
from fragility.data import load_dataset
from fragility.io import with_leading_columns, write_parquet
from fragility.retrain import retrain, selective_branches
from fragility.scoring.tables import score_table
from fragility.stage import run_identity, start

log = start(snakemake)
params = snakemake.params
scores = score_table(pd.concat([pd.read_parquet(p) for p in snakemake.input.sweeps]), params.integration, params.tau)
branches = selective_branches(scores, params.label_score, params.label_filter, params.label_attack)
for name, branch in branches.items():
    log.info(
        "%s: freezing %d of %d layers labelled fragile by the %s reading: %s",
        name,
        len(branch.frozen),
        branch.n_layers,
        branch.label_attack,
        ", ".join(branch.frozen) or "none",
    )
epsilon = epsilon_for(pd.read_parquet(snakemake.input.epsilon), int(snakemake.wildcards.epoch))
data = load_dataset(**params.data)
table, _ = retrain(
    snakemake.input.checkpoint,
    data,
    {name: branch.frozen for name, branch in branches.items()},
    params.epochs,
    epsilon,
    device=snakemake.config["device"],
    batch_size=snakemake.config["batch_size"],
    attack=Attack(**params.attack),
)
for column in ("label_attack", "n_layers"):
    table[column] = table["branch"].map({name: getattr(b, column) for name, b in branches.items()})
write_parquet(with_leading_columns(table, run_identity(snakemake.wildcards, epoch=False)), snakemake.output[0])
