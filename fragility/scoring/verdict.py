"""The verdict table: every swept layer and block of one model, in network order, with every
stress test's verdict on it side by side — the one page that answers "which layers?".

Each verdict is one of the synaptic filters' words: ``fragile``, ``robust``, ``antifragile``;
``undetermined`` (with ``why``) where its precondition fails or the seeds split; a measure that
did not look at a unit has no row (drawn as n/a). The synaptic labels are the paper's (r_x,
r_xε, r_ε: METHOD §4); the words for accuracy drops, kernel targeting and the semirobust
split are this tool's, with one tolerance (``verdict.tolerance``):

- a drop (re-initialisation, re-randomisation, triage's local scheme on the fit init): mean
  drop over seeds > tolerance → fragile (the unit does work nothing else recovers), < −tolerance
  → antifragile (accuracy rises without it), else robust;
- kernel targeting: fragile when the attack moves the layer's fragile kernels most
  (``targeting.targets_fragile``, clean fragility) in most seeds, else robust;
- semirobust, per split k: the layers of f_a are robust when F_sr (f_a from F*) gains adversarial
  accuracy over the normal network by more than the tolerance, fragile when it does not; f_b's
  layers get the split's word ``n/a`` and count nowhere.

``fragile_by`` / ``measured_by``: per unit, how many measures (the semirobust splits left out)
call it fragile, of how many reached a verdict.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import GLOBAL_LAYER

VERDICT_COLUMNS = [
    "dataset",
    "model",
    "unit",
    "unit_kind",
    "position",
    "test",
    "measure",
    "epoch",
    "verdict",
    "value",
    "confidence",
    "n_seeds",
    "seeds_agreeing",
    "why",
    "fragile_by",
    "measured_by",
]
WORDS = ("fragile", "robust", "antifragile")
# (measure, label column, confidence column, score column) of the synaptic filters, combined filter
SYNAPTIC = (
    ("r_x", "label_clean", "label_clean_conf", "score_clean"),
    ("r_xε", "label_adv", "label_adv_conf", "score_adv"),
    ("r_ε", "label_diff", "label_diff_conf", "score_diff"),
    ("r_xε white-box", "label_adv_whitebox", "label_adv_whitebox_conf", "score_adv_whitebox"),
    ("r_ε white-box", "label_diff_whitebox", "label_diff_whitebox_conf", "score_diff_whitebox"),
)
PERTURBATIONS = (("reinit", "re-initialisation drop"), ("rerandom", "re-randomisation drop"))
SEMIROBUST_PREFIX = "semirobust k="


def last_checkpoint(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of each seed's last checkpoint."""
    last = table.groupby("seed")["epoch"].transform("max")
    return table[table["epoch"] == last]


def network_order(layers: list[str], blocks: list[str]) -> list[str]:
    """``layers`` (in module order) with each block placed right before its first layer
    (a block's layers are named ``<block>.<...>``); a block holding none of them goes last."""
    order = list(layers)
    for block in blocks:
        inside = [i for i, layer in enumerate(order) if layer.startswith(block + ".")]
        order.insert(inside[0] if inside else len(order), block)
    return order


def drop_word(drop: float, tolerance: float) -> str:
    if drop > tolerance:
        return "fragile"
    return "antifragile" if drop < -tolerance else "robust"


def _row(unit: str, test: str, measure: str, epoch: int, verdict: str, value: float, **extra) -> dict:
    return {"unit": unit, "test": test, "measure": measure, "epoch": epoch, "verdict": verdict, "value": value, **extra}


def _majority(words: pd.Series) -> tuple[str, int, str]:
    """The word most seeds give, how many give it, and why it is undetermined (a tie)."""
    counts = words.value_counts()
    if len(counts) > 1 and counts.iloc[0] == counts.iloc[1]:
        return "undetermined", int(counts.iloc[0]), f"seeds split ({', '.join(f'{w} {n}' for w, n in counts.items())})"
    return str(counts.index[0]), int(counts.iloc[0]), ""


def synaptic_verdicts(scores: pd.DataFrame) -> list[dict]:
    """The labels r_x, r_xε, r_ε (and their white-box twins where measured) of the combined
    response at each seed's last checkpoint: the majority over seeds, its mean score and the
    mean bootstrap confidence of the seeds that give it."""
    rows = []
    combined = last_checkpoint(scores[(scores["filter"] == "combined") & (scores["layer"] != GLOBAL_LAYER)])
    for unit, per_seed in combined.groupby("layer", sort=False):
        epoch = int(per_seed["epoch"].max())
        for measure, label, confidence, score in SYNAPTIC:
            if label not in per_seed or per_seed[label].isna().all():
                continue  # not measured here (the white-box reading of a unit without it)
            measured = per_seed[per_seed[label].notna()]
            if (measured[label] == "undetermined").all():
                why = "checkpoint not usable (trust.parquet)"
                rows.append(_row(unit, "synaptic", measure, epoch, "undetermined", np.nan, n_seeds=len(measured), why=why))
                continue
            measured = measured[measured[label] != "undetermined"]
            word, agreeing, why = _majority(measured[label])
            agree = measured[measured[label] == word]
            conf = agree[confidence].mean() if confidence in agree and len(agree) else np.nan
            rows.append(
                _row(
                    unit, "synaptic", measure, epoch, word, measured[score].mean(),
                    confidence=conf, n_seeds=len(measured), seeds_agreeing=agreeing, why=why,
                )
            )  # fmt: skip
    return rows


def drop_verdicts(drops: pd.DataFrame, test: str, measure: str, tolerance: float) -> list[dict]:
    """One drop measure (``drop_clean`` per seed at its last checkpoint, usable rows): the word
    of the mean drop over seeds, and how many seeds' own drops give the same word."""
    rows = []
    drops = last_checkpoint(drops)
    for unit, per_seed in drops.groupby("layer", sort=False):
        epoch = int(per_seed["epoch"].max())
        usable = per_seed[per_seed["usable"].astype(bool)] if "usable" in per_seed else per_seed
        if usable.empty:
            rows.append(
                _row(unit, test, measure, epoch, "undetermined", np.nan, n_seeds=len(per_seed), why="checkpoint not usable")
            )
            continue
        mean = float(usable["drop_clean"].mean())
        word = drop_word(mean, tolerance)
        agreeing = int(sum(drop_word(d, tolerance) == word for d in usable["drop_clean"]))
        rows.append(_row(unit, test, measure, epoch, word, mean, n_seeds=len(usable), seeds_agreeing=agreeing, why=""))
    return rows


def kernel_verdicts(targeting: pd.DataFrame) -> list[dict]:
    """Kernel targeting per layer (clean fragility): fragile where the attack moves the fragile
    kernels most in most seeds; value: the fraction of kernels that are fragile."""
    rows = []
    clean = last_checkpoint(targeting[targeting["fragility"] == "clean"])
    for unit, per_seed in clean.groupby("layer", sort=False):
        usable = per_seed[per_seed["usable"].astype(bool)] if "usable" in per_seed else per_seed
        epoch = int(per_seed["epoch"].max())
        if usable.empty:
            rows.append(_row(unit, "kernels", "kernel targeting", epoch, "undetermined", np.nan, why="checkpoint not usable"))
            continue
        word, agreeing, why = _majority(usable["targets_fragile"].map({True: "fragile", False: "robust"}))
        value = float((usable["n_fragile"] / usable["n_kernels"]).mean())
        rows.append(
            _row(unit, "kernels", "kernel targeting", epoch, word, value, n_seeds=len(usable), seeds_agreeing=agreeing, why=why)
        )
    return rows


def semirobust_verdicts(summary: pd.DataFrame, layers: list[str], blocks: list[str], tolerance: float) -> list[dict]:
    """Per split k, the part each unit falls in: f_a's units carry the split's word (robust when
    F_sr gains adversarial accuracy over the normal network by more than ``tolerance``, mean
    over usable seeds), f_b's units ``n/a``; a block across the cut is ``n/a`` too."""
    rows = []
    for k, per_seed in last_checkpoint(summary).groupby("split_k"):
        epoch = int(per_seed["epoch"].max())
        cut = layers.index(per_seed["first_fb_layer"].iloc[0]) if per_seed["first_fb_layer"].iloc[0] in layers else len(layers)
        usable = per_seed[per_seed["usable"].astype(bool)]
        gain = float(usable["acc_sr_gain"].mean()) if len(usable) else np.nan
        if usable.empty:
            word, why = "undetermined", "; ".join(sorted(set(per_seed["why"].fillna("")) - {""})) or "not usable"
        else:
            word, why = ("robust" if gain > tolerance else "fragile"), ""
        part = {layer: ("f_a" if i < cut else "f_b") for i, layer in enumerate(layers)}
        for block in blocks:
            inside = {part[layer] for layer in layers if layer.startswith(block + ".")}
            part[block] = inside.pop() if len(inside) == 1 else "across"
        for unit, side in part.items():
            verdict = word if side == "f_a" else "n/a"
            rows.append(
                _row(unit, "semirobust", f"{SEMIROBUST_PREFIX}{int(k)} ({side})", epoch, verdict, gain,
                     n_seeds=len(usable), why=why if side == "f_a" else "")
            )  # fmt: skip
    return rows


def verdict_table(tables: dict[str, pd.DataFrame], tolerance: float, model_layers: list[str] | None = None) -> pd.DataFrame:
    """Every stress test's verdict on every swept layer and block of one (dataset, model), from
    its collected tables (``scores`` is required; ``criticality``, ``triage_drops``,
    ``targeting`` and ``semirobust_scores`` add their measures where the run made them).
    ``model_layers``: every Conv2d/Linear of the model in module order (the network order and
    where each semirobust cut falls; default: the swept layers in the scores table's order)."""
    scores = tables["scores"]
    units = scores.loc[scores["layer"] != GLOBAL_LAYER, ["layer", "unit_kind"]].drop_duplicates("layer")
    swept = units.loc[units["unit_kind"] == "layer", "layer"].tolist()
    layers = list(model_layers) if model_layers is not None else swept
    blocks = units.loc[units["unit_kind"] == "block", "layer"].tolist()
    rows = synaptic_verdicts(scores)
    if "criticality" in tables:
        for perturbation, measure in PERTURBATIONS:
            chosen = tables["criticality"][tables["criticality"]["perturbation"] == perturbation]
            rows += drop_verdicts(chosen, "reinit", measure, tolerance)
    if "triage_drops" in tables:
        local = tables["triage_drops"][tables["triage_drops"]["compression"] == "triage_local"]
        init = "fit" if "init" not in local or (local["init"] == "fit").any() else "random"
        chosen = local[local["init"] == init] if "init" in local else local
        rows += drop_verdicts(chosen, "triage", f"triage criticality ({init})", tolerance)
    if "targeting" in tables:
        rows += kernel_verdicts(tables["targeting"])
    if "semirobust_scores" in tables:
        rows += semirobust_verdicts(tables["semirobust_scores"], layers, blocks, tolerance)
    order = [unit for unit in network_order(layers, blocks) if unit in set(swept) | set(blocks)]
    table = pd.DataFrame(rows)
    table = table[table["unit"].isin(order)].copy()
    table["dataset"], table["model"] = scores["dataset"].iloc[0], scores["model"].iloc[0]
    table["unit_kind"] = table["unit"].map(dict(zip(units["layer"], units["unit_kind"])))
    table["position"] = table["unit"].map({unit: i for i, unit in enumerate(order)})
    counted = table[~table["measure"].str.startswith(SEMIROBUST_PREFIX)]
    table["fragile_by"] = table["unit"].map(counted[counted["verdict"] == "fragile"].groupby("unit").size()).fillna(0)
    table["measured_by"] = table["unit"].map(counted[counted["verdict"].isin(WORDS)].groupby("unit").size()).fillna(0)
    for column in ("confidence", "n_seeds", "seeds_agreeing"):
        table[column] = table[column] if column in table else np.nan
    table = table.astype({"fragile_by": "int64", "measured_by": "int64", "position": "int64", "epoch": "int64"})
    table["why"] = table["why"].fillna("")
    return table.sort_values(["position"], kind="stable", ignore_index=True)[VERDICT_COLUMNS]
