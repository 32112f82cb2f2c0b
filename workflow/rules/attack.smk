def epsilon_checkpoints(wildcards):
    """scope run: the run's last checkpoint; per_checkpoint: all of them."""
    epochs = EPOCHS if config["epsilon"]["scope"] == "per_checkpoint" else EPOCHS[-1:]
    return expand(CHECKPOINT, epoch=epochs, **wildcards)


rule epsilon:
    """Relative-attack ε search: acc(X_ε) ≈ target · acc(X)."""
    input:
        checkpoints=epsilon_checkpoints,
        testset=RESULTS + "/{dataset}/testset.pt",
    output:
        RUN_DIR + "/epsilon.parquet",
    params:
        epsilon=config["epsilon"],
        clamp=config["attack"]["clamp"],
        batch_size=config["batch_size"],
        device=config["device"],
    log:
        LOGS + "/epsilon/{dataset}/{model}/seed{seed}.log",
    benchmark:
        BENCHMARKS + "/epsilon/{dataset}/{model}/seed{seed}.tsv"
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
        testset=RESULTS + "/{dataset}/testset.pt",
        epsilon=RUN_DIR + "/epsilon.parquet",
    output:
        RUN_DIR + "/adversarial/epoch{epoch}.pt",
    params:
        clamp=config["attack"]["clamp"],
        batch_size=config["batch_size"],
        device=config["device"],
    log:
        LOGS + "/adversarial/{dataset}/{model}/seed{seed}/epoch{epoch}.log",
    benchmark:
        BENCHMARKS + "/adversarial/{dataset}/{model}/seed{seed}/epoch{epoch}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        ENV
    script:
        "../scripts/adversarial.py"


rule collect_epsilon:
    """The ε of every run of one (dataset, model)."""
    input:
        model_runs(RUN_DIR + "/epsilon.parquet"),
    output:
        MODEL_DIR + "/epsilon.parquet",
    log:
        LOGS + "/collect_epsilon/{dataset}/{model}.log",
    conda:
        ENV
    script:
        "../scripts/collect.py"
