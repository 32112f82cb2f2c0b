"""The GPU check (`python -m fragility.bench gpu`) run on the CPU, so that it works the day a
GPU is there: every path's tables against the CPU's exact tables, the white-box reading and an
adversarial-training epoch, and a check that fails when one path's table differs; and the
per-rule job seconds `bench run` reports."""

import pytest

from fragility import bench

TINY = ["gpu", "--device", "cpu", "--test-size", "8", "--steps", "2", "--batch-size", "8"]


def test_the_gpu_check_runs_every_path_on_cpu(capsys):
    bench.main(TINY + ["--csv", "/dev/null"])
    out = capsys.readouterr().out
    for layer in bench.GPU_LAYERS:
        line = next(line for line in out.splitlines() if line.startswith(f"layer={layer} naive"))
        for path in bench.GPU_PATHS:
            assert f"{path}_images_per_s=" in line
        assert "ideal_fraction=" in line
    assert "whitebox_images_per_s=" in out and "train_images_per_s=" in out
    assert out.rstrip().endswith("the device's sweep tables equal the CPU's exact tables on 3 layers, every path")


def test_the_gpu_check_fails_where_a_path_differs(monkeypatch):
    real = bench.sweep

    def mapped_off_by_one(*args, **settings):
        table = real(*args, **settings)
        if settings.get("variant_batch", 1) > 1:
            table.loc[0, "acc_clean"] += 1 / 8
        return table

    monkeypatch.setattr(bench, "sweep", mapped_off_by_one)
    with pytest.raises(AssertionError, match="layer conv1: the mapped path on cpu differs from the CPU's exact tables"):
        bench.main(TINY + ["--layers", "conv1"])


def test_rule_seconds_counts_sums_and_takes_the_median_job_of_each_rule(tmp_path):
    header = "s\th:m:s\tmax_rss\tcpu_time\n"
    for rule, name, seconds in (("figures", "a", 0.5), ("figures", "b", 2.0), ("figures", "c", 0.75), ("train", "x", 9.0)):
        path = tmp_path / rule / "digits" / f"{name}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header + f"{seconds}\t0:00:01\t1\t1\n")
    table = bench.rule_seconds(tmp_path)
    assert table.to_dict("records") == [
        {"rule": "train", "jobs": 1, "job_seconds": 9.0, "median_job_s": 9.0},
        {"rule": "figures", "jobs": 3, "job_seconds": 3.25, "median_job_s": 0.75},
    ]
