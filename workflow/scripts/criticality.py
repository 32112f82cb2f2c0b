from stage import run_identity, start

from fragility.artifacts import AdversarialSet, Checkpoint, TestSet
from fragility.criticality import criticality_table, initial_state
from fragility.io import with_leading_columns, write_parquet
from fragility.models import resolve_device

log = start(snakemake)
testset = TestSet.load(snakemake.input.testset)
adversarial = AdversarialSet.load(snakemake.input.adversarial, testset)
device = resolve_device(snakemake.config["device"])
checkpoint = Checkpoint.read(snakemake.input.checkpoint, device)
model = checkpoint.model(device)
given = checkpoint.model_spec.init == "given"  # no initial state to re-initialise to: re-randomisation only
table = criticality_table(
    model,
    snakemake.params.layers,
    testset.x,
    testset.y,
    adversarial.x_adv,
    None if given else initial_state(checkpoint.model_spec, checkpoint.seed),
    snakemake.params.init or checkpoint.model_spec.init,
    checkpoint.seed,
    snakemake.config["batch_size"],
)
log.info("largest drops:\n%s", table.sort_values("drop_clean", ascending=False).head(8).to_string(index=False))
identity = {**run_identity(snakemake.wildcards), "attack": adversarial.attack}
write_parquet(with_leading_columns(table, identity), snakemake.output[0])
