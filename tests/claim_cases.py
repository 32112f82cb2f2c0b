"""For every registered claim, two small hand-built collected tables: one on which it holds and
one on which it fails (METHOD §15: every claim must be able both to hold and to fail).

Every table has the run columns (dataset, model, seed, epoch), a ``usable`` column (True) and
the columns its claim reads; the model is ``m``, the dataset ``d`` (``d`` and ``e`` for the
claims across datasets). ``OPTIONS`` are the claims options those tables are judged with.
"""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd

import fragility.stress  # noqa: F401  (registers every claim into fragility.scoring.claims.CLAIMS)
from fragility import GLOBAL_LAYER
from fragility.scoring.propagation import SPLIT_SCORES_COLUMNS
from fragility.stress.semirobust import epochs_to_converge

ROLES = {"first_conv": "conv1", "last_layer": "fc", "bn_convs": ["block.conv"], "layers": ["conv1", "block.conv", "fc"]}
OPTIONS = {
    "roles": {"m": ROLES},
    "chance": {"d": 0.1},
    "sweep": {"tau": 0.02},
    "kernels": {},
    "criticality": {},
    "triage": {"tolerance": 0.01, "block_range": 0.05},
    "semirobust": {"delta": 0.05},
}
SEEDS = range(6)  # enough for an exact two-sided Wilcoxon test to reach p < 0.05
EPOCHS = (2, 4)


class ClaimCase(NamedTuple):
    holds: dict[str, pd.DataFrame]
    fails: dict[str, pd.DataFrame]
    options: dict


def frame(rows: list[dict], dataset: str = "d", model: str = "m") -> pd.DataFrame:
    """``rows`` (each with seed and epoch) as a collected table of ``dataset``/``model``."""
    return pd.DataFrame([{"dataset": dataset, "model": model, **row, "usable": True} for row in rows])


# ------------------------------------------------------------ synaptic filtering


def layer_labels(layer: str, robust_at=()) -> pd.DataFrame:
    """Scores: ``layer``'s combined response fragile on r_x and r_xε at every (seed, epoch) of
    two seeds and two checkpoints, but adversarially robust at the runs ``robust_at``."""
    return frame(
        [
            {
                "seed": seed,
                "epoch": epoch,
                "layer": layer,
                "filter": "combined",
                "label_clean": "fragile",
                "label_adv": "robust" if (seed, epoch) in robust_at else "fragile",
            }
            for seed in range(2)
            for epoch in EPOCHS
        ]
    )


def full_removal(accuracy: float, dataset: str = "d") -> pd.DataFrame:
    """Sweep: block.conv under h1 at steps 0–2 (A = 2), with ``accuracy`` clean at full removal."""
    return frame(
        [
            {"seed": seed, "epoch": epoch, "layer": "block.conv", "filter": "h1", "step": step, "acc_clean": acc}
            for seed in range(2)
            for epoch in EPOCHS
            for step, acc in ((0, 0.9), (1, 0.8), (2, accuracy))
        ],
        dataset,
    )


def retrain(clean: list[float], adv: list[float], epochs=EPOCHS) -> pd.DataFrame:
    """Retrain: per seed ``i``, selective − regular accuracy ``clean[i]`` and ``adv[i]`` at every checkpoint."""
    rows = []
    for seed, (diff_clean, diff_adv) in enumerate(zip(clean, adv)):
        for epoch in epochs:
            run = {"seed": seed, "epoch": epoch}
            rows.append({**run, "branch": "regular", "acc_clean": 0.5, "acc_adv": 0.3})
            rows.append({**run, "branch": "selective", "acc_clean": 0.5 + diff_clean, "acc_adv": 0.3 + diff_adv})
    return frame(rows)


def global_scores(by_epoch: dict[int, list[float]], dataset: str = "d") -> pd.DataFrame:
    """Scores: the global combined r_x = r_xε = r_ε of seed ``i`` at ``epoch``: ``by_epoch[epoch][i]``."""
    return frame(
        [
            {
                "seed": seed,
                "epoch": epoch,
                "layer": GLOBAL_LAYER,
                "filter": "combined",
                "score_clean": r,
                "score_adv": r,
                "score_diff": r,
            }
            for epoch, per_seed in by_epoch.items()
            for seed, r in enumerate(per_seed)
        ],
        dataset,
    )


def architectures(global_by_model: dict[str, float], fc_label_of: dict[str, str]) -> pd.DataFrame:
    """Scores of models on dataset d, seeds 0 and 1 at epoch 4: the global combined r_x = r_xε =
    r_ε of ``global_by_model[model]``, conv1 fragile on all three, fc labelled ``fc_label_of[model]``."""
    frames = []
    for model, r in global_by_model.items():
        rows = []
        for seed in range(2):
            run = {"seed": seed, "epoch": 4, "filter": "combined"}
            rows.append({**run, "layer": GLOBAL_LAYER, "score_clean": r, "score_adv": r, "score_diff": r})
            for layer, label in (("conv1", "fragile"), ("fc", fc_label_of[model])):
                rows.append({**run, "layer": layer, "label_clean": label, "label_adv": label, "label_diff": label})
        frames.append(frame(rows, "d", model))
    return pd.concat(frames, ignore_index=True)


def both_readings(differences: dict[tuple[int, str], float]) -> pd.DataFrame:
    """Scores: per (seed, layer), transferred r_xε − white-box r_xε = ``differences[(seed, layer)]``."""
    return frame(
        [
            {"seed": seed, "epoch": 2, "layer": layer, "filter": "combined", "score_adv": 0.1, "score_adv_whitebox": 0.1 - d}
            for (seed, layer), d in differences.items()
        ]
    )


# ------------------------------------------------------------ triage


def triage(curves: dict[tuple[int, str, str], list[float]], base: float = 0.9, init: str = "fit") -> pd.DataFrame:
    """Triage: ``curves[(seed, block, scheme)]``, the clean accuracy at triage epochs 0, 1, … (checkpoint 4)
    from the initialisation ``init``; CKA 0.5 throughout."""
    return frame(
        [
            {
                "seed": seed,
                "epoch": 4,
                "block": block,
                "init": init,
                "scheme": scheme,
                "triage_epoch": triage_epoch,
                "acc_clean": acc,
                "acc_adv": acc / 2,
                "cka": 0.5,
                "base_acc_clean": base,
                "base_acc_adv": base / 2,
            }
            for (seed, block, scheme), accs in curves.items()
            for triage_epoch, acc in enumerate(accs)
        ]
    )


def schemes(**curves: list[float]) -> dict[tuple[int, str, str], list[float]]:
    """The same curve per scheme (``local=[…]``) for seeds 0, 1 and blocks b1, b2."""
    return {(seed, block, scheme): accs for seed in range(2) for block in ("b1", "b2") for scheme, accs in curves.items()}


# ------------------------------------------------------------ semirobustness


def semirobust(splits: dict[tuple[int, int], tuple[float, list]], robust=0.5, normal=0.2, delta=0.05) -> pd.DataFrame:
    """Semirobust: ``splits[(seed, k)]`` = (F_sr's adversarial accuracy, f_b's after each fine-tuning
    epoch — one list, or one list per trial), beside the normal and robust networks' (checkpoint 4),
    each trial's rows with its best accuracy and epochs to converge at Acc* − ``delta``."""
    rows, target = [], robust - delta
    for (seed, k), (start, tuned) in splits.items():
        for trial, curve in enumerate(tuned if tuned and isinstance(tuned[0], list) else [tuned]):
            run = {"seed": seed, "epoch": 4, "split_k": k, "trial": trial, "target_acc_adv": target}
            run |= {"best_acc_adv": max(curve, default=float("nan")), "epochs_to_converge": epochs_to_converge(curve, target)}
            rows += [
                {**run, "network": "normal", "finetune_epoch": 0, "acc_adv": normal},
                {**run, "network": "robust", "finetune_epoch": 0, "acc_adv": robust},
                {**run, "network": "semirobust", "finetune_epoch": 0, "acc_adv": start},
            ]
            rows += [{**run, "network": "finetuned", "finetune_epoch": e, "acc_adv": acc} for e, acc in enumerate(curve, 1)]
    return frame(rows)


def dependency(mis: dict[tuple[int, str], list[float]]) -> pd.DataFrame:
    """Dependency: ``mis[(seed, network)]``, ρ (mutual information, bits) of consecutive pairs at positions 0, 1, … (split 1)."""
    return frame(
        [
            {"seed": seed, "epoch": 4, "split_k": 1, "network": network, "position": p, "mi": rho}
            for (seed, network), values in mis.items()
            for p, rho in enumerate(values)
        ]
    )


def split_scores(gains: list[float], fb_scores: list[float]) -> pd.DataFrame:
    """Semirobust scores: one split per seed ``i`` with gain ``gains[i]`` and f_b's mean r_xε ``fb_scores[i]``."""
    rows = [
        {
            "seed": seed,
            "epoch": 4,
            "split_k": 1,
            "first_fb_layer": "fc",
            "acc_sr_gain": gain,
            "score_adv_fa": 0.0,
            "score_diff_fa": 0.0,
            "score_adv_fb": score,
            "score_diff_fb": score,
            "n_fa": 2,
            "n_fb": 1,
        }
        for seed, (gain, score) in enumerate(zip(gains, fb_scores))
    ]
    return frame(rows).reindex(columns=SPLIT_SCORES_COLUMNS)


# ------------------------------------------------------------ the cases

RISING = [0.01 * (i + 1) for i in SEEDS]  # six distinct positive per-seed differences: p = 2 / 2^6
FALLING = [-d for d in RISING]
ZEROS = [0.0 for _ in SEEDS]
UNSURE = [0.05, 0.04, -0.01, 0.03, -0.02, 0.06]  # mean > 0, but negative ranks sum to 3: p = 10 / 64
SPREAD_OUT, CONVERGED = [-0.1, -0.3, -0.5], [-0.29, -0.3, -0.31]


def case(name: str, holds: pd.DataFrame, fails: pd.DataFrame, options: dict = OPTIONS) -> ClaimCase:
    return ClaimCase({name: holds}, {name: fails}, options)


CASES: dict[str, ClaimCase] = {
    "first_conv_fragile": case("scores", layer_labels("conv1"), layer_labels("conv1", robust_at={(1, 4)})),
    "last_linear_fragile": case("scores", layer_labels("fc"), layer_labels("fc", robust_at={(0, 2)})),
    # 2 × chance = 0.2: 0.5 stays above it, 0.15 does not
    "batchnorm_rescue": case("sweep", full_removal(0.5), full_removal(0.15)),
    "selective_beats_regular_adv": case("retrain", retrain(ZEROS, RISING), retrain(ZEROS, FALLING)),
    "selective_beats_regular_clean": case("retrain", retrain(RISING, ZEROS), retrain(UNSURE, ZEROS)),
    "global_scores_converge": case(
        "scores", global_scores({2: SPREAD_OUT, 4: CONVERGED}), global_scores({2: CONVERGED, 4: SPREAD_OUT})
    ),
    "transfer_inflates_adversarial_score": case(
        "scores",
        both_readings({(0, "conv1"): 0.3, (0, "fc"): 0.2, (1, "conv1"): 0.1, (1, "fc"): 0.15}),
        both_readings({(0, "conv1"): 0.3, (0, "fc"): -0.2, (1, "conv1"): 0.1, (1, "fc"): -0.25}),
    ),
    # mean global scores −0.3 on both datasets, or −0.3 and −0.2 (apart by 0.1 > τ = 0.02)
    "global_scores_similar_across_datasets": case(
        "scores",
        pd.concat([global_scores({2: SPREAD_OUT}, "d"), global_scores({2: CONVERGED}, "e")]),
        pd.concat([global_scores({2: SPREAD_OUT}, "d"), global_scores({2: [-0.1, -0.2, -0.3]}, "e")]),
    ),
    # global scores −0.30 and −0.31 (within τ = 0.02), fc fragile in both; or fc robust in the second model
    "scores_invariant_across_architectures": ClaimCase(
        {"scores": architectures({"m": -0.30, "n": -0.31}, {"m": "fragile", "n": "fragile"})},
        {"scores": architectures({"m": -0.30, "n": -0.31}, {"m": "fragile", "n": "robust"})},
        {**OPTIONS, "roles": {"m": ROLES, "n": ROLES}},
    ),
    # the final local accuracy of b1 and b2: 0.86 and 0.84 (range 0.02 ≤ 0.05), or 0.86 and 0.70
    "triage_block_independent": case(
        "triage",
        triage({**schemes(local=[0.1, 0.86]), **{(s, "b2", "local"): [0.1, 0.84] for s in range(2)}}),
        triage({**schemes(local=[0.1, 0.86]), **{(s, "b2", "local"): [0.1, 0.70] for s in range(2)}}),
    ),
    # base 0.9, tolerance 0.01: global fine-tuning reaches 0.89 everywhere, or nowhere (epoch 0 at the base never counts)
    "triage_finetune_recovers": case(
        "triage", triage(schemes(**{"global": [0.1, 0.8, 0.895]})), triage(schemes(**{"global": [0.9, 0.5, 0.6]}))
    ),
    # both recover, distil at epoch 1 and global at 2; global exceeds the base (0.95 > 0.91), distil stays under the
    # cap; or distil recovers later than global
    "triage_distillation_faster_capped": case(
        "triage",
        triage(schemes(**{"global": [0.1, 0.8, 0.95], "distil": [0.1, 0.895, 0.9]})),
        triage(schemes(**{"global": [0.1, 0.895, 0.95], "distil": [0.1, 0.8, 0.9]})),
    ),
    # normal 0.2: F_sr above it at every seed, or below
    "semirobust_promotes_robustness": case(
        "semirobust",
        semirobust({(seed, 1): (0.2 + d, []) for seed, d in enumerate(RISING)}),
        semirobust({(seed, 1): (0.2 + d, []) for seed, d in enumerate(FALLING)}),
    ),
    # Acc* − δ = 0.45: F_sr starts at 0.3 and fine-tuning reaches 0.46 in both trials, or in one of three (1/3 ≤ 0.5)
    "semirobust_finetune_recovers": case(
        "semirobust",
        semirobust({(seed, 1): (0.3, [[0.4, 0.46], [0.46]]) for seed in range(2)}),
        semirobust({(seed, 1): (0.3, [[0.35, 0.40], [0.46], [0.3, 0.44]]) for seed in range(2)}),
    ),
    # ρ (bits) falls toward the output, as in the paper's supplement (8.5, 7.9, 6.3, 2.5), or rises
    "dependency_falls_toward_output": case(
        "dependency",
        dependency({(seed, net): [8.5, 7.9, 6.3, 2.5] for seed in range(2) for net in ("robust", "finetuned")}),
        dependency({(seed, net): [2.5, 6.3, 7.9, 8.5] for seed in range(2) for net in ("robust", "finetuned")}),
    ),
    "semirobust_follows_scores": case(
        "semirobust_scores",
        split_scores([0.0, 0.1, 0.2, 0.3], [-0.2, -0.1, 0.0, 0.1]),
        split_scores([0.0, 0.1, 0.2, 0.3], [0.1, 0.0, -0.1, -0.2]),
    ),
}
