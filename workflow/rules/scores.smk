rule scores:
    """r, r_ε and Δr with labels and normalised scores, per layer, filter, seed and epoch."""
    input:
        MODEL_DIR + "/sweep.parquet",
    output:
        MODEL_DIR + "/scores.parquet",
    params:
        scores=config["scores"],
    log:
        LOGS + "/scores/{dataset}/{model}.log",
    benchmark:
        BENCHMARKS + "/scores/{dataset}/{model}.tsv"
    conda:
        ENV
    script:
        "../scripts/scores.py"
