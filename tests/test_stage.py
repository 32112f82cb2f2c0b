"""What the stage scripts share: a job's log takes its logging and warnings, what its imports
made is kept out of garbage collection, and the identity columns every table starts with."""

import gc
import logging
import sys
import warnings
from types import SimpleNamespace

import torch

from fragility.stage import run_identity, start


def test_the_run_identity_is_typed_and_the_epoch_optional():
    wildcards = SimpleNamespace(dataset="digits", model="resnet18", seed="3", epoch="006")
    assert run_identity(wildcards) == {"dataset": "digits", "model": "resnet18", "seed": 3, "epoch": 6}
    assert run_identity(wildcards, epoch=False) == {"dataset": "digits", "model": "resnet18", "seed": 3}


def test_a_job_logs_and_warns_into_its_log_with_its_threads_and_freezes_its_imports(tmp_path, monkeypatch):
    log_path = tmp_path / "logs" / "job.log"
    job = SimpleNamespace(log=[str(log_path)], threads=1, rule="train")
    monkeypatch.setattr(sys, "stderr", sys.stderr)  # start() replaces it; restored after the test
    threads = torch.get_num_threads()
    try:
        log = start(job)
        log.info("epoch %d done", 2)
        warnings.warn("a warning reaches the log", UserWarning, stacklevel=1)
        assert torch.get_num_threads() == 1
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        sys.stderr.close()
        torch.set_num_threads(threads)
        logging.basicConfig(force=True)
        logging.captureWarnings(False)
    text = log_path.read_text()
    assert "stage.train: epoch 2 done" in text and "a warning reaches the log" in text
