import pandas as pd
from stage import start

from fragility.artifacts import AdversarialSet, TestSet, epsilon_for, load_checkpoint
from fragility.attack import Attack
from fragility.evaluation import accuracy

log = start(snakemake)
testset = TestSet.load(snakemake.input.testset)
epsilon = epsilon_for(pd.read_parquet(snakemake.input.epsilon), int(snakemake.wildcards.epoch))
model = load_checkpoint(snakemake.input.checkpoint, snakemake.config["device"])
batch_size = snakemake.config["batch_size"]
attack = Attack(**snakemake.params.attack)
x_adv = attack(model, testset.x, testset.y, epsilon, batch_size)
log.info(
    "%s, epsilon %.5g: clean accuracy %.4f, adversarial accuracy %.4f",
    attack.name,
    epsilon,
    accuracy(model, testset.x, testset.y, batch_size),
    accuracy(model, x_adv, testset.y, batch_size),
)
AdversarialSet(x_adv, testset.y, epsilon, attack.name).save(snakemake.output[0])
