from fragility.artifacts import TestSet
from fragility.data import load_dataset
from fragility.stage import start

log = start(snakemake)
data = load_dataset(**snakemake.params.data)
log.info(
    "%s: %d test images of shape %s, %d classes", data.name, len(data.y_test), tuple(data.x_test.shape[1:]), data.num_classes
)
TestSet(data.x_test, data.y_test, data.num_classes).save(snakemake.output[0])
