from pathlib import Path

from fragility.stage import start, stress_context
from fragility.stress import STRESS_TESTS

log = start(snakemake)
test = STRESS_TESTS[snakemake.params.test]
prerequisite = next(p for p in test.prerequisites if p.name == snakemake.params.prerequisite)
paths = {name: Path(snakemake.output[name]) for name in prerequisite.outputs}
prerequisite.make(stress_context(snakemake, test), test.settings.from_params(dict(snakemake.params.settings)), paths)
log.info("wrote %s", ", ".join(map(str, paths.values())))
