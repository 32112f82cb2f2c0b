"""The configuration reference, docs/configuration.md, generated from the config schema.

    python -m fragility.schema_docs            # the Markdown on stdout
    python -m fragility.schema_docs --write    # (re)writes docs/configuration.md

Every key of ``fragility/config.schema.yaml`` gets a section with its type, default, allowed
values and bounds and its description, read from the schema alone, so a key added there
appears here without touching this module. What the schema cannot say — why a default was
chosen, how a key interacts with the workflow — lives in :data:`NOTES` (one entry per
dotted key; ``tests/test_docs.py`` checks that every entry names a key of the schema) and in
the fixed sections :data:`INTRO`, :data:`PER_MODEL` and :data:`RERUNS`. The output is
deterministic (schema order, no dates). Only PyYAML and the standard library.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from .schema import SCHEMA_PATH, load_schema, resolve

OUTPUT = Path("docs") / "configuration.md"

INTRO = """\
# Configuration reference

<!-- Generated from fragility/config.schema.yaml by `python -m fragility.schema_docs --write`.
     Do not edit: change the schema (or the notes in fragility/schema_docs.py) and regenerate. -->

Every key the workflow reads, with its type, default and allowed values, generated from the
schema the config is validated against (`fragility/config.schema.yaml`, package data, so a
plain `pip install` validates too).

## Config files

- `config/config.yaml` is the default config (the top-level `config.yaml` is a symlink to it):
  `workflow/Snakefile` loads it, so a bare `snakemake --cores N` (or `make run`) runs it: the
  embedded digits data, ResNet-18, two seeds.
- `config/paper.yaml` (the paper's full setting, for GPUs or a cluster), `config/reproduce.yaml`
  (`make reproduce`: the paper's claims on real data, offline; [reproduction.md](reproduction.md))
  and `config/tiny.yaml` (the smallest complete run, used by the workflow tests) are overlays:
  `snakemake --configfile config/paper.yaml` merges them over `config/config.yaml`, mapping by
  mapping, so a key they leave out keeps the default config's value (which is why
  `config/reproduce.yaml` spells out `stem.squeezenet1_1`). In a folder with no
  `config/config.yaml` an overlay runs on its own: every key it leaves out — `default` of a
  per-model mapping included — takes the schema's default below.
- Single keys on the command line: `--config seeds=[0,1,2]`, nested ones as
  `--config sweep={steps: 5}` (numbers and booleans given as strings are read as such).
- A key given nowhere takes the default below. The config is validated before any job runs;
  a bad value fails with one line naming the key, e.g.
  `Error: config key 'sweep.steps': 0 is less than the minimum of 1`.
"""

PER_MODEL = """\
## Per-model mappings

Some keys are mappings from a model to a value: `default` (required) applies to every model
without a key of its own, and a further key names one model — as written in `models`
(`timm/resnet10t`), by its name in paths and tables (`timm_resnet10t`), or any torchvision
model name (so a config can keep settings for models a later run adds). Another key fails the
config check. The value each key takes is given with the key below. These keys are:
"""

RERUNS = """\
## What reruns what

Each rule's `params` hold exactly the config keys that can change its output, so Snakemake
(default rerun triggers) reruns only what a change can affect:

| key | reruns |
|---|---|
| `datasets`, `models`, `seeds` | only the new runs' jobs (and the tables and figures that gather them) |
| `data_dir` (not for digits), `max_test` | test set, training (its log has test accuracy), retraining, and everything downstream |
| `max_train`, `stem`, `image_size`, `init`, `train.*` | training and everything downstream |
| a given model's `weights` (file or path), `architecture`, `mean`, `std`, `dataset`; `train.lr`, `train.batch_size` | its `given_model` checkpoint and everything downstream (the checkpoint holds the retraining optimizer settings) |
| a dataset mapping's `imagefolder`, `npz`, `channels`, `image_size` | that dataset's test set, training and everything downstream (file contents are not tracked: `--forcerun testset`) |
| `attack.clamp`, `attack.method`, `attack.pgd.*` (the latter only with `method: pgd`) | ε search, adversarial sets, retraining, and everything downstream (sweeps through their adversarial set and, for the units with the white-box reading, directly) |
| `attack.regenerate`, `whitebox.layers` | the sweeps of the units whose white-box reading they switch on or off, and everything downstream |
| `epsilon.*` | ε search and everything downstream |
| `sweep.steps`, `sweep.filters` | every sweep |
| `sweep.layers` | adding a layer runs its sweep and its re-initialisation (one per checkpoint) and reruns the tables, retraining and figures that read them; removing one reruns those readers; reordering runs nothing |
| `sweep.layers_per_job` | which jobs make the stress-test tables, not what is in them (grouped and single-layer jobs write bit-identical tables: tested) |
| `kernels.layers` | adding a layer runs its kernel jobs (one per checkpoint) and the tables and figures that gather them |
| `scores.bootstrap`, `scores.bootstrap_seed` | the score table and what reads it (figures, agreement), never a sweep |
| `scores.integration`, `scores.tau` | score table, retraining (labels pick the frozen layers), figures |
| `removable.max_loss` | the pruning-sensitivity table and its figure |
| `retrain.*` | retraining, its summary and figure |
| `figures.dpi` | every figure; `figures.response_layer`, `figures.response_epoch`: the response figure only |
| `device`, `batch_size`, `sweep.method`, `sweep.margin_guard`, `sweep.cache_budget_mb` | nothing: execution settings, read by the scripts from the config, never from params. The three sweep methods give the same predictions (tested); CPU vs GPU or another batch size can move a float in the last place, so force a rerun (`--forcerun`) to get results from the new setting |
"""

# What the schema's one-line descriptions cannot hold, by dotted key (Markdown).
NOTES = {
    "datasets": """\
The built-in datasets other than digits read their real on-disk formats from `data_dir`.
Your own images:

- an **ImageFolder** is torchvision's layout: `DIR/test/<class>/*` (or `val/`) and,
  optionally, `DIR/train/<class>/*` (PNG/JPEG); classes are the folders in sorted order,
  pixels in [0, 1], RGB unless `channels: 1`; without `image_size` every image must have one
  size;
- an **`.npz`** holds `x_test, y_test` and optionally `x_train, y_train` (N×C×H×W, N×H×W×C or
  N×H×W; uint8, or float in [0, 1]; labels 0…K−1).

A dataset without a training split can only be used by given models (see `models`).
`max_train` and `max_test` subsets apply as to built-in datasets. The config check fails
before any job, with one line naming the file and the fix, on what it can read cheaply (from
headers, and from the arrays of an `.npz`): an ImageFolder without `test/`, with an empty
class folder, an empty file, one class only, images of more than one size (without
`image_size`) or a test class without a training folder; an `.npz` whose `x` and `y` lengths
differ, with NaN or infinite pixels, pixels outside uint8 or [0, 1], labels that are not
0…K−1, one class only, or a test label the training split never has; a truncated IDX file; a
CIFAR-10 folder without its batches. A class the test split lacks is a warning. These checks
are remembered per file (path, inode, size, times) in `$FRAGILITY_CACHE_DIR` (default
`~/.cache/fragility`). An image that cannot be decoded fails the job that loads it (the test
set, first) with one line naming the file. Snakemake sees the path, not the files: after changing images in place,
rerun with `--forcerun testset`.""",
    "models": """\
- **A string** is a model the workflow trains on every dataset with a training split: a
  torchvision name, or `timm/<name>` (`timm.create_model(name, pretrained=False,
  num_classes=K, in_chans=C)`; in paths, rule names and tables it is `timm_<name>`).
- **A mapping** is analysed as given and never trained. `architecture` is built with
  `num_classes=K` (K = the dataset's class count): a torchvision model's first conv takes the
  dataset's channels, a timm model gets `in_chans`, a factory (a callable in your own code,
  importable from where Snakemake runs, e.g. via `PYTHONPATH`) is used exactly as it returns
  it. The weights are loaded strictly: `torch.load(..., weights_only=True)` (a state_dict, also
  nested under `state_dict`, `model_state_dict` or `model`; a checkpoint of this tool gives its
  `model_state`, and its mean and std where the config gives none) or `.safetensors`; a file
  holding pickled Python objects is refused, naming the safe way to save it. `mean` and `std`
  go inside the model, as for trained models; attacks and filters work in pixel space.
- **Checked before any job.** The config check reads the weights' keys and shapes
  (memory-mapped) and runs the architecture on the meta device, so these fail with one line
  before anything runs: weights whose keys or shapes do not fit (`config key 'models.2':
  weights/leafnet.pt: the weights do not fit timm/convnext_atto: missing key 'head.fc.weight'
  (2 missing, 0 unexpected of 128 keys)`), a classifier whose output count differs from the
  dataset's classes, a network that does not take the dataset's image size, a factory that
  does not import.
- **What runs for a given model.** One run: seed 0, one checkpoint, epoch 0
  (`results/<dataset>/<name>/seed0/checkpoints/epoch000.pt`, made by the rule `given_model`;
  no `train` job), then the ε search, adversarial set, every stress test, scores, figures and
  claims. Selective retraining runs from the given weights when the dataset has a training
  split — both branches start a fresh Adam with `train.lr` and `train.batch_size` (the
  optimizer state the model was trained with is not known) for `retrain.epochs` (default
  `train.checkpoint_every`) — and is skipped otherwise (its claims rows say so).
  Re-initialisation needs the run's initial weights, which a given model does not have: its
  criticality table holds re-randomisation only (drawn from `init`). Claims that need several
  seeds or checkpoints (`global_scores_converge`) are `n/a` for one run.
- Which layers can be swept, and how networks that torch.fx cannot split are handled:
  [engine.md](engine.md#when-the-cut-cannot-be-trusted).""",
    "seeds": "Used by the models the workflow trains; a given model has one run (seed 0).",
    "data_dir": """\
Expected below it: `MNIST/raw/` and `FashionMNIST/raw/` (the four IDX files, gzipped or not,
as torchvision downloads them; Fashion-MNIST is also read from Debian's
`dataset-fashion-mnist` in `/usr/share/datasets/fashion-mnist/`), `cifar-10-batches-py/` (the
python pickles, read without ever executing code from them) and `tiny-imagenet-200/`
(`wnids.txt`, `train/<wnid>/images/*.JPEG`, `val/val_annotations.txt`; its labelled val split
is the test set).""",
    "max_train": """\
Subsets are stratified and always drawn with seed 0, so that every run is tested on the same
images. Digits' train/test split is fixed (stratified, 80/20, seed 0).""",
    "max_test": "Stratified and drawn with seed 0, like `max_train`: every run of a dataset is tested on the same images.",
    "image_size": "Inputs are resized inside the model only when asked.",
    "stem": """\
`plain` is torchvision's stem (the authors' choice); `cifar` (3×3 stride-1 first conv, no
first max-pool) keeps small inputs large. SqueezeNet 1.1's plain stem cannot take 8×8 inputs,
so the default config gives `squeezenet1_1` the `cifar` stem.""",
    "init": "`torchvision` keeps the architecture's own initialisation (a replaced first conv then keeps PyTorch's Conv2d default).",
    "device": "An execution setting: changing it reruns nothing (see [What reruns what](#what-reruns-what)).",
    "batch_size": "An execution setting: changing it reruns nothing (see [What reruns what](#what-reruns-what)).",
    "train.checkpoint_every": "Checkpoints are saved at epochs k, 2k, …, up to `train.epochs`; there is no epoch-0 checkpoint.",
    "attack.method": """\
The ε search, the adversarial sets, regenerated sweeps and the retraining evaluation all use
the configured attack; every table says which (`attack` column: `fgsm` or `pgd-<steps>`), and
so do the figure titles. A PGD ε search attacks afresh for every ε it tries (FGSM's gradient
sign is computed once), so it costs about `attack.pgd.steps` times an FGSM search. The
attacks in full: [method.md](method.md#stress-from-outside-the-attack-and-its-ε).""",
    "epsilon": """\
The log grid is walked upwards to the first ε whose ratio falls to the target, then bisection
refines that bracket. If nothing brackets the target, the closest ε tried (the largest on
ties) is used and `reached = false` is recorded. Def. 8 is checked at the ε used.""",
    "sweep.layers": "`all` is every Conv2d/Linear layer in module order plus `__global__` (all of them filtered at once).",
    "sweep.layers_per_job": """\
It sets the jobs of every stress test (synaptic filters, kernel dropout, re-initialisation).
A job loads the checkpoint, test set and adversarial set once for all its layers: with
`auto` a local run pays the start-up (~5 s of imports and loading,
[engine.md](engine.md#stress-jobs)) once per checkpoint, not per layer; the SLURM profile
sets 1, so the analysis fans out over the cluster. A multi-layer job writes each layer's
tables as it finishes and keeps a copy keyed by the content of its inputs and settings
(`.memo/` beside the tables); when Snakemake reruns that job — a layer was added, or the job
was killed — finished layers are read back, not computed again.""",
    "sweep.method": """\
All three give the same predictions, tested image by image on every variant of every layer of
ResNet-18, SqueezeNet 1.1 and ShuffleNet V2. How each works and what it gains:
[engine.md](engine.md).""",
    "sweep.margin_guard": """\
BatchNorm folding moves logits by about 3e-6 of their scale (measured), so with the default
1e-3 only true near-ties pay for the exact graph; `0` leaves only exact ties to it
([engine.md](engine.md#the-fused-downstream-graph)).""",
    "sweep.cache_budget_mb": "The test set is processed in chunks sized to fit this bound.",
    "kernels.layers": """\
A kernel's fragility is judged against the mean over that layer's single-kernel removals,
clean and adversarial separately; targeting is reported for both groupings
([method.md](method.md#kernel-node-dropout-and-adversarial-targeting)). The kernel ×
checkpoint figure is per seed: kernel k of one seed has nothing to do with kernel k of another.""",
    "scores.bootstrap": """\
Computed in the score stage from the per-image correctness bits each sweep table keeps, so
changing it (or `scores.bootstrap_seed`) reruns only the score table and what reads it
([method.md](method.md#how-sure-a-score-is-the-bootstrap-over-test-images)).""",
    "triage.inits": """\
Every scheme runs from each initialisation, so each doubles a triage job's trainings and
evaluations; `fit` adds one forward pass of `triage.fit_images` training images and a float64
least-squares solve per block (its (C_in·9)² normal equations: under a second for ResNet-18).
The default config runs `[fit]` to keep the default run short
([method.md](method.md#structural-compression-deep-net-triage)); `make reproduce` runs both.""",
    "retrain.epochs": """\
Each branch starts from its own copy of the checkpoint state: weights, Adam moments and step
counts, RNG, data order ([method.md](method.md#selective-retraining)).""",
    "retrain.label_score": "With the defaults, the layers whose difference score r_xε of the combined response is labelled fragile are frozen; `__global__` is never frozen.",
    "removable.max_loss": "An absolute loss of accuracy: 0.01 allows 93 % → 92 %.",
    "figures": "Rebuild one figure from the cached tables: `snakemake --cores 1 results/figures/digits/resnet18/local_scores.png`.",
}


def value_text(value) -> str:
    """A value as YAML spells it in a config file, on one line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {value_text(v)}" for k, v in value.items()) + "}"
    return str(value)


def code(value) -> str:
    return f"`{value_text(value)}`"


TYPE_NAMES = {"array": "list", "object": "mapping"}  # JSON schema's names as a YAML config spells them


def _types(node: dict) -> list[str]:
    kind = node.get("type", [])
    return [kind] if isinstance(kind, str) else list(kind)


def _branches(node: dict) -> list[dict]:
    return node.get("oneOf", []) + node.get("anyOf", [])


BOUNDS = {  # schema keyword -> (the value types it constrains, its name here)
    "minimum": (("integer", "number"), "minimum"),
    "exclusiveMinimum": (("integer", "number"), "greater than"),
    "maximum": (("integer", "number"), "maximum"),
    "exclusiveMaximum": (("integer", "number"), "less than"),
    "minLength": (("string",), "minimum length"),
    "maxLength": (("string",), "maximum length"),
    "pattern": (("string",), "pattern"),
    "minItems": (("array",), "minimum items"),
    "maxItems": (("array",), "maximum items"),
}


def bounds(node: dict, kinds=None) -> list[tuple[str, str]]:
    """(name, value) of every bound the schema sets on a value (only those for ``kinds``)."""
    found = []
    for keyword, (applies, name) in BOUNDS.items():
        if keyword in node and (kinds is None or set(applies) & set(kinds)):
            found.append((name, code(node[keyword])))
    if node.get("uniqueItems") and (kinds is None or "array" in kinds):
        found.append(("items", "unique"))
    return found


def summary(node: dict, root: dict) -> str:
    """One line saying what values ``node`` admits, nested schemas included."""
    node = resolve(node, root)
    if "const" in node:
        return code(node["const"])
    if "enum" in node:
        return "one of " + ", ".join(code(v) for v in node["enum"])
    branches = _branches(node)
    if branches:
        return " or ".join(summary(b, root) for b in branches)
    parts = []
    for kind in _types(node) or ["any value"]:
        text = {"integer": "integer", "number": "number", "string": "string", "boolean": "boolean", "null": "null"}.get(
            kind, kind
        )
        constraints = [f"{name} {value}" for name, value in bounds(node, [kind])]
        if constraints:
            text += " (" + ", ".join(constraints) + ")"
        if kind == "array":
            text = "list" + text[len("array") :] + (f" of {summary(node['items'], root)}" if "items" in node else "")
        elif kind == "object":
            text = mapping_text(node, root)
        parts.append(text)
    return " or ".join(parts)


def mapping_text(node: dict, root: dict) -> str:
    properties = node.get("properties", {})
    extra = node.get("additionalProperties")
    if properties and not isinstance(extra, dict):
        return "mapping with keys " + ", ".join(f"`{k}`" for k in properties)
    if isinstance(extra, dict):
        required = node.get("required", [])
        named = ", ".join(f"`{k}`" for k in required)
        head = f"mapping: {named} (required) and any further key" if required else "mapping of any keys"
        return f"{head}, each {summary(extra, root)}"
    return "mapping"


def is_section(node: dict, root: dict) -> bool:
    """A nested mapping whose keys are documented one by one (``train``, ``attack.pgd``)."""
    node = resolve(node, root)
    return "object" in _types(node) and bool(node.get("properties"))


def is_per_model(node: dict, root: dict) -> bool:
    """A mapping from ``default`` and model names to one kind of value (``stem``, ``sweep.layers``)."""
    node = resolve(node, root)
    return isinstance(node.get("additionalProperties"), dict) and "default" in node.get("required", [])


def walk(schema: dict, root: dict | None = None, prefix: str = ""):
    """(dotted key, node) of every key in schema order, a section before its keys."""
    root = root or schema
    for name, node in resolve(schema, root).get("properties", {}).items():
        key = f"{prefix}{name}"
        yield key, node
        if is_section(node, root):
            yield from walk(node, root, key + ".")


def leaf_keys(schema: dict) -> list[str]:
    """Every dotted key that is not a section."""
    return [key for key, node in walk(schema) if not is_section(node, schema)]


def anchor(key: str) -> str:
    """GitHub's anchor of the heading `` `key` ``."""
    return re.sub(r"[^\w\- ]", "", key.lower()).replace(" ", "-")


def facts(node: dict, root: dict) -> list[str]:
    """The bullet lines of one key: type, allowed values, bounds, items, default."""
    node = resolve(node, root)
    lines = []
    if "const" in node or "enum" in node:
        values = [node["const"]] if "const" in node else node["enum"]
        kinds = sorted({type(v).__name__ for v in values})
        names = {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "NoneType": "null"}
        lines.append("- type: " + " or ".join(names.get(k, k) for k in kinds))
        lines.append("- allowed: " + ", ".join(code(v) for v in values))
    elif _branches(node):
        lines.append("- type: one of")
        lines += [f"  - {summary(b, root)}" for b in _branches(node)]
    elif is_per_model(node, root):
        extra = resolve(node["additionalProperties"], root)
        lines.append("- type: per-model mapping ([per-model mappings](#per-model-mappings))")
        lines.append(f"- each value: {summary(extra, root)}")
        if extra.get("description"):
            lines.append(f"  ({extra['description']})")
    else:
        kinds = _types(node)
        lines.append("- type: " + (" or ".join(TYPE_NAMES.get(k, k) for k in kinds) if kinds else "any"))
        if "array" in kinds and "items" in node:
            items = resolve(node["items"], root)
            if _branches(items):
                lines.append("- each item: one of")
                lines += [f"  - {branch_text(b, root)}" for b in _branches(items)]
            else:
                lines.append(f"- each item: {summary(items, root)}")
        lines += [f"- {name}: {value}" for name, value in bounds(node)]
    if "object" in _types(node) and node.get("required") and not is_per_model(node, root):
        lines.append("- required keys: " + ", ".join(f"`{k}`" for k in node["required"]))
    if "default" in node:
        default = node["default"]
        if default == {} and is_section(node, root):
            lines.append("- default: the defaults of its keys")
        else:
            lines.append(f"- default: {code(default)}")
    return lines


def branch_text(branch: dict, root: dict) -> str:
    branch = resolve(branch, root)
    if "object" in _types(branch) and branch.get("properties"):
        required = branch.get("required", [])
        return "a mapping with " + ", ".join(f"`{k}`" for k in required) + " (keys in the table below)"
    return summary(branch, root)


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def item_tables(node: dict, root: dict) -> list[str]:
    """A table of keys for every mapping form a list's items may take (``datasets``, ``models``)."""
    node = resolve(node, root)
    items = resolve(node.get("items", {}), root) if "array" in _types(node) else {}
    out = []
    for branch in [resolve(b, root) for b in _branches(items)] or ([items] if items.get("properties") else []):
        if not branch.get("properties"):
            continue
        required = branch.get("required", [])
        out += ["", "A mapping with " + ", ".join(f"`{k}`" for k in required) + ":", ""]
        out += ["| key | required | type | default | description |", "|---|---|---|---|---|"]
        for name, sub in branch["properties"].items():
            sub = resolve(sub, root)
            default = code(sub["default"]) if "default" in sub else ""
            row = [f"`{name}`", "yes" if name in required else "no", summary(sub, root), default, sub.get("description", "")]
            out.append("| " + " | ".join(cell(c) for c in row) + " |")
    return out


def key_section(key: str, node: dict, root: dict) -> list[str]:
    node = resolve(node, root)
    level = "##" if "." not in key else "###"
    out = [f"{level} `{key}`", ""]
    if node.get("description"):
        out += [node["description"], ""]
    items = resolve(node.get("items", {}), root) if "array" in _types(node) else {}
    if items.get("description"):
        out += [f"Each item: {items['description']}", ""]
    out += facts(node, root)
    out += item_tables(node, root)
    if is_section(node, root):
        keys = [k for k, _ in walk(node, root, key + ".") if k.count(".") == key.count(".") + 1]
        out += ["", "Keys: " + ", ".join(f"[`{k}`](#{anchor(k)})" for k in keys) + "."]
    if key in NOTES:
        out += ["", NOTES[key]]
    return out + [""]


def overview(schema: dict) -> list[str]:
    out = ["## All keys", "", "| key | type | default |", "|---|---|---|"]
    for key, node in walk(schema):
        if is_section(node, schema):
            continue
        node = resolve(node, schema)
        default = code(node["default"]) if "default" in node else ""
        out.append(f"| [`{key}`](#{anchor(key)}) | {cell(summary(node, schema))} | {cell(default)} |")
    return out + [""]


def render(schema: dict | None = None) -> str:
    """The whole reference as Markdown."""
    schema = schema if schema is not None else load_schema()
    out = [INTRO]
    out += overview(schema)
    per_model = [key for key, node in walk(schema) if is_per_model(node, schema)]
    if per_model:
        out += [PER_MODEL, ", ".join(f"[`{k}`](#{anchor(k)})" for k in per_model) + ".", ""]
    for key, node in walk(schema):
        out += key_section(key, node, schema)
    out += [RERUNS]
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fragility.schema_docs", description=__doc__.splitlines()[0])
    parser.add_argument("--schema", default=str(SCHEMA_PATH), help="the JSON schema (YAML) to document")
    parser.add_argument(
        "--write",
        nargs="?",
        const=str(OUTPUT),
        default=None,
        metavar="PATH",
        help=f"write the Markdown to PATH (default {OUTPUT})",
    )
    args = parser.parse_args(argv)
    text = render(load_schema(args.schema))
    if args.write is None:
        sys.stdout.write(text)
        return
    path = Path(args.write)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
