# The workflow lives in workflow/Snakefile (where the Snakemake workflow catalog and
# snakedeploy look for it); this file lets `snakemake` run from the repository root.


include: "workflow/Snakefile"


# An included file's rules never become the default target: this rule names rule all's targets.
rule default:
    default_target: True
    input:
        checked_targets,
    localrule: True
