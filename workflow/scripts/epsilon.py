import pandas as pd

from fragility.artifacts import TestSet, load_checkpoint
from fragility.attack import Attack, search_epsilon
from fragility.io import write_parquet
from fragility.stage import run_identity, start

log = start(snakemake)
testset = TestSet.load(snakemake.input.testset)
search = snakemake.params.search
attack = Attack(**snakemake.params.attack)
rows = []
for epoch, path in zip(snakemake.params.epochs, snakemake.input.checkpoints, strict=True):
    model = load_checkpoint(path, snakemake.config["device"])
    result = search_epsilon(
        model,
        testset.x,
        testset.y,
        target=search["target"],
        tol=search["tol"],
        eps_min=search["min"],
        eps_max=search["max"],
        grid_points=search["grid_points"],
        max_iter=search["max_iter"],
        clamp=attack.clamp,
        num_classes=testset.num_classes,
        batch_size=snakemake.config["batch_size"],
        attack=attack.method,
        attack_options=attack.options,
    )
    log.info(
        "epoch %d: epsilon %.5g, ratio %.4f (%s)",
        epoch,
        result.epsilon,
        result.ratio,
        "reached" if result.reached else "NOT reached",
    )
    rows.append(
        {
            **run_identity(snakemake.wildcards, epoch=False),
            "epoch": epoch,
            "scope": snakemake.params.scope,
            "attack": attack.name,
            **result.as_row(),
        }
    )
write_parquet(pd.DataFrame(rows), snakemake.output[0])
