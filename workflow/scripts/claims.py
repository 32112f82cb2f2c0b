import pandas as pd
from stage import start

from fragility.io import atomic_path, write_parquet
from fragility.scoring.claims import claims_html, claims_markdown, claims_table

log = start(snakemake, uses_torch=False)
tables = {
    name: pd.concat([pd.read_parquet(p) for p in snakemake.input[name]], ignore_index=True)
    for name in ("scores", "sweep", "retrain", "trust")
}


def collected(name):
    """The tables of ``name`` concatenated, or None where the run makes none (no block triaged)."""
    found = [pd.read_parquet(p) for p in snakemake.input[name]]
    return pd.concat(found, ignore_index=True) if found else None


semirobust = collected("semirobust")
claims = claims_table(
    tables["scores"],
    tables["sweep"],
    tables["retrain"],
    snakemake.params.roles,
    snakemake.params.chance,
    snakemake.params.tau,
    collected("triage"),
    dict(snakemake.params.triage),
    None if semirobust is None else (semirobust, collected("dependency")),
    snakemake.params.semirobust_delta,
)
markdown = claims_markdown(claims, tables["trust"])
log.info("claims:\n%s", markdown)
write_parquet(claims, snakemake.output.table)
for path, text in ((snakemake.output.markdown, markdown), (snakemake.output.html, claims_html(claims, tables["trust"]))):
    with atomic_path(path) as tmp:
        tmp.write_text(text)
