# One set of rules per stress test of fragility.stress.STRESS_TESTS: its prerequisites, its
# stress jobs, the collection of its tables and its summaries. A test runs one job per
# (checkpoint, unit) for the models in single_unit_models(test) (sweep.layers_per_job 1, the
# SLURM profile's choice: the analysis fans out over a cluster), and otherwise one job per
# (checkpoint, group of units) — `auto`: all of a checkpoint's units — so that a local run
# pays the start-up (imports, loading) once per checkpoint. Either way every unit has its own
# tables, collected per (dataset, model).


for _test in STRESS_TESTS.values():

    for _prerequisite in _test.prerequisites:

        rule:
            name:
                _prerequisite.name
            input:
                **STRESS_INPUTS,
            output:
                **{name: f"{RUN_DIR}/{path}" for name, path in _prerequisite.outputs.items()},
            log:
                f"{LOGS}/{_prerequisite.name}/{{dataset}}/{{model}}/seed{{seed}}/epoch{{epoch}}.log",
            benchmark:
                f"{BENCHMARKS}/{_prerequisite.name}/{{dataset}}/{{model}}/seed{{seed}}/epoch{{epoch}}.tsv"
            conda:
                ENV
            threads: 1
            resources:
                mem_mb=_prerequisite.mem_mb,
                gpu=1 if _prerequisite.uses_gpu and config["device"] == "cuda" else 0,
            params:
                test=_test.name,
                prerequisite=_prerequisite.name,
                training=test_data(_test.name),
                settings=lambda wildcards, test=_test: test.params(config, wildcards.model, []),
            script:
                "../scripts/prerequisite.py"

    rule:
        name:
            _test.name
        input:
            **STRESS_INPUTS,
            **prerequisite_paths(_test),
        output:
            **{table: unit_table(table) for table in _test.tables},
        log:
            f"{LOGS}/{_test.name}/{{dataset}}/{{model}}/seed{{seed}}/epoch{{epoch}}/{{layer}}.log",
        benchmark:
            f"{BENCHMARKS}/{_test.name}/{{dataset}}/{{model}}/seed{{seed}}/epoch{{epoch}}/{{layer}}.tsv"
        wildcard_constraints:
            model=single_unit_models(_test.name),
        priority: _test.priority
        group:
            _test.name
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=lambda wildcards, attempt: 2000 * attempt,
        params:
            test=_test.name,
            training=test_data(_test.name),
            settings=lambda wildcards, test=_test: test.params(config, wildcards.model, [wildcards.layer]),
        script:
            "../scripts/stress.py"

    for _model, _part, _units in grouped_jobs(_test.name):

        rule:
            name:
                f"{_test.name}_{_model}_part{_part}"
            input:
                **STRESS_INPUTS,
                **prerequisite_paths(_test),
            output:
                [unit_table(table).replace("{layer}", unit) for unit in _units for table in _test.tables],
            log:
                f"{LOGS}/{_test.name}/{{dataset}}/{{model}}/seed{{seed}}/epoch{{epoch}}/part{_part}.log",
            benchmark:
                f"{BENCHMARKS}/{_test.name}/{{dataset}}/{{model}}/seed{{seed}}/epoch{{epoch}}/part{_part}.tsv"
            wildcard_constraints:
                model=_model,
            priority: _test.priority
            group:
                _test.name
            conda:
                ENV
            threads: 1
            resources:
                mem_mb=lambda wildcards, attempt: 2000 * attempt,
            params:
                test=_test.name,
                training=test_data(_test.name),
                settings=lambda wildcards, test=_test, units=_units: test.params(config, wildcards.model, units),
            script:
                "../scripts/stress.py"

    for _table in _test.tables:

        rule:
            name:
                f"collect_{_table}"
            input:
                units=collected_units(_table),
                trust=TRUST,
            output:
                f"{MODEL_DIR}/{_table}.parquet",
            log:
                f"{LOGS}/collect_{_table}/{{dataset}}/{{model}}.log",
            benchmark:
                f"{BENCHMARKS}/collect_{_table}/{{dataset}}/{{model}}.tsv"
            localrule: True
            conda:
                ENV
            resources:
                mem_mb=2000,
            params:
                columns=_test.tables[_table],
            script:
                "../scripts/collect.py"

    for _summary in _test.summaries:

        rule:
            name:
                _summary.name
            input:
                **{table: f"{MODEL_DIR}/{table}.parquet" for table in _summary.tables},
            output:
                f"{MODEL_DIR}/{_summary.name}.parquet",
            log:
                f"{LOGS}/{_summary.name}/{{dataset}}/{{model}}.log",
            benchmark:
                f"{BENCHMARKS}/{_summary.name}/{{dataset}}/{{model}}.tsv"
            localrule: True
            conda:
                ENV
            resources:
                mem_mb=2000,
            params:
                summary=_summary.name,
                settings=lambda wildcards, summary=_summary: summary.params(config, wildcards.model),
            script:
                "../scripts/summary.py"
