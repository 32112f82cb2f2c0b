from fragility.data import load_dataset
from fragility.io import write_parquet
from fragility.stage import run_identity, start
from fragility.train import ModelSpec, TrainConfig, train

log = start(snakemake)
data = load_dataset(**snakemake.params.data)
spec = ModelSpec.for_dataset(snakemake.wildcards.model, data, **snakemake.params.model)
config = TrainConfig(**snakemake.params.train)
paths = dict(zip(config.checkpoint_epochs(), snakemake.output.checkpoints))
log.info("training %s on %s (%d images), seed %s", spec.name, data.name, len(data.y_train), snakemake.wildcards.seed)
history = train(spec, data, int(snakemake.wildcards.seed), config, paths.__getitem__, snakemake.config["device"])
write_parquet(history.assign(**run_identity(snakemake.wildcards, epoch=False)), snakemake.output.log_table)
