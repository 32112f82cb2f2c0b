rule epsilon:
    """Relative-attack ε search: acc(X_ε) ≈ target · acc(X)."""
    input:
        checkpoints=epsilon_checkpoints,
        testset=f"{RESULTS}/{{dataset}}/testset.pt",
    output:
        f"{RUN_DIR}/epsilon.parquet",
    log:
        f"{LOGS}/epsilon/{{dataset}}/{{model}}/seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/epsilon/{{dataset}}/{{model}}/seed{{seed}}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
    params:
        search={k: config["epsilon"][k] for k in ("target", "tol", "min", "max", "grid_points", "max_iter")},
        scope=config["epsilon"]["scope"],
        epochs=epsilon_epochs,
        attack=ATTACK,
    script:
        "../scripts/epsilon.py"


rule adversarial:
    """The adversarial test set of one checkpoint, made once with the unfiltered network."""
    input:
        checkpoint=CHECKPOINT,
        testset=f"{RESULTS}/{{dataset}}/testset.pt",
        epsilon=f"{RUN_DIR}/epsilon.parquet",
    output:
        f"{RUN_DIR}/adversarial/epoch{{epoch}}.pt",
    log:
        f"{LOGS}/adversarial/{{dataset}}/{{model}}/seed{{seed}}/epoch{{epoch}}.log",
    benchmark:
        f"{BENCHMARKS}/adversarial/{{dataset}}/{{model}}/seed{{seed}}/epoch{{epoch}}.tsv"
    priority: 10
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
    params:
        attack=ATTACK,
    script:
        "../scripts/adversarial.py"


rule collect_epsilon:
    """The ε of every run of one (dataset, model)."""
    input:
        model_runs(f"{RUN_DIR}/epsilon.parquet"),
    output:
        f"{MODEL_DIR}/epsilon.parquet",
    log:
        f"{LOGS}/collect_epsilon/{{dataset}}/{{model}}.log",
    benchmark:
        f"{BENCHMARKS}/collect_epsilon/{{dataset}}/{{model}}.tsv"
    localrule: True
    conda:
        ENV
    resources:
        mem_mb=2000,
    script:
        "../scripts/collect.py"
