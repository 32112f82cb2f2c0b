"""The stress-test shape: the registry — every entry's tables, settings, checks and claims —,
one job over several units, its memo, and a new stress test added from one module alone."""

import dataclasses

import pandas as pd
import pytest
import torch

from fragility.artifacts import AdversarialSet, Checkpoint, StressMemo, TestSet
from fragility.config import ConfigError, model_names
from fragility.engine.sweep import SweepOptions
from fragility.scoring.claims import CLAIMS, ClaimSpec, Finding, claims_table, verdict
from fragility.stress import RUN_COLUMNS, STRESS_TESTS, Context, Settings, StressTest, rank_families, register, validate
from fragility.stress.job import run_stress_job
from fragility.stress.synaptic import SWEEP_COLUMNS, sweep
from fragility.trust import with_usable

IDENTITY = {"dataset": "d", "model": "resnet18", "seed": 0, "epoch": 1}


def test_the_registry_holds_the_five_stress_tests_in_order():
    assert list(STRESS_TESTS) == ["sweep", "kernels", "criticality", "triage", "semirobust"]
    for test in STRESS_TESTS.values():
        for name, columns in test.tables.items():
            assert {"layer", "block", "split_k"} & set(columns), (test.name, name)  # the unit: a block, a split
    assert [family["table"] for family in rank_families()] == ["scores", "criticality", "triage_drops"]
    with pytest.raises(ValueError, match="registered twice"):
        register(STRESS_TESTS["kernels"])


# one bad value per stress test with config checks of its own, and the key its one line names
BAD_VALUES = {
    "sweep": ({"whitebox": {"layers": {"default": ["layer9"]}}}, "whitebox.layers.default"),
    "kernels": ({"kernels": {"layers": {"default": ["layer9"]}}}, "kernels.layers.default"),
    "triage": ({"triage": {"epochs": 1}}, "triage.schemes"),  # local_global with one epoch is local
    "semirobust": ({"semirobust": {"train_steps": 5}}, "semirobust.train_steps"),  # budget trains by fgsm_rs: one step
}
# stress tests whose units and settings come from shared keys only (checked by fragility.config)
NO_KEYS_OF_THEIR_OWN = {"criticality": "sweep.layers, blocks and init"}


@pytest.fixture(scope="module")
def default_config():
    return validate({})


@pytest.mark.parametrize("name", list(STRESS_TESTS))
def test_each_stress_test_declares_tables_settings_and_checks(name, default_config):
    test = STRESS_TESTS[name]
    assert test.name == name and test.description
    for table, columns in test.tables.items():
        assert columns[:4] == RUN_COLUMNS and "attack" in columns and len(set(columns)) == len(columns), table
    model = model_names(default_config)[0]
    settings = test.settings.from_config(default_config, model)
    assert isinstance(settings, Settings) and dataclasses.is_dataclass(settings)
    params = test.params(default_config, model, test.units(default_config, model))
    assert test.settings.from_params(params) == settings.for_units(test.units(default_config, model))  # one object, both ways
    assert params == test.settings.from_params(params).as_params()
    if test.check is None:
        assert name in NO_KEYS_OF_THEIR_OWN
        return
    test.check(default_config, model)  # the default passes
    bad, key = BAD_VALUES[name]
    with pytest.raises(ConfigError) as error:
        validate(bad)
    assert str(error.value).startswith(f"config key '{key}'") and "\n" not in str(error.value)


@pytest.mark.parametrize("name", list(CLAIMS))
def test_each_claim_declares_its_test_and_the_n_it_needs(name):
    spec = CLAIMS[name]
    assert spec.tests and spec.statistic and spec.counts and spec.min_n >= 1 and spec.tables
    owners = [test.name for test in STRESS_TESTS.values() if spec in test.claims]
    assert len(owners) == 1, f"claim {name} belongs to {owners}"  # one home


def test_a_claim_below_its_min_n_is_undetermined_never_no():
    spec = ClaimSpec("c", "t", "s", 6, "seeds", ("x",), lambda tables, options: Finding(-1.0, 2, False, "d"))
    assert verdict(spec, spec.compute({}, {})) == ("undetermined", "d; needs n ≥ 6 (has 2)")
    assert verdict(spec, Finding(-1.0, 6, False, "d")) == ("no", "d")
    assert (
        verdict(spec, Finding(1.0, 6, True, "d"))[0] == "yes" and verdict(spec, Finding(1.0, 9, None, "d"))[0] == "undetermined"
    )


def _context(folder):
    return Context(folder / "checkpoint.pt", folder / "testset.pt", folder / "adversarial.pt", "cpu", SweepOptions(batch_size=16))


def _outputs(folder, test, units):
    return {unit: {table: folder / table / f"{unit}.parquet" for table in test.tables} for unit in units}


def test_a_job_writes_each_unit_as_the_test_alone_computes_it(stage_files, tmp_path):
    test = STRESS_TESTS["sweep"]
    params = {"steps": 3, "filters": ["h1", "h2", "h3"], "whitebox_units": [], "whitebox_epochs": [], "whitebox": None}
    outputs = _outputs(tmp_path, test, ["conv1", "fc"])
    run_stress_job(test, _context(stage_files), outputs, params, IDENTITY)
    context = _context(stage_files)
    tests = context.testset
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
    tests = _context(stage_files).testset
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


# ---------------------------------------------------------------- a sixth stress test, from this module alone


@dataclasses.dataclass(frozen=True)
class ScaleSettings(Settings):
    scale: float = 0.5

    @classmethod
    def from_config(cls, config, model):
        return cls(scale=0.5 if config["init"] == "kaiming_uniform" else 0.25)


def _scaled_accuracy(context, unit, settings):
    from fragility.evaluation import accuracy

    module = context.model.net.get_submodule(unit)
    saved = module.weight.detach().clone()
    module.weight.data.mul_(settings.scale)
    try:
        testset = context.testset
        acc = accuracy(context.model, testset.x, testset.y), accuracy(context.model, context.adversarial.x_adv, testset.y)
        with torch.no_grad():
            logit_mean = context.model(testset.x).mean().item()
    finally:
        module.weight.data.copy_(saved)
    return {"scaled": pd.DataFrame({"layer": [unit], "acc_clean": [acc[0]], "acc_adv": [acc[1]], "logit_mean": [logit_mean]})}


def _check_scale(config, model):
    if config["batch_size"] < 2:
        raise ConfigError(f"config key 'batch_size': {config['batch_size']!r} is invalid; scaling needs 2 images a batch")


def _scaling_hurts(tables, options):
    rows = tables["scaled"]
    per_seed = rows.groupby("seed")["acc_clean"].mean()
    return Finding(
        float(per_seed.mean()), len(per_seed), bool(per_seed.mean() < options["scaled"]["below"]), "mean clean accuracy"
    )


SCALED = StressTest(
    name="scaled",
    description="every weight of the unit scaled down",
    tables={"scaled": RUN_COLUMNS + ["attack", "layer", "acc_clean", "acc_adv", "logit_mean"]},
    units=lambda config, model: ["conv1", "fc"],
    settings=ScaleSettings,
    run=_scaled_accuracy,
    check=_check_scale,
    claims=(ClaimSpec("scaling_hurts", "scaling hurts", "mean < below", 1, "seeds", ("scaled",), _scaling_hurts),),
    claim_options=lambda config: {"below": 1.0},
)


def _by_hand(folder, unit, scale):
    """Clean and adversarial accuracy and the mean clean logit of the checkpoint's network with
    ``unit``'s weight multiplied by ``scale``: a plain forward pass on the stage files."""
    model = Checkpoint.read(folder / "checkpoint.pt").model()
    testset = TestSet.load(folder / "testset.pt")
    x_adv = AdversarialSet.load(folder / "adversarial.pt").x_adv
    with torch.no_grad():
        model.net.get_submodule(unit).weight.mul_(scale)
        logits, logits_adv = model(testset.x), model(x_adv)
    right = (logits.argmax(1) == testset.y).double().mean().item()
    right_adv = (logits_adv.argmax(1) == testset.y).double().mean().item()
    return right, right_adv, logits.mean().item()


@pytest.fixture
def scaled_registered(monkeypatch):
    """SCALED registered for one test, with its figure; the registries are restored after."""
    from fragility import plots
    from fragility.figures import FIGURES, FigureSpec, register_figure

    monkeypatch.setattr("fragility.stress.STRESS_TESTS", dict(STRESS_TESTS))
    monkeypatch.setattr("fragility.scoring.claims.CLAIMS", dict(CLAIMS))
    monkeypatch.setattr("fragility.figures.FIGURES", dict(FIGURES))
    import fragility.stress

    fragility.stress.register(SCALED)
    register_figure(
        FigureSpec(
            "scaled",
            lambda t, o: plots.removable(t["scaled"].assign(filter="h1", removable=t["scaled"]["acc_clean"])),
            ("scaled",),
            "c",
        )
    )
    return fragility.stress


def test_a_new_stress_test_runs_from_its_own_module_through_job_collection_claim_and_figure(
    stage_files, tmp_path, scaled_registered
):
    """The recipe of docs/engine.md: one module with a StressTest entry, registered, runs
    through the shared job, the collection, the claims table and a figure; nothing else changes."""
    import fragility.scoring.claims as claims_module
    from fragility.figures import draw_figure

    registry = scaled_registered
    assert registry.STRESS_TESTS["scaled"] is SCALED and claims_module.CLAIMS["scaling_hurts"] is SCALED.claims[0]
    config = registry.validate({})
    with pytest.raises(ConfigError, match="^config key 'batch_size'"):
        registry.validate({"batch_size": 1})
    params = SCALED.params(config, "resnet18", ["conv1", "fc"])
    assert params == {"scale": 0.5}
    outputs = _outputs(tmp_path, SCALED, SCALED.units(config, "resnet18"))
    run_stress_job(SCALED, _context(stage_files), outputs, params, IDENTITY, tmp_path / ".memo")
    table = pd.read_parquet(outputs["fc"]["scaled"])
    assert list(table.columns) == SCALED.tables["scaled"] and table.iloc[0]["layer"] == "fc"
    assert table.iloc[0][RUN_COLUMNS].tolist() == list(IDENTITY.values()) and table.iloc[0]["attack"] == "fgsm"
    expected = {unit: _by_hand(stage_files, unit, 0.5) for unit in ("conv1", "fc")}
    for unit, (acc_clean, acc_adv, logit_mean) in expected.items():
        row = pd.read_parquet(outputs[unit]["scaled"]).iloc[0]
        assert row["acc_clean"] == acc_clean and row["acc_adv"] == acc_adv, unit
        assert row["logit_mean"] == pytest.approx(logit_mean, rel=1e-6, abs=1e-6), unit
        assert abs(logit_mean - _by_hand(stage_files, unit, 1.0)[2]) > 1e-3, unit  # the unscaled network would not pass
    trust = pd.DataFrame([{**IDENTITY, "usable": True, "why": ""}])
    collected = with_usable(pd.concat([pd.read_parquet(p["scaled"]) for p in outputs.values()], ignore_index=True), trust)
    claims = claims_table({"scaled": collected}, {"scaled": SCALED.claim_options(config)})
    row = claims.set_index("claim").loc["scaling_hurts"]
    mean = (expected["conv1"][0] + expected["fc"][0]) / 2  # one seed: the mean of its two units' clean accuracies
    assert row["n"] == 1 and row["value"] == pytest.approx(mean, abs=1e-12)
    assert row["holds"] == ("yes" if mean < 1.0 else "no")  # below: 1.0 (claim_options)
    assert draw_figure("scaled", {"scaled": collected}, {}).axes
