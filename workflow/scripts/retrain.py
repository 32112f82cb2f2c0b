import pandas as pd
from stage import epsilon_for, run_identity, start

from fragility.data import load_dataset
from fragility.io import write_parquet
from fragility.retrain import layers_to_freeze, retrain
from fragility.scores import score_table

log = start(snakemake)
settings = snakemake.params.retrain
scores = score_table(pd.concat([pd.read_parquet(p) for p in snakemake.input.sweeps]), snakemake.params.scores["integration"], snakemake.params.scores["tau"])
frozen = layers_to_freeze(scores, f"label_{settings['label_score']}", settings["label_filter"])
epsilon = epsilon_for(snakemake.input.epsilon, int(snakemake.wildcards.epoch))
log.info("freezing %d fragile layers: %s", len(frozen), ", ".join(frozen) or "none")
data = load_dataset(**snakemake.params.data)
table, _ = retrain(snakemake.input.checkpoint, data, frozen, snakemake.params.retrain_epochs, epsilon,
                   snakemake.params.clamp, snakemake.params.device, snakemake.params.batch_size)
identity = run_identity(snakemake.wildcards, epoch=False)
write_parquet(table.assign(**identity)[list(identity) + list(table.columns)], snakemake.output[0])
