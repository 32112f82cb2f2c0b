from fragility.artifacts import Checkpoint, ModelSpec, TrainConfig
from fragility.stage import start

log = start(snakemake)
spec = ModelSpec(**snakemake.params.spec)
checkpoint = Checkpoint.given(spec, snakemake.input.weights, TrainConfig(epochs=0, checkpoint_every=1, **snakemake.params.train))
checkpoint.save(snakemake.output[0])
log.info(
    "%s (%s): weights %s fit, %d classes, %d input channels",
    spec.name,
    spec.architecture,
    snakemake.input.weights,
    spec.num_classes,
    spec.in_channels,
)
