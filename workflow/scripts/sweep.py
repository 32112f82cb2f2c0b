from stage import run_identity, start

from fragility.artifacts import AdversarialSet, TestSet, load_checkpoint
from fragility.attack import Attack
from fragility.io import write_parquet
from fragility.sweep import SweepOptions, sweep

log = start(snakemake)
testset = TestSet.load(snakemake.input.testset)
adversarial = AdversarialSet.load(snakemake.input.adversarial, testset)
execution = snakemake.config["sweep"]
options = SweepOptions(
    steps=snakemake.params.steps, filters=tuple(snakemake.params.filters), batch_size=snakemake.config["batch_size"],
    method=execution["method"], cache_budget_mb=execution["cache_budget_mb"], margin_guard=execution["margin_guard"],
)
regenerate = snakemake.params.regenerate
model = load_checkpoint(snakemake.input.checkpoint, snakemake.config["device"])
table = sweep(
    model, snakemake.wildcards.layer, testset.x, testset.y, adversarial.x_adv, options=options,
    regenerate_epsilon=adversarial.epsilon if regenerate else None, attack=Attack(**regenerate) if regenerate else None,
)
identity = run_identity(snakemake.wildcards)
table = table.assign(**identity, attack=adversarial.attack)
write_parquet(table[list(identity) + [c for c in table.columns if c not in identity]], snakemake.output[0])
