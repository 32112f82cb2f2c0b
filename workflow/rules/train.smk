rule testset:
    """The test set, loaded once per dataset and shared by every attack and sweep job."""
    output:
        f"{RESULTS}/{{dataset}}/testset.pt",
    log:
        f"{LOGS}/testset/{{dataset}}.log",
    benchmark:
        f"{BENCHMARKS}/testset/{{dataset}}.tsv"
    conda:
        ENV
    resources:
        mem_mb=4000,
    params:
        data=data_params("test"),
    script:
        "../scripts/testset.py"


rule train:
    """Train one (dataset, model, seed) run and save its checkpoints."""
    output:
        checkpoints=expand(CHECKPOINT, epoch=[f"{e:03d}" for e in checkpoint_epochs(config)], allow_missing=True),
        log_table=f"{RUN_DIR}/train_log.parquet",
    log:
        f"{LOGS}/train/{{dataset}}/{{model}}/seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/train/{{dataset}}/{{model}}/seed{{seed}}.tsv"
    wildcard_constraints:
        model=TRAINED_MODELS,
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        gpu=1 if config["device"] == "cuda" else 0,
    params:
        data=data_params("train", "test"),
        model=model_params,
        train=config["train"],
    script:
        "../scripts/train.py"


rule given_model:
    """A model analysed as given (never trained here): its weights as the one checkpoint, epoch 0."""
    input:
        weights=lambda wildcards: model_entries(config)[wildcards.model]["weights"],
    output:
        f"{RUN_DIR}/checkpoints/epoch000.pt",
    log:
        f"{LOGS}/given_model/{{dataset}}/{{model}}/seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/given_model/{{dataset}}/{{model}}/seed{{seed}}.tsv"
    wildcard_constraints:
        model=GIVEN_MODELS,
        seed="0",
    localrule: True
    conda:
        ENV
    resources:
        mem_mb=4000,
    params:
        spec=lambda wildcards: given_model_spec(config, wildcards.model),
        # a retraining branch starts a fresh Adam with these
        train={key: config["train"][key] for key in ("batch_size", "lr")},
    script:
        "../scripts/given_model.py"
