import pandas as pd

from fragility.artifacts import AdversarialSet, TestSet, epsilon_for, load_checkpoint
from fragility.attack import Attack
from fragility.evaluation import predict
from fragility.stage import run_identity, start
from fragility.trust import attack_record, checkpoint_name, trust_table, write_attack_record

log = start(snakemake)
testset = TestSet.load(snakemake.input.testset)
searches = pd.read_parquet(snakemake.input.epsilon)
epsilon = epsilon_for(searches, int(snakemake.wildcards.epoch))
model = load_checkpoint(snakemake.input.checkpoint, snakemake.config["device"])
batch_size = snakemake.config["batch_size"]
attack = Attack(**snakemake.params.attack)
x_adv = attack(model, testset.x, testset.y, epsilon, batch_size)
correct_clean = (predict(model, testset.x, batch_size) == testset.y).numpy()
correct_adv = (predict(model, x_adv, batch_size) == testset.y).numpy()
record = attack_record(run_identity(snakemake.wildcards), attack.name, epsilon, correct_clean, correct_adv, testset.num_classes)
log.info(
    "%s, epsilon %.5g: clean accuracy %.4f, adversarial accuracy %.4f",
    attack.name,
    epsilon,
    record["acc_clean"],
    record["acc_adv"],
)
trust = snakemake.config["trust"]  # only to warn here: the trust rule's params decide
judged = trust_table(pd.DataFrame([record]), searches, trust["alpha"], trust["ratio_tol"], snakemake.config["epsilon"]["target"])
for _, row in judged[~judged["usable"]].iterrows():
    log.warning("checkpoint %s is not usable: %s", checkpoint_name(row), row["why"])
AdversarialSet(x_adv, testset.y, epsilon, attack.name).save(snakemake.output.adversarial)
write_attack_record(record, snakemake.output.record)
