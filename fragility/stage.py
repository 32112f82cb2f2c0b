"""What every stage script of the workflow shares: logging into the rule's log, threads, the
run's identity columns, a stress job's context.

It lives in the package, not beside the scripts: a workflow deployed from a git repository
runs each script from a copy of that one file, so what the scripts import must be installed
(``envs/fragility.yaml``).

A rule's ``params`` hold exactly what changes its output (so Snakemake reruns only what a
change can affect); execution settings that leave results as they are — ``device``,
``batch_size``, ``sweep.method``, ``sweep.cache_budget_mb`` — are read from
``snakemake.config``.
"""

import gc
import logging
import sys
from pathlib import Path


def start(snakemake, uses_torch: bool = True) -> logging.Logger:
    """Send logging, warnings and tracebacks to the rule's log; give torch the rule's threads;
    keep what the imports made (it lives until the job ends) out of every garbage collection,
    the job's own and the interpreter's at exit: a tenth of a figure job."""
    log_path = snakemake.log[0]
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    sys.stderr = open(log_path, "a", buffering=1)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True, format="%(asctime)s %(name)s: %(message)s")
    logging.captureWarnings(True)
    if uses_torch:
        import torch

        torch.set_num_threads(max(1, snakemake.threads))
    gc.freeze()
    return logging.getLogger(f"stage.{snakemake.rule}")


def run_identity(wildcards, epoch=True) -> dict:
    """The run columns every table starts with."""
    identity = {"dataset": wildcards.dataset, "model": wildcards.model, "seed": int(wildcards.seed)}
    if epoch:
        identity["epoch"] = int(wildcards.epoch)
    return identity


def stress_context(snakemake, test):
    """The :class:`fragility.stress.Context` of a stress or prerequisite job of ``test``: the
    checkpoint's files, the engine options of ``sweep.*`` and, for a test that trains, its
    training split; the files its prerequisites made, by name."""
    from fragility.engine.sweep import SweepOptions, variant_batch_for
    from fragility.models import resolve_device
    from fragility.stress import Context

    execution, inputs = snakemake.config["sweep"], snakemake.input
    options = SweepOptions(
        batch_size=snakemake.config["batch_size"],
        method=execution["method"],
        cache_budget_mb=execution["cache_budget_mb"],
        margin_guard=execution["margin_guard"],
        variant_batch=variant_batch_for(execution["variant_batch"], resolve_device(snakemake.config["device"])),
    )
    made = {name: inputs[name] for name in test.inputs if name in inputs.keys()}
    return Context(
        inputs.checkpoint,
        inputs.testset,
        inputs.adversarial,
        snakemake.config["device"],
        options,
        snakemake.params.training,
        made,
    )
