"""What every stage script shares: the package on sys.path, logging into the rule's log,
threads, the run's identity columns."""

import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def start(snakemake, uses_torch: bool = True) -> logging.Logger:
    """Send logging, warnings and tracebacks to the rule's log; give torch the rule's threads."""
    log_path = snakemake.log[0]
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    sys.stderr = open(log_path, "a", buffering=1)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True, format="%(asctime)s %(name)s: %(message)s")
    logging.captureWarnings(True)
    if uses_torch:
        import torch

        torch.set_num_threads(max(1, snakemake.threads))
    return logging.getLogger(f"stage.{snakemake.rule}")


def run_identity(wildcards, epoch=True) -> dict:
    """The run columns every table starts with."""
    identity = {"dataset": wildcards.dataset, "model": wildcards.model, "seed": int(wildcards.seed)}
    if epoch:
        identity["epoch"] = int(wildcards.epoch)
    return identity


def load_testset(path):
    """The test images, labels and number of classes the testset rule saved."""
    import torch

    saved = torch.load(path, weights_only=True)
    return saved["x"], saved["y"], saved["num_classes"]


def epsilon_for(epsilon_table_path, epoch: int) -> float:
    """The run's ε (scope run) or this checkpoint's (scope per_checkpoint)."""
    import pandas as pd

    table = pd.read_parquet(epsilon_table_path)
    if (table["scope"] == "per_checkpoint").all():
        table = table[table["epoch"] == epoch]
    if table.empty:
        raise ValueError(f"{epsilon_table_path}: no epsilon for epoch {epoch}; rerun the epsilon rule")
    return float(table["epsilon"].iloc[0])
