from stage import start

from fragility.data import load_dataset
from fragility.io import save_torch

log = start(snakemake)
data = load_dataset(**snakemake.params.data)
log.info("%s: %d test images of shape %s, %d classes", data.name, len(data.y_test), tuple(data.x_test.shape[1:]), data.num_classes)
save_torch({"x": data.x_test, "y": data.y_test, "num_classes": data.num_classes}, snakemake.output[0])
