from stage import run_identity, start

from fragility.artifacts import AdversarialSet, TestSet, load_checkpoint
from fragility.io import with_leading_columns, write_parquet
from fragility.nodes import analyse_kernels
from fragility.sweep import SweepOptions

log = start(snakemake)
testset = TestSet.load(snakemake.input.testset)
adversarial = AdversarialSet.load(snakemake.input.adversarial, testset)
execution = snakemake.config["sweep"]
options = SweepOptions(
    batch_size=snakemake.config["batch_size"],
    method=execution["method"],
    cache_budget_mb=execution["cache_budget_mb"],
    margin_guard=execution["margin_guard"],
)
model = load_checkpoint(snakemake.input.checkpoint, snakemake.config["device"])
kernels, targeting = analyse_kernels(model, snakemake.wildcards.layer, testset.x, testset.y, adversarial.x_adv, options)
identity = {**run_identity(snakemake.wildcards), "attack": adversarial.attack}
for name, table in (("kernels", kernels), ("targeting", targeting)):
    write_parquet(with_leading_columns(table, identity), snakemake.output[name])
log.info(
    "%d kernels, fragile (clean/adv): %d/%d; targeting:\n%s",
    len(kernels),
    kernels["fragile_clean"].sum(),
    kernels["fragile_adv"].sum(),
    targeting.to_string(index=False),
)
