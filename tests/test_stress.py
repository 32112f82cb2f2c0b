"""The stress-test shape: the registry, one job over several units, and its memo."""

import pandas as pd
import pytest

from fragility.artifacts import StressMemo
from fragility.engine.sweep import SweepOptions
from fragility.stress import RUN_COLUMNS, STRESS_TESTS, Context, rank_families
from fragility.stress.job import run_stress_job
from fragility.sweep import SWEEP_COLUMNS, sweep

IDENTITY = {"dataset": "d", "model": "resnet18", "seed": 0, "epoch": 1}


def test_every_stress_test_declares_its_tables_with_the_shared_columns():
    assert list(STRESS_TESTS) == ["sweep", "kernels", "criticality", "triage", "semirobust"]
    for test in STRESS_TESTS.values():
        for name, columns in test.tables.items():
            assert columns[:4] == RUN_COLUMNS and "attack" in columns, (test.name, name)
            assert {"layer", "block", "split_k"} & set(columns), (test.name, name)  # the unit: a block, a split
            assert len(set(columns)) == len(columns)
    assert [family["table"] for family in rank_families()] == ["scores", "criticality", "triage_drops"]


def _context(folder):
    return Context(folder / "checkpoint.pt", folder / "testset.pt", folder / "adversarial.pt", "cpu", SweepOptions(batch_size=16))


def _outputs(folder, test, units):
    return {unit: {table: folder / table / f"{unit}.parquet" for table in test.tables} for unit in units}


def test_a_job_writes_each_unit_as_the_test_alone_computes_it(stage_files, tmp_path):
    test, params = STRESS_TESTS["sweep"], {"steps": 3, "filters": ["h1", "h2", "h3"], "whitebox_units": [], "whitebox": None}
    outputs = _outputs(tmp_path, test, ["conv1", "fc"])
    run_stress_job(test, _context(stage_files), outputs, params, IDENTITY)
    context = _context(stage_files)
    tests = context.tests
    alone = sweep(context.model, "fc", tests.x, tests.y, context.adversarial.x_adv, steps=3, batch_size=16)
    written = pd.read_parquet(outputs["fc"]["sweep"])
    assert list(written.columns) == RUN_COLUMNS + SWEEP_COLUMNS + ["attack"] and (written["attack"] == "fgsm").all()
    pd.testing.assert_frame_equal(written[SWEEP_COLUMNS], alone, check_exact=True)


def test_sweep_settings_come_one_way(stage_files):
    with pytest.raises(TypeError, match="not both"):
        SweepOptions.of(SweepOptions(), steps=10)
    with pytest.raises(TypeError, match="unknown sweep setting 'step'"):
        SweepOptions.of(step=10)
    assert SweepOptions.of(steps=10, filters=["h1"]) == SweepOptions(steps=10, filters=("h1",))
    tests = _context(stage_files).tests
    with pytest.raises(TypeError, match="not both"):
        sweep(_context(stage_files).model, "fc", tests.x, tests.y, tests.x, SweepOptions(), steps=10)


DAMAGE = {
    "garbage": lambda path: path.write_bytes(b"garbage"),
    "truncated": lambda path: path.write_bytes(path.read_bytes()[:100]),
    "empty": lambda path: path.write_bytes(b""),
    "wrong schema": lambda path: pd.DataFrame({"other": [1, 2]}).to_parquet(path),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_memo_entry_is_recomputed_never_a_failure(stage_files, tmp_path, damage, caplog):
    test = STRESS_TESTS["kernels"]
    outputs = _outputs(tmp_path, test, ["conv1", "fc"])
    memo_folder = tmp_path / ".memo"
    run_stress_job(test, _context(stage_files), outputs, {}, IDENTITY, memo_folder)
    first = {unit: {t: pd.read_parquet(p) for t, p in tables.items()} for unit, tables in outputs.items()}
    memo = StressMemo(memo_folder, list(_context(stage_files).paths.values()), {"test": "kernels"})
    entry = memo.path("conv1", "kernels")
    assert entry.is_file()
    DAMAGE[damage](entry)
    for tables in outputs.values():
        for path in tables.values():
            path.unlink()
    with caplog.at_level("WARNING"):
        run_stress_job(test, _context(stage_files), outputs, {}, IDENTITY, memo_folder)
    assert str(entry) in caplog.text and "recomputed" in caplog.text
    for unit, tables in outputs.items():
        for table, path in tables.items():
            pd.testing.assert_frame_equal(pd.read_parquet(path), first[unit][table], check_exact=True)
    assert pd.read_parquet(entry).equals(first["conv1"]["kernels"])  # the entry is replaced by a good one


def test_a_new_stress_test_is_one_entry_on_the_shared_shape(stage_files, tmp_path):
    """The shape a fourth stress test plugs into: units, params, a run function and its
    tables; the job adds the run columns and the attack, writes, memorises and reads back."""
    from fragility.evaluation import accuracy
    from fragility.stress.base import StressTest

    def run(context, unit, params):
        module = context.model.net.get_submodule(unit)
        saved = module.weight.detach().clone()
        module.weight.data.mul_(params["scale"])
        try:
            tests = context.tests
            acc = accuracy(context.model, tests.x, tests.y), accuracy(context.model, context.adversarial.x_adv, tests.y)
        finally:
            module.weight.data.copy_(saved)
        return {"scaled": pd.DataFrame({"layer": [unit], "acc_clean": [acc[0]], "acc_adv": [acc[1]]})}

    scaled = StressTest(
        name="scaled",
        description="every weight of the unit halved",
        tables={"scaled": RUN_COLUMNS + ["attack", "layer", "acc_clean", "acc_adv"]},
        units=lambda config, model: ["conv1", "fc"],
        run=run,
        params=lambda config, model, units: {"scale": 0.5},
    )
    outputs = _outputs(tmp_path, scaled, scaled.units({}, "resnet18"))
    run_stress_job(scaled, _context(stage_files), outputs, scaled.params({}, "resnet18", []), IDENTITY, tmp_path / ".memo")
    table = pd.read_parquet(outputs["fc"]["scaled"])
    assert list(table.columns) == scaled.tables["scaled"] and table.iloc[0]["layer"] == "fc"
    assert table.iloc[0][RUN_COLUMNS].tolist() == list(IDENTITY.values()) and table.iloc[0]["attack"] == "fgsm"
    context = _context(stage_files)
    model, tests = context.model, context.tests
    assert table.iloc[0]["acc_clean"] == run(context, "fc", {"scale": 0.5})["scaled"].iloc[0]["acc_clean"]
    assert accuracy(model, tests.x, tests.y) == context.shared("x", lambda: accuracy(model, tests.x, tests.y))  # model restored
