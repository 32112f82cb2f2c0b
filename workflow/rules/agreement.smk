# Rank agreement between the stress tests that order layers (their RankMeasures entries).
RANK_FAMILIES = rank_families()


rule agreement:
    """Kendall's τ_b between the layer rankings of every stress-test measure."""
    input:
        unpack(ranked_tables),
    output:
        f"{MODEL_DIR}/agreement.parquet",
    log:
        f"{LOGS}/agreement/{{dataset}}/{{model}}.log",
    benchmark:
        f"{BENCHMARKS}/agreement/{{dataset}}/{{model}}.tsv"
    localrule: True
    conda:
        ENV
    resources:
        mem_mb=2000,
    params:
        families=RANK_FAMILIES,
    script:
        "../scripts/agreement.py"
