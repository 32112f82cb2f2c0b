from stage import epsilon_for, load_testset, start

from fragility.attack import fgsm
from fragility.evaluation import accuracy
from fragility.io import save_torch
from fragility.train import load_checkpoint

log = start(snakemake)
x, y, _ = load_testset(snakemake.input.testset)
epsilon = epsilon_for(snakemake.input.epsilon, int(snakemake.wildcards.epoch))
model = load_checkpoint(snakemake.input.checkpoint, snakemake.params.device)
x_adv = fgsm(model, x, y, epsilon, snakemake.params.clamp, snakemake.params.batch_size)
log.info("epsilon %.5g: clean accuracy %.4f, adversarial accuracy %.4f", epsilon,
         accuracy(model, x, y, snakemake.params.batch_size), accuracy(model, x_adv, y, snakemake.params.batch_size))
save_torch({"x_adv": x_adv, "y": y, "epsilon": epsilon}, snakemake.output[0])
