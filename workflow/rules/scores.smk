rule scores:
    """r_x, r_xε and r_ε with labels and normalised scores, per layer, filter, seed and epoch."""
    input:
        f"{MODEL_DIR}/sweep.parquet",
    output:
        f"{MODEL_DIR}/scores.parquet",
    log:
        f"{LOGS}/scores/{{dataset}}/{{model}}.log",
    benchmark:
        f"{BENCHMARKS}/scores/{{dataset}}/{{model}}.tsv"
    localrule: True
    conda:
        ENV
    resources:
        mem_mb=2000,
    params:
        integration=config["scores"]["integration"],
        tau=config["scores"]["tau"],
        bootstrap=config["scores"]["bootstrap"],
        bootstrap_seed=config["scores"]["bootstrap_seed"],
    script:
        "../scripts/scores.py"


rule verdict:
    """Every stress test's verdict on every swept layer and block, in network order."""
    input:
        unpack(verdict_inputs),
    output:
        f"{MODEL_DIR}/verdict.parquet",
    log:
        f"{LOGS}/verdict/{{dataset}}/{{model}}.log",
    benchmark:
        f"{BENCHMARKS}/verdict/{{dataset}}/{{model}}.tsv"
    localrule: True
    conda:
        ENV
    resources:
        mem_mb=2000,
    params:
        tolerance=config["verdict"]["tolerance"],
        layers=lambda wildcards: model_layers(config, wildcards.model),
    script:
        "../scripts/verdict.py"
