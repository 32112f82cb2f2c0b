from stage import start

from fragility.artifacts import AdversarialSet, Checkpoint, TestSet
from fragility.data import load_dataset
from fragility.io import write_parquet
from fragility.models import resolve_device
from fragility.stress.semirobust import SemirobustSettings, make_robust, save_robust

log = start(snakemake)
inputs, config = snakemake.input, snakemake.config
device = resolve_device(config["device"])
checkpoint = Checkpoint.read(inputs.checkpoint, device)
tests = TestSet.load(inputs.testset)
epsilon = AdversarialSet.load(inputs.adversarial, tests).epsilon
settings = SemirobustSettings.from_params(snakemake.params.settings)
robust, table = make_robust(
    checkpoint,
    checkpoint.model(device),
    load_dataset(**snakemake.params.data),
    tests.x,
    tests.y,
    epsilon,
    settings,
    config["batch_size"],
)
save_robust(checkpoint, robust, snakemake.output.robust)
write_parquet(table, snakemake.output.table)
