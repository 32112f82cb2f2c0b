rule epsilon:
    """Relative-attack ε search: acc(X_ε) ≈ target · acc(X)."""
    input:
        checkpoints=epsilon_checkpoints,
        testset=f"{RESULTS}/{{dataset}}/testset.pt",
    output:
        f"{RUN_DIR}/epsilon.parquet",
    params:
        search={k: config["epsilon"][k] for k in ("target", "tol", "min", "max", "grid_points", "max_iter")},
        scope=config["epsilon"]["scope"],
        epochs=epsilon_epochs,
        attack=ATTACK,
    log:
        f"{LOGS}/epsilon/{{dataset}}/{{model}}/seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/epsilon/{{dataset}}/{{model}}/seed{{seed}}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        ENV
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
    params:
        attack=ATTACK,
    log:
        f"{LOGS}/adversarial/{{dataset}}/{{model}}/seed{{seed}}/epoch{{epoch}}.log",
    benchmark:
        f"{BENCHMARKS}/adversarial/{{dataset}}/{{model}}/seed{{seed}}/epoch{{epoch}}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    priority: 10
    conda:
        ENV
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
    resources:
        mem_mb=2000,
    conda:
        ENV
    script:
        "../scripts/collect.py"
