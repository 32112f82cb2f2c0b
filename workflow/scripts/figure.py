import pandas as pd

from fragility.figures import draw_figure
from fragility.io import save_figure
from fragility.stage import start

log = start(snakemake, uses_torch=False)


def read_tables(paths) -> pd.DataFrame:
    paths = [paths] if isinstance(paths, str) else list(paths)
    return pd.concat([pd.read_parquet(path) for path in paths], ignore_index=True)


tables = {name: read_tables(snakemake.input[name]) for name in snakemake.input.keys()}
options = snakemake.params.options
save_figure(draw_figure(snakemake.params.figure, tables, options), snakemake.output[0], dpi=options["dpi"])
log.info("wrote %s", snakemake.output[0])
