"""Every figure of the tool, registered once: its drawing function (:mod:`fragility.plots`),
the collected tables it reads, its report caption and the ``figures:`` keys it uses.

The workflow's figure rules, the target lists, the report and the tests read
:data:`FIGURES`; adding a figure is one function in :mod:`fragility.plots` plus one entry
here (or, for a stress test of one's own, :func:`register_figure` from its module). Captions may name ``{dataset}`` and ``{model}``. No torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from . import plots

SCOPES = ("model", "dataset", "across_datasets")
# The report's sections in the order a reader wants them: what the run found, then each stress test.
REPORT_SECTIONS = (
    "Verdict",
    "Claims",
    "Synaptic filters",
    "Kernel dropout",
    "Rank agreement",
    "Triage",
    "Semirobustness",
    "Retraining",
    "Comparisons",
)


def report_category(section: str) -> str:
    """The report category of ``section``: numbered, so the report lists it in reading order."""
    return f"{REPORT_SECTIONS.index(section) + 1} {section}" if section in REPORT_SECTIONS else section


@dataclass(frozen=True)
class FigureSpec:
    """One figure: ``draw(tables, options)`` with ``tables`` the collected tables it reads
    (name → DataFrame, every seed and checkpoint of its scope) and ``options`` the
    ``figures:`` keys it uses. ``scope``: ``model`` — one per (dataset, model), drawn when
    every table it reads exists there —; ``dataset`` — every model of one dataset —;
    ``across_datasets`` — one model on every dataset. ``section``: where the report shows it
    (:data:`REPORT_SECTIONS`; another name makes a section of its own, after those)."""

    name: str
    draw: Callable[[dict[str, pd.DataFrame], dict], object]
    tables: tuple[str, ...]
    caption: str
    options: tuple[str, ...] = ()
    scope: str = "model"
    section: str = "Other"

    def __post_init__(self):
        if self.scope not in SCOPES:
            raise ValueError(f"figure {self.name}: unknown scope {self.scope!r}; choose from {SCOPES}")


FIGURES: dict[str, FigureSpec] = {
    spec.name: spec
    for spec in (
        FigureSpec(
            "verdict",
            lambda t, o: plots.verdict_page(t["verdict"]),
            ("verdict",),
            "Which units of {model} on {dataset} are fragile (verdict.parquet): every swept layer and block in network "
            "order (rows) against every stress test's verdict on it at each seed's last checkpoint (columns) — the "
            "synaptic filters' labels r_x, r_xε and r_ε of the combined response (paper Eq. 14–16; majority over seeds) "
            "and, where measured, their white-box twins; the clean accuracy lost to re-initialisation and "
            "re-randomisation (Zhang et al. 2019), kernel targeting (does the attack move the fragile kernels most), "
            "triage criticality (the local scheme on the fitted layer) and, per semirobust split k, the part the unit "
            "falls in (f_a judged by whether F_sr gains robustness; f_b n/a). Fr fragile, Ro robust, Af antifragile; "
            "beside each mark the bootstrap confidence of the label, or the seeds that agree; hatched ? cells are "
            "undetermined (an unusable checkpoint, F* not robust, seeds split: the table says why); a drop verdict "
            "uses verdict.tolerance. The last column: how many measures call the unit fragile, of those that reached "
            "a verdict.",
            section="Verdict",
        ),
        FigureSpec(
            "local_scores",
            lambda t, o: plots.local_score_heatmaps(t["scores"]),
            ("scores",),
            "Local scores of {model} on {dataset} (paper Fig. 10): clean score r_x, adversarial score r_xε and difference "
            "score r_ε of the combined filter response, per layer (rows) and checkpoint epoch (columns), mean over seeds. "
            "Marks: Fr fragile (< −τ), Ro robust, Af antifragile (> τ), with their bootstrap confidence. Negative = fragile. "
            "The second row, for the units and checkpoints that have it, reads r_xε and r_ε white-box: every filtered "
            "variant attacked itself instead of classifying the unfiltered network's adversarial set. Hatched cells and ? "
            "marks: a checkpoint flagged not usable (trust.parquet: no better than chance, or not stressed by the attack); "
            "cross-hatched blank cells: n/a, no score there.",
            section="Synaptic filters",
        ),
        FigureSpec(
            "block_scores",
            lambda t, o: plots.local_score_heatmaps(t["scores"], unit_kind="block"),
            ("scores",),
            "Block scores of {model} on {dataset} (METHOD §12): the synaptic filters applied to all Conv2d/Linear weights "
            "of a block (a residual block, Fire module, inverted residual) together, with one threshold range over them; "
            "clean score r_x, adversarial score r_xε and difference score r_ε of the combined response per block (rows) and "
            "checkpoint epoch (columns), mean over seeds, marks as in the local scores. Blocks are not layers: a block "
            "holds a residual connection that a layer's score cannot see.",
            section="Synaptic filters",
        ),
        FigureSpec(
            "whitebox",
            lambda t, o: plots.transfer_vs_whitebox(t["scores"]),
            ("scores",),
            "Transferred against white-box adversarial scores of {model} on {dataset}: per unit with the white-box reading "
            "(whitebox.layers) and checkpoint, r_xε and r_ε of the combined response from the paper's transferred "
            "adversarial set (x) and from attacking every filtered variant itself (y), mean over seeds with the bootstrap "
            "95 % intervals. Below the diagonal the transferred reading makes the unit look more robust than it is.",
            section="Synaptic filters",
        ),
        FigureSpec(
            "global_scores",
            lambda t, o: plots.global_scores(t["scores"]),
            ("scores",),
            "Global scores (all Conv2d/Linear weights filtered together) of {model} on {dataset} over training epochs "
            "(paper Fig. 9), per filter, mean ± std over seeds, the bootstrap 95 % interval shaded, ticks at the "
            "checkpoints; grey crosses mark checkpoints flagged not usable (trust.parquet).",
            section="Synaptic filters",
        ),
        FigureSpec(
            "landscape",
            lambda t, o: plots.learning_landscape(t["sweep"]),
            ("sweep",),
            "Learning landscape of {model} on {dataset} (paper Fig. 5, 7): combined scaled accuracy per unit over the "
            "normalised threshold (x) and the checkpoint epoch (y), clean, adversarial and their difference, one row of "
            "three panels per unit (long unit lists in several columns of rows). A landscape needs checkpoints: with "
            "one, the figure shows each unit's combined response at it instead — scaled clean and adversarial accuracy "
            "against the normalised threshold, the baseline φ̄ dashed, mean over seeds.",
            section="Synaptic filters",
        ),
        FigureSpec(
            "response",
            lambda t, o: plots.filter_response(t["sweep"], o["response_layer"], o["response_epoch"]),
            ("sweep",),
            "Filter responses of one layer of {model} on {dataset} at one checkpoint (paper Fig. 4, 8): scaled clean and "
            "adversarial accuracy per filter against the normalised threshold, with the baseline φ̄ and the shaded area "
            "whose signed size is the score.",
            options=("response_layer", "response_epoch"),
            section="Synaptic filters",
        ),
        FigureSpec(
            "retrain",
            lambda t, o: plots.retrain_comparison(t["retrain"], t["retrain_summary"]),
            ("retrain", "retrain_summary"),
            "Selective vs regular retraining of {model} on {dataset} (paper Fig. 12): clean and adversarial test accuracy "
            "after retraining from each checkpoint, fragile layers frozen in the selective branch (labels of the reading "
            "retrain.label_attack; a selective_<reading> branch shows the other reading's choice), mean ± std over seeds; "
            "below each checkpoint's bars, selective − regular with its Wilcoxon p. The title says how many layers each "
            "branch froze.",
            section="Retraining",
        ),
        FigureSpec(
            "compression",
            lambda t, o: plots.compression_curve(t["sweep"]),
            ("sweep",),
            "Accuracy of {model} on {dataset} against the fraction of weights removed (global analysis), one panel per "
            "filter, clean (solid) and adversarial (dashed) per checkpoint, points ordered by the fraction removed and "
            "averaged over seeds.",
            section="Synaptic filters",
        ),
        FigureSpec(
            "kernels",
            lambda t, o: plots.kernel_dropout(t["kernels"], t["targeting"]),
            ("kernels", "targeting"),
            'Kernel (node) dropout of {model} on {dataset} (the authors\' talk, "attacks on fragile neurons"): for the '
            "first seed at the last checkpoint, the clean and adversarial accuracy after removing each kernel (output "
            "channel) of the layer alone, against the mean over kernels (dashed) and the unfiltered accuracy (dotted). Red "
            "kernels are fragile: their removal leaves accuracy below the mean. The panel title says whether the attack "
            "targets the fragile kernels: d_fragile, the mean change of their output maps between clean and adversarial "
            "inputs, against d_nonfragile.",
            section="Kernel dropout",
        ),
        FigureSpec(
            "kernels_consistency",
            lambda t, o: plots.kernel_consistency(t["kernels"]),
            ("kernels",),
            "Kernel fragility of {model} on {dataset} over checkpoints, one panel per layer and seed (kernels of different "
            "seeds are different kernels): a dark cell marks a kernel whose removal leaves clean accuracy below the mean "
            'at that checkpoint; the bottom row marks the kernels fragile at every checkpoint ("consistently fragile").',
            section="Kernel dropout",
        ),
        FigureSpec(
            "agreement",
            lambda t, o: plots.rank_agreement(t["agreement"]),
            ("agreement",),
            "Rank agreement between the stress tests of {model} on {dataset}, per checkpoint, layers and (rows below) "
            "blocks apart: Kendall's τ_b between the unit orderings (least to most robust, ``__global__`` excluded) of the synaptic-filter scores r_x and r_xε "
            "(h1, h2, h3, combined), of re-initialisation and re-randomisation (−drop in clean and adversarial "
            "accuracy) and, for blocks, of triage (triage_local: −accuracy lost with the block compressed, local scheme, fit "
            "initialisation), "
            "averaged over seeds. +1: the two measures rank the layers alike; 0: unrelated; −1: reversed. Hatched cells: "
            "n/a, no τ — a measure that does not rank these units (triage for layers) or a ranking without spread.",
            section="Rank agreement",
        ),
        FigureSpec(
            "triage",
            lambda t, o: plots.triage_convergence(t["triage"]),
            ("triage",),
            "Deep net triage of {model} on {dataset} (METHOD §13): each block replaced by one Conv2d(3×3)–BatchNorm–ReLU, "
            "its convolution drawn at random (dashed lines) or fitted by least squares to the block's output (fit, solid), "
            "and retrained by each scheme (colours) — local (only the new layer), global (every parameter), local_global "
            "(local for the first half of the epochs, then global), distil (every parameter, the checkpoint network as "
            "teacher) —; clean (top) and adversarial (middle) accuracy and the linear CKA between the new layer's output "
            "and the block's output in the base network (bottom: how much of the block's representation one layer holds) "
            "against the triage epoch (0: right after compression), the attack made afresh against each compressed "
            "network, mean ± std over seeds and checkpoints; dashed black: the base network.",
            section="Triage",
        ),
        FigureSpec(
            "triage_criticality",
            lambda t, o: plots.triage_criticality(t["triage_drops"]),
            ("triage_drops",),
            "Block criticality of {model} on {dataset} by triage (METHOD §13): the clean and adversarial accuracy the "
            "network loses when the block is replaced by one layer and only that layer is retrained (local scheme, after "
            "its last epoch), one panel per initialisation of the layer (fit: least squares to the block's output; "
            "random: a fresh draw), mean ± std over seeds and checkpoints. A tall bar on the fit panel: the block does "
            "work one layer cannot.",
            section="Triage",
        ),
        FigureSpec(
            "semirobust",
            lambda t, o: plots.semirobust_accuracy(t["semirobust"]),
            ("semirobust",),
            "Subnetwork robustness of {model} on {dataset} (METHOD §14) under the protocol named in the title "
            "(`semirobust.protocol`: paper — the authors' values: F* by 120 epochs of PGD-10 at ε = 8/255 with SGD, "
            "10 fine-tuning trials of up to 10 epochs, δ = 1e-16 —, or budget — 3 epochs of FGSM with a random start at "
            "the run's ε, 3 trials of up to 2 epochs, δ = 0.05 —, each value settable on its own): per split k (f_b = "
            "the last k Conv2d/Linear layers), the adversarial accuracy of the normal network (Acc), the robust network "
            "F* (Acc*, adversarial training), the semirobust network F_sr (Acc_sr: f_a from F*, f_b from the "
            "checkpoint) and the best epoch of F_sr with f_b fine-tuned adversarially, f_a frozen, mean ± std over "
            "seeds, checkpoints and trials, with how many trials reached Acc* − δ and their mean epochs (top); the "
            "fine-tuning curves against Acc* − δ (bottom). Every accuracy under the evaluation attack made against the "
            "network measured. A checkpoint whose F* is not robust (exact one-sided McNemar test against the normal "
            "network at trust.alpha) is named in the title with the reason: it measures nothing.",
            section="Semirobustness",
        ),
        FigureSpec(
            "dependency",
            lambda t, o: plots.layer_dependency(t["dependency"]),
            ("dependency",),
            "Dependency between consecutive layers of {model} on {dataset} (METHOD §14), under the protocol named in "
            "the title: ρ, the mutual information (bits) between the outputs of each pair of consecutive Conv2d/Linear "
            "layers from the cut of split k to the output by the EDGE estimator (the authors' settings), per class and "
            "weighted by class frequency (top), and linear CKA (bottom), on adversarial test images made against each "
            "network (F*, F_sr, the first trial's best fine-tuned network); mean ± std over seeds and checkpoints. The "
            "paper's supplement finds ρ falling toward the output. Grey dashes: what EDGE reads on the same outputs with "
            "one layer's images shuffled within each class (independent outputs; `mi_null`) — its bias at this number "
            "of images per class, which can be most of ρ on a small test set.",
            section="Semirobustness",
        ),
        FigureSpec(
            "removable",
            lambda t, o: plots.removable(t["removable"]),
            ("removable",),
            "Pruning sensitivity of {model} on {dataset}: per layer and filter, the largest fraction of the layer's weights "
            "that one filter step removes while clean and adversarial accuracy lose at most removable.max_loss, mean over "
            "seeds at the last checkpoint. The table removable.parquet has it for every checkpoint, and for clean and "
            "adversarial accuracy separately.",
            section="Synaptic filters",
        ),
        FigureSpec(
            "compare_models",
            lambda t, o: plots.compare_global(t["scores"], hue="model"),
            ("scores",),
            "Global scores r_x, r_xε and r_ε over epochs of every model on {dataset} (paper Fig. 9 layout), mean over seeds.",
            scope="dataset",
            section="Comparisons",
        ),
        FigureSpec(
            "compare_datasets",
            lambda t, o: plots.compare_global(t["scores"], hue="dataset"),
            ("scores",),
            "Global scores r_x, r_xε and r_ε over epochs of {model} on every dataset (paper Fig. 9 layout), mean over seeds.",
            scope="across_datasets",
            section="Comparisons",
        ),
    )
}


def register_figure(spec: FigureSpec) -> FigureSpec:
    """Add ``spec`` to :data:`FIGURES` (a stress test of a user's own registers its figures so;
    a second figure of one name is an error)."""
    if FIGURES.get(spec.name, spec) is not spec:
        raise ValueError(f"figure {spec.name!r} is registered twice")
    FIGURES[spec.name] = spec
    return spec


def figure_names(scope: str = "model") -> list[str]:
    """The registered figures of one scope, in registry order."""
    return [name for name, spec in FIGURES.items() if spec.scope == scope]


def draw_figure(name: str, tables: dict[str, pd.DataFrame], options: dict):
    """The matplotlib Figure of registered figure ``name``."""
    return FIGURES[name].draw(tables, options)
