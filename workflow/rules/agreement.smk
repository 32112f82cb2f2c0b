# Rank agreement between the stress tests that order layers (their RankMeasures entries).
RANKED = [test.ranks for test in STRESS_TESTS.values() if test.ranks is not None]


rule agreement:
    """Kendall's τ_b between the layer rankings of every stress-test measure."""
    input:
        **{ranks.table: f"{MODEL_DIR}/{ranks.table}.parquet" for ranks in RANKED},
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
        families=rank_families(),
    script:
        "../scripts/agreement.py"
