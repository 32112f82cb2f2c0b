import re

import pandas as pd
from stage import load_testset, run_identity, start

from fragility.attack import search_epsilon
from fragility.io import write_parquet
from fragility.train import load_checkpoint

log = start(snakemake)
x, y, num_classes = load_testset(snakemake.input.testset)
settings = snakemake.params.epsilon
rows = []
for path in snakemake.input.checkpoints:
    epoch = int(re.search(r"epoch(\d+)\.pt$", path).group(1))
    model = load_checkpoint(path, snakemake.params.device)
    result = search_epsilon(
        model, x, y, target=settings["target"], tol=settings["tol"], eps_min=settings["min"], eps_max=settings["max"],
        grid_points=settings["grid_points"], max_iter=settings["max_iter"], clamp=snakemake.params.clamp,
        num_classes=num_classes, batch_size=snakemake.params.batch_size,
    )
    log.info("epoch %d: epsilon %.5g, ratio %.4f (%s)", epoch, result.epsilon, result.ratio, "reached" if result.reached else "NOT reached")
    rows.append({**run_identity(snakemake.wildcards, epoch=False), "epoch": epoch, "scope": settings["scope"], **result.as_row()})
write_parquet(pd.DataFrame(rows), snakemake.output[0])
