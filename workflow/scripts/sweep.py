import torch
from stage import load_testset, run_identity, start

from fragility.io import write_parquet
from fragility.sweep import sweep
from fragility.train import load_checkpoint

log = start(snakemake)
x, y, _ = load_testset(snakemake.input.testset)
adversarial = torch.load(snakemake.input.adversarial, weights_only=True)
if not torch.equal(adversarial["y"], y):
    raise ValueError(f"{snakemake.input.adversarial}: labels differ from {snakemake.input.testset}; rerun the adversarial rule")
settings = snakemake.params.sweep
model = load_checkpoint(snakemake.input.checkpoint, snakemake.params.device)
table = sweep(
    model, snakemake.wildcards.layer, x, y, adversarial["x_adv"], steps=settings["steps"], filters=settings["filters"],
    batch_size=snakemake.params.batch_size, method=settings["method"], cache_budget_mb=settings["cache_budget_mb"],
    margin_guard=settings["margin_guard"],
    regenerate_epsilon=adversarial["epsilon"] if snakemake.params.regenerate else None, clamp=snakemake.params.clamp,
)
identity = run_identity(snakemake.wildcards)
write_parquet(table.assign(**identity)[list(identity) + list(table.columns)], snakemake.output[0])
