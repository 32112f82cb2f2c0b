import pandas as pd

from fragility.io import atomic_path, write_parquet
from fragility.scoring.claims import claims_html, claims_markdown, claims_table
from fragility.stage import start
from fragility.stress import STRESS_TESTS  # noqa: F401  (registers every stress test's claims)

log = start(snakemake, uses_torch=False)
tables = {
    name: pd.concat([pd.read_parquet(p) for p in snakemake.input[name]], ignore_index=True)
    for name in snakemake.input.keys()
    if snakemake.input[name]  # a table no (dataset, model) makes (no block triaged): its claims do not run
}
options = {"roles": snakemake.params.roles, "chance": snakemake.params.chance, **snakemake.params.tests}
claims = claims_table(tables, options)
markdown = claims_markdown(claims, tables["trust"])
log.info("claims:\n%s", markdown)
write_parquet(claims, snakemake.output.table)
for path, text in ((snakemake.output.markdown, markdown), (snakemake.output.html, claims_html(claims, tables["trust"]))):
    with atomic_path(path) as tmp:
        tmp.write_text(text)
