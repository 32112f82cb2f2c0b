# The workflow lives in workflow/Snakefile (where the Snakemake workflow catalog and
# snakedeploy look for it); this file lets `snakemake` run from the repository root.


include: "workflow/Snakefile"
