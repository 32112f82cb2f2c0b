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
    """The adversarial test set of one checkpoint, made once with the unfiltered network, and
    the record of what the attack did to it (what the checkpoint's trust is judged from)."""
    input:
        checkpoint=CHECKPOINT,
        testset=f"{RESULTS}/{{dataset}}/testset.pt",
        epsilon=f"{RUN_DIR}/epsilon.parquet",
    output:
        adversarial=f"{RUN_DIR}/adversarial/epoch{{epoch}}.pt",
        record=f"{RUN_DIR}/adversarial/epoch{{epoch}}.parquet",
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


rule trust:
    """Which checkpoints can be read: above chance and stressed by the attack (trust.*)."""
    input:
        records=model_runs(f"{RUN_DIR}/adversarial/epoch{{epoch}}.parquet"),
        epsilon=model_runs(f"{RUN_DIR}/epsilon.parquet"),
    output:
        f"{MODEL_DIR}/trust.parquet",
    log:
        f"{LOGS}/trust/{{dataset}}/{{model}}.log",
    benchmark:
        f"{BENCHMARKS}/trust/{{dataset}}/{{model}}.tsv"
    localrule: True
    conda:
        ENV
    resources:
        mem_mb=2000,
    params:
        alpha=config["trust"]["alpha"],
        ratio_tol=config["trust"]["ratio_tol"],
        target=config["epsilon"]["target"],
        require=config["trust"]["require"],
    script:
        "../scripts/trust.py"
