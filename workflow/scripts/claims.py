import pandas as pd
from stage import start

from fragility.io import atomic_path, write_parquet
from fragility.scoring.claims import claims_html, claims_markdown, claims_table

log = start(snakemake, uses_torch=False)
tables = {
    name: pd.concat([pd.read_parquet(p) for p in snakemake.input[name]], ignore_index=True)
    for name in ("scores", "sweep", "retrain", "trust")
}
triage = [pd.read_parquet(p) for p in snakemake.input.triage]  # none where no block is triaged
claims = claims_table(
    tables["scores"],
    tables["sweep"],
    tables["retrain"],
    snakemake.params.roles,
    snakemake.params.chance,
    snakemake.params.tau,
    pd.concat(triage, ignore_index=True) if triage else None,
    dict(snakemake.params.triage),
)
markdown = claims_markdown(claims, tables["trust"])
log.info("claims:\n%s", markdown)
write_parquet(claims, snakemake.output.table)
for path, text in ((snakemake.output.markdown, markdown), (snakemake.output.html, claims_html(claims, tables["trust"]))):
    with atomic_path(path) as tmp:
        tmp.write_text(text)
