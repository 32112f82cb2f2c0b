"""Can a checkpoint's scores mean anything? One trust record per (dataset, model, seed,
checkpoint): a network that classifies no better than chance, or that the attack could
not stress, is flagged, and everything downstream says so instead of reading noise as
findings. No torch.

- The **attack record** (``adversarial/epochEEE.parquet``, written with the adversarial set
  by the adversarial stage; :func:`attack_record`, :func:`write_attack_record`,
  :func:`read_attack_records`): the checkpoint's clean and adversarial accuracy on the test
  set, the test set's size and classes, and Def. 7 at this checkpoint.
- The **trust table** (``trust.parquet`` per (dataset, model); :func:`trust_table`): the
  records judged with ``trust.alpha`` and ``trust.ratio_tol``. ``usable`` holds only when
  clean accuracy is above chance 1/K by a one-sided binomial test at level α and the attack
  stressed the network: Def. 7 holds and the adversarial accuracy ratio lies within
  ``trust.ratio_tol`` of ``epsilon.target``. ``why`` names each failed condition.
- :func:`with_usable` joins ``usable`` onto any table with the run columns;
  :func:`undetermine_labels` turns the labels of unusable rows into ``undetermined``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .io import write_parquet

RUN_COLUMNS = ["dataset", "model", "seed", "epoch"]
RECORD_COLUMNS = RUN_COLUMNS + ["attack", "epsilon", "n_images", "num_classes", "acc_clean", "acc_adv", "def7_holds"]
TRUST_COLUMNS = RUN_COLUMNS + [
    "attack",
    "n_images",
    "num_classes",
    "chance",
    "acc_clean",
    "min_correct",
    "p_value",
    "above_chance",
    "epsilon",
    "epsilon_reached",
    "def7_holds",
    "def8_holds",
    "acc_adv",
    "ratio",
    "ratio_ok",
    "usable",
    "why",
]
UNDETERMINED = "undetermined"


class UntrustedError(RuntimeError):
    """``trust.require`` and some checkpoint is not usable; one line naming each."""


def attack_record(identity: dict, attack: str, epsilon: float, correct_clean, correct_adv, num_classes: int) -> dict:
    """What the attack did to one checkpoint: accuracies on the clean and adversarial test
    sets (per-image correctness in), and Def. 7 — some image classified correctly is
    misclassified once attacked."""
    clean, adversarial = np.asarray(correct_clean, dtype=bool), np.asarray(correct_adv, dtype=bool)
    return {
        **{key: identity[key] for key in RUN_COLUMNS},
        "attack": attack,
        "epsilon": float(epsilon),
        "n_images": len(clean),
        "num_classes": int(num_classes),
        "acc_clean": float(clean.mean()),
        "acc_adv": float(adversarial.mean()),
        "def7_holds": bool((clean & ~adversarial).any()),
    }


def write_attack_record(record: dict, path: str | Path) -> None:
    write_parquet(pd.DataFrame([record], columns=RECORD_COLUMNS), path)


def read_attack_records(paths) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(path) for path in paths], ignore_index=True)[RECORD_COLUMNS]


def chance_p_value(correct, n: int, num_classes: int):
    """One-sided binomial p: the probability that guessing (1/K per image) gets at least
    ``correct`` of ``n`` images right (``correct`` may be an array of counts)."""
    from scipy.stats import binom

    p = binom.sf(np.asarray(correct) - 1, n, 1.0 / num_classes)
    return float(p) if np.ndim(p) == 0 else p


def min_correct(n: int, num_classes: int, alpha: float) -> int:
    """The fewest correct images of ``n`` that count as above chance at level ``alpha``
    (p ≤ α); ``n + 1`` when no count does."""
    counts = np.arange(n + 1)
    passing = counts[chance_p_value(counts, n, num_classes) <= alpha]
    return int(passing[0]) if len(passing) else n + 1


def trust_table(records: pd.DataFrame, epsilon: pd.DataFrame, alpha: float, ratio_tol: float, target: float) -> pd.DataFrame:
    """Every checkpoint's record judged (:data:`TRUST_COLUMNS`): above chance at level
    ``alpha``, Def. 7, the adversarial accuracy ratio within ``ratio_tol`` of ``target``;
    the ε search's ``reached`` and Def. 8 (its checkpoint's, one search per run with
    ``epsilon.scope: run``) are reported beside them."""
    if not 0 < alpha < 1:
        raise ValueError(f"trust.alpha must lie in (0, 1), got {alpha}")
    rows = []
    for record in records.itertuples(index=False):
        search = _search_row(epsilon, record)
        n, k = int(record.n_images), int(record.num_classes)
        correct = int(round(record.acc_clean * n))
        p_value, threshold = chance_p_value(correct, n, k), min_correct(n, k, alpha)
        ratio = record.acc_adv / record.acc_clean if record.acc_clean > 0 else np.nan
        row = {
            **{key: getattr(record, key) for key in RUN_COLUMNS},
            "attack": record.attack,
            "n_images": n,
            "num_classes": k,
            "chance": 1.0 / k,
            "acc_clean": float(record.acc_clean),
            "min_correct": threshold,
            "p_value": p_value,
            "above_chance": bool(p_value <= alpha),
            "epsilon": float(record.epsilon),
            "epsilon_reached": bool(search["reached"]),
            "def7_holds": bool(record.def7_holds),
            "def8_holds": bool(record.acc_adv > 1.0 / k),
            "acc_adv": float(record.acc_adv),
            "ratio": ratio,
            "ratio_ok": bool(abs(ratio - target) <= ratio_tol + 1e-12) if np.isfinite(ratio) else False,
        }
        reasons = _reasons(row, alpha, ratio_tol, target)
        rows.append({**row, "usable": not reasons, "why": "; ".join(reasons)})
    return pd.DataFrame(rows, columns=TRUST_COLUMNS)


def _search_row(epsilon: pd.DataFrame, record) -> pd.Series:
    """The ε search row that chose this checkpoint's ε (its own, or the run's)."""
    run = epsilon[(epsilon["dataset"] == record.dataset) & (epsilon["model"] == record.model) & (epsilon["seed"] == record.seed)]
    own = run[run["epoch"] == record.epoch]
    return (own if len(own) else run).iloc[0]


def _reasons(row: dict, alpha: float, ratio_tol: float, target: float) -> list[str]:
    """Each failed condition in words."""
    reasons = []
    if not row["above_chance"]:
        reasons.append(
            f"clean accuracy {row['acc_clean']:.3f} is not above chance {row['chance']:.3f} "
            f"(binomial p = {row['p_value']:.3g} > trust.alpha {alpha:g} on {row['n_images']} images; "
            f"needs {row['min_correct']} correct)"
        )
    if not row["def7_holds"]:
        reasons.append(
            f"the attack ({row['attack']}, ε = {row['epsilon']:.4g}) misclassifies no correctly classified image (Def. 7)"
        )
    if not row["ratio_ok"]:
        reasons.append(
            f"adversarial accuracy ratio {row['ratio']:.3f} lies outside epsilon.target {target:g} ± trust.ratio_tol {ratio_tol:g}"
        )
    return reasons


def check_required(trust: pd.DataFrame) -> None:
    """:class:`UntrustedError` naming every unusable checkpoint and why (``trust.require``)."""
    bad = trust[~trust["usable"]]
    if len(bad):
        named = " | ".join(f"{checkpoint_name(row)}: {row['why']}" for _, row in bad.iterrows())
        raise UntrustedError(f"trust.require: {len(bad)} checkpoint(s) not usable: {named}")


def checkpoint_name(row) -> str:
    """'digits/resnet18 seed 0 epoch 2'."""
    return f"{row['dataset']}/{row['model']} seed {int(row['seed'])} epoch {int(row['epoch'])}"


def with_usable(table: pd.DataFrame, trust: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the ``usable`` column of its checkpoint (last); every row's checkpoint
    must have a trust record. A table with a ``usable`` of its own (a stress test's
    precondition, such as a robust F*) keeps a row usable only where both are, and its own
    ``why``, if any, gains the trust record's reason."""
    reasons = ["why"] if "why" in trust else []
    flags = trust[RUN_COLUMNS + ["usable", *reasons]].rename(columns={"usable": "trusted", "why": "trust_why"})
    joined = table.merge(flags, on=RUN_COLUMNS, how="left", validate="many_to_one")
    if joined["trusted"].isna().any():
        missing = joined.loc[joined["trusted"].isna(), RUN_COLUMNS].drop_duplicates().iloc[0]
        raise ValueError(f"no trust record for {checkpoint_name(missing)}; rerun the adversarial rule")
    trusted = joined.pop("trusted").astype(bool)
    trust_why = joined.pop("trust_why").fillna("") if reasons else pd.Series("", index=joined.index)
    own = joined.pop("usable").astype(bool) if "usable" in joined else True
    if "why" in joined:
        pairs = zip(joined["why"].fillna("").astype(str), trust_why.where(~trusted, ""))
        joined["why"] = ["; ".join(reason for reason in pair if reason) for pair in pairs]
    joined["usable"] = trusted & own
    joined.index = table.index
    return joined


def undetermine_labels(table: pd.DataFrame) -> pd.DataFrame:
    """Labels of rows whose checkpoint is not usable become ``undetermined`` (scores kept)."""
    table = table.copy()
    if "usable" not in table:
        return table
    for column in [c for c in table if c.startswith("label_") and not c.endswith("_conf")]:
        table[column] = table[column].astype(object)
        table.loc[~table["usable"], column] = UNDETERMINED
    return table


def usable_rows(table: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The rows of usable checkpoints, and how many (seed, checkpoint) were left out."""
    if "usable" not in table:
        return table, 0
    left_out = table.loc[~table["usable"].astype(bool), ["seed", "epoch"]].drop_duplicates()
    return table[table["usable"].astype(bool)], len(left_out)


def unusable_checkpoint(trust: pd.DataFrame, identity: dict) -> pd.DataFrame:
    """The unusable rows of ``trust`` for the checkpoint ``identity`` names (empty when usable)."""
    mine = np.logical_and.reduce([trust[key] == identity[key] for key in RUN_COLUMNS])
    return trust[mine & ~trust["usable"]]
