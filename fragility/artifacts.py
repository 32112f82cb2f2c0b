"""The files passed between stages, each with its save and its load side by side.

- the **checkpoint** (:class:`Checkpoint`): weights, optimizer state, epoch, RNG states and
  the specs that made it; :meth:`Checkpoint.resume` gives every retraining branch its own
  copy of that state; :meth:`Checkpoint.given` makes one from a user's weights file
  (:func:`read_weights`, :func:`check_weights`);
- the **test set** (:class:`TestSet`), loaded once per dataset and shared by every job;
- the **adversarial set** (:class:`AdversarialSet`) of one checkpoint, checked against the
  test set it was made from;
- the **ε table** (``epsilon.parquet``) and its scope rule (:func:`epsilon_search_epochs`,
  :func:`epsilon_for`).

Everything loads with ``torch.load(..., weights_only=True)``: no file can run code.
"""

from __future__ import annotations

import copy
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .io import save_torch, write_parquet

# torch and the modules that need it are imported where they are used: Snakemake imports this
# module while it plans a run, where torch may not be installed (fragility.structure).
if TYPE_CHECKING:
    import torch
    from torch import nn


CHECKPOINT_FORMAT = "fragility-checkpoint-1"
EPSILON_SCOPES = ("run", "per_checkpoint")


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, foreign or from another architecture."""


class ArtifactError(ValueError):
    """A stage file is missing, malformed or does not match the files it goes with."""


class WeightsError(ValueError):
    """A given weights file cannot be read or does not fit its architecture; names the file."""


@dataclass
class ModelSpec:
    """Everything :func:`fragility.models.build_model` needs to rebuild a network. ``name`` is
    the model's name in the workflow; ``architecture`` what builds it (None: ``name`` itself,
    a torchvision model)."""

    name: str
    num_classes: int
    in_channels: int
    image_size: int | None
    mean: list[float]
    std: list[float]
    stem: str = "plain"
    init: str = "kaiming_uniform"
    architecture: str | None = None

    @classmethod
    def for_dataset(cls, name: str, data, image_size=None, stem="plain", init="kaiming_uniform", architecture=None) -> ModelSpec:
        return cls(name, data.num_classes, data.in_channels, image_size, data.mean, data.std, stem, init, architecture)

    def build(self) -> nn.Module:
        from .models import build_model

        return build_model(
            self.architecture or self.name,
            self.num_classes,
            self.in_channels,
            self.image_size,
            self.mean,
            self.std,
            self.stem,
            self.init,
        )


@dataclass
class TrainConfig:
    """Adam training settings (paper §4.3)."""

    epochs: int
    checkpoint_every: int
    batch_size: int = 128
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0

    def optimizer(self, params) -> torch.optim.Adam:
        import torch

        return torch.optim.Adam(params, lr=self.lr, betas=tuple(self.betas), eps=self.eps, weight_decay=self.weight_decay)

    def checkpoint_epochs(self) -> list[int]:
        return checkpoint_schedule(self.epochs, self.checkpoint_every)


def checkpoint_schedule(epochs: int, every: int) -> list[int]:
    """The epochs after which a checkpoint is saved."""
    return list(range(every, epochs + 1, every))


def _known_fields(cls, values: dict) -> dict:
    """``values`` without keys ``cls`` no longer has (older checkpoints stored more)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in values.items() if k in names}


@dataclass
class Resumed:
    """A training state restored from a checkpoint: continue with ``train_one_epoch``."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    order: torch.Generator
    config: TrainConfig


@dataclass
class Checkpoint:
    """One saved training state; a plain dict of tensors and numbers on disk."""

    model_spec: ModelSpec
    train_config: TrainConfig
    model_state: dict
    optimizer_state: dict
    epoch: int
    seed: int
    rng_state: dict  # {"torch": global CPU RNG, "data_order": the shuffling generator}
    path: Path | None = None  # where it was read from, for error messages

    @classmethod
    def capture(
        cls, model, optimizer, epoch: int, seed: int, order: torch.Generator, spec: ModelSpec, config: TrainConfig
    ) -> Checkpoint:
        """The current state of a training run (tensors are copied)."""
        import torch

        return cls(
            spec,
            config,
            copy.deepcopy(model.state_dict()),
            copy.deepcopy(optimizer.state_dict()),
            epoch,
            seed,
            {"torch": torch.get_rng_state(), "data_order": order.get_state()},
        )

    def save(self, path: str | Path) -> None:
        state = {
            "format": CHECKPOINT_FORMAT,
            "model_spec": asdict(self.model_spec),
            "train_config": asdict(self.train_config),
            "model_state": self.model_state,
            "optimizer_state": self.optimizer_state,
            "epoch": self.epoch,
            "seed": self.seed,
            "rng_state": self.rng_state,
        }
        save_torch(state, path)

    @classmethod
    def given(cls, spec: ModelSpec, weights: str | Path, config: TrainConfig) -> Checkpoint:
        """Epoch 0 of a model analysed as given: the user's weights, no optimizer state (a
        retraining branch starts a fresh Adam with ``config``), RNG seeded with 0."""
        import torch

        from .models import backbone

        state = read_weights(weights)
        check_weights(spec, state, weights)
        model = spec.build()
        backbone(model).load_state_dict(state)
        rng = torch.Generator().manual_seed(0).get_state()
        return cls(spec, config, model.state_dict(), {}, 0, 0, {"torch": rng, "data_order": rng.clone()})

    @classmethod
    def read(cls, path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
        """The checkpoint at ``path``, loaded without ever unpickling code."""
        import torch

        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: checkpoint not found")
        try:
            state = torch.load(path, map_location=device, weights_only=True)
        except Exception as exc:
            raise CheckpointError(f"{path}: not a loadable fragility checkpoint ({_load_failure(exc)})") from exc
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path}: not a fragility checkpoint (no 'format: {CHECKPOINT_FORMAT}' entry)")
        return cls(
            ModelSpec(**_known_fields(ModelSpec, state["model_spec"])),
            TrainConfig(**_known_fields(TrainConfig, state["train_config"])),
            state["model_state"],
            state["optimizer_state"],
            state["epoch"],
            state["seed"],
            state["rng_state"],
            path,
        )

    def model(self, device: str | torch.device = "cpu") -> nn.Module:
        """The network in eval mode with the checkpoint's weights."""
        model = self.model_spec.build().to(device)
        try:
            model.load_state_dict(self.model_state)
        except RuntimeError as exc:
            detail = " ".join(str(exc).split())[:300]
            raise CheckpointError(f"{self.path}: weights do not fit architecture {self.model_spec.name} ({detail})") from exc
        return model.eval()

    def resume(self, frozen_layers=(), device: str | torch.device = "cpu") -> Resumed:
        """Model, Adam state, global RNG and data order as they were, with ``frozen_layers``
        frozen (no gradient, not in the optimizer, so Adam cannot move them).

        Every call works on its own copy of the optimizer state: ``Optimizer.load_state_dict``
        keeps tensors that already have the right dtype and device, so without the copy one
        branch's training would move the moments another branch starts from.
        """
        import torch

        from .models import freeze_layers

        model = self.model(device)
        full = self.train_config.optimizer(model.parameters())
        if self.optimizer_state:  # a given model's checkpoint has none: Adam starts fresh
            full.load_state_dict(copy.deepcopy(self.optimizer_state))
        freeze_layers(model, list(frozen_layers))
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = self.train_config.optimizer(trainable)
        for parameter in trainable:
            if parameter in full.state:
                optimizer.state[parameter] = full.state[parameter]
        torch.set_rng_state(self.rng_state["torch"].cpu())
        order = torch.Generator()
        order.set_state(self.rng_state["data_order"].cpu())
        return Resumed(model, optimizer, order, self.train_config)


WEIGHT_CONTAINERS = ("state_dict", "model_state_dict", "model")  # where training scripts commonly nest a state_dict


def _load_failure(exc: Exception) -> str:
    """Why ``torch.load(..., weights_only=True)`` failed, in one line. PyTorch's own message for
    a file holding Python objects suggests ``weights_only=False``, which would run code from the
    file: that advice is never passed on."""
    text = " ".join(str(exc).split())
    if "Weights only load failed" not in text:
        return f"{type(exc).__name__}: {text[:200]}"
    found = re.search(r"GLOBAL (\S+) was not an allowed global", text) or re.search(r"WeightsUnpickler error: ([^.]*)", text)
    what = f"the Python object {found.group(1)}" if found else "Python objects other than tensors"
    return f"it holds {what}, and loading that could run code from the file"


def _weights_error(path: Path, exc: Exception) -> WeightsError:
    reason = _load_failure(exc)
    if reason.startswith("it holds"):
        return WeightsError(
            f"{path}: not a loadable state_dict: {reason}; re-save the weights alone with "
            "torch.save(model.state_dict(), path), or as .safetensors."
        )
    return WeightsError(f"{path}: not a loadable state_dict ({reason})")


def _is_checkpoint(state) -> bool:
    """Whether ``state`` is a checkpoint this tool wrote (:meth:`Checkpoint.save`)."""
    return isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT and isinstance(state.get("model_state"), dict)


def _checkpoint_weights(state: dict, path: Path) -> dict[str, torch.Tensor]:
    """The network's weights in a checkpoint of this tool: its ``model_state`` without the
    normalisation around the network (the given model's ``mean``/``std``: :func:`checkpoint_normalisation`)."""
    spec = state.get("model_spec", {})
    if spec.get("stem", "plain") != "plain" or spec.get("image_size") is not None:
        raise WeightsError(
            f"{path}: a checkpoint of this tool whose network has stem {spec.get('stem')!r} and image_size "
            f"{spec.get('image_size')}; a given model is built with stem plain at its images' own size, so analyse "
            "this one in the run that trained it"
        )
    return {k.removeprefix("net."): v for k, v in state["model_state"].items() if k.startswith("net.")}


def checkpoint_normalisation(path: str | Path) -> tuple[list[float], list[float]] | None:
    """(mean, std) of the network of ``path`` when it is a checkpoint of this tool, else None."""
    import torch

    path = Path(path)
    if path.suffix == ".safetensors" or not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # not a checkpoint (read_weights says why, where it matters)
        return None
    if not _is_checkpoint(state):
        return None
    spec = state.get("model_spec", {})
    return list(spec["mean"]), list(spec["std"])


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The state_dict in ``path``: a ``.safetensors`` file, or a ``torch.save`` file loaded with
    ``weights_only=True`` (memory-mapped: checking keys and shapes reads no tensor data), also
    when nested under one of :data:`WEIGHT_CONTAINERS` or a checkpoint of this tool (its
    ``model_state``)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    try:
        if path.suffix == ".safetensors":
            try:
                from safetensors.torch import load_file
            except ImportError:
                raise WeightsError(
                    f"{path}: .safetensors weights need the safetensors package: pip install 'fragility[timm]' "
                    "(or pip install safetensors)"
                ) from None
            return load_file(path)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # files in torch's legacy (pre-zip) format cannot be memory-mapped
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise _weights_error(path, exc) from exc
    if _is_checkpoint(state):
        state = _checkpoint_weights(state, path)
    elif isinstance(state, dict):
        state = next((state[k] for k in WEIGHT_CONTAINERS if isinstance(state.get(k), dict)), state)
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: expected a state_dict (a dict of tensors, e.g. torch.save(model.state_dict(), path))")
    return state


def check_weights(spec: ModelSpec, state: dict[str, torch.Tensor], source: str | Path) -> None:
    """:class:`WeightsError` naming the first missing or unexpected key, or the first shape
    that differs, when ``state`` does not fit the network ``spec`` builds; a classifier whose
    output count differs from ``spec.num_classes`` is named as such. Costs no weights: the
    network is built on the meta device."""
    from .models import backbone, meta_model

    expected = backbone(meta_model(spec.architecture or spec.name, spec.stem, spec.num_classes, spec.in_channels)).state_dict()
    architecture = spec.architecture or spec.name
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        first = f"missing key {missing[0]!r}" if missing else f"unexpected key {unexpected[0]!r}"
        raise WeightsError(
            f"{source}: the weights do not fit {architecture}: {first} "
            f"({len(missing)} missing, {len(unexpected)} unexpected of {len(expected)} keys)"
        )
    last = [k for k in expected if k.endswith(".weight")][-1]
    for key, tensor in expected.items():
        if tuple(state[key].shape) == tuple(tensor.shape):
            continue
        if key in (last, last.removesuffix("weight") + "bias") and state[key].shape[0] != tensor.shape[0]:
            raise WeightsError(
                f"{source}: the weights' classifier {key} has {state[key].shape[0]} outputs, "
                f"but the dataset has {spec.num_classes} classes"
            )
        raise WeightsError(
            f"{source}: {key} has shape {tuple(state[key].shape)} in the weights, {architecture} expects {tuple(tensor.shape)}"
        )


def load_checkpoint(path: str | Path, device: str = "cpu") -> nn.Module:
    """The checkpoint's network in eval mode, normalisation inside, on ``device``."""
    from .models import resolve_device

    device = resolve_device(device)
    return Checkpoint.read(path, device).model(device)


@dataclass
class TestSet:
    """The test images (pixels in [0, 1]) and labels every attack and sweep job shares."""

    __test__ = False  # not a pytest test class

    x: torch.Tensor
    y: torch.Tensor
    num_classes: int

    def save(self, path: str | Path) -> None:
        save_torch({"x": self.x, "y": self.y, "num_classes": self.num_classes}, path)

    @classmethod
    def load(cls, path: str | Path) -> TestSet:
        saved = _load_dict(path, {"x", "y", "num_classes"})
        return cls(saved["x"], saved["y"], int(saved["num_classes"]))


@dataclass
class AdversarialSet:
    """One checkpoint's adversarial test set, made once with the unfiltered network."""

    x_adv: torch.Tensor
    y: torch.Tensor
    epsilon: float
    attack: str = "fgsm"

    def save(self, path: str | Path) -> None:
        save_torch({"x_adv": self.x_adv, "y": self.y, "epsilon": self.epsilon, "attack": self.attack}, path)

    @classmethod
    def load(cls, path: str | Path, testset: TestSet | None = None) -> AdversarialSet:
        """The set at ``path``; with ``testset``, checked to be made from those images' labels."""
        import torch

        saved = _load_dict(path, {"x_adv", "y", "epsilon"})
        adversarial = cls(saved["x_adv"], saved["y"], float(saved["epsilon"]), saved.get("attack", "fgsm"))
        if testset is not None and (adversarial.x_adv.shape != testset.x.shape or not torch.equal(adversarial.y, testset.y)):
            raise ArtifactError(f"{path}: made from another test set (labels or shapes differ); rerun the adversarial rule")
        return adversarial


def _load_dict(path: str | Path, required: set[str]) -> dict:
    import torch

    try:
        saved = torch.load(path, weights_only=True)
    except Exception as exc:
        raise ArtifactError(f"{path}: cannot be loaded ({_load_failure(exc)})") from exc
    if not isinstance(saved, dict) or not required <= set(saved):
        raise ArtifactError(f"{path}: expected a dict with {sorted(required)}")
    return saved


def epsilon_search_epochs(scope: str, epochs: list[int]) -> list[int]:
    """The checkpoints the ε search runs on: the last (scope ``run``) or every one."""
    if scope not in EPSILON_SCOPES:
        raise ValueError(f"unknown epsilon scope {scope!r}; choose from {EPSILON_SCOPES}")
    return list(epochs) if scope == "per_checkpoint" else list(epochs)[-1:]


def epsilon_for(table: pd.DataFrame, epoch: int) -> float:
    """The ε a checkpoint is attacked with: the run's (scope ``run``) or its own."""
    if table.empty:
        raise ArtifactError("the epsilon table is empty; rerun the epsilon rule")
    rows = table[table["epoch"] == epoch] if (table["scope"] == "per_checkpoint").all() else table
    if len(rows) != 1:
        raise ArtifactError(
            f"the epsilon table has {len(rows)} rows for epoch {epoch} (scope {table['scope'].iloc[0]}); rerun the epsilon rule"
        )
    return float(rows["epsilon"].iloc[0])


class StressMemo:
    """Finished per-unit tables of a stress job, keyed by the content of everything that
    makes them: checkpoint, test and adversarial files, the test's settings, the fragility
    code and the torch version. A job that runs several units writes each unit's tables
    here as they finish, so when Snakemake reruns that job (a unit was added to it, or it
    was killed) the units already done are read back instead of computed again. A table is a
    pure function of the key, so reuse never changes a result. An entry that cannot be read,
    or whose columns are not the table's, is a miss: it is reported, recomputed and
    replaced — the memo never fails a run. Delete the ``.memo`` folders to recompute."""

    def __init__(self, folder: str | Path, inputs: list[str | Path], settings: dict):
        import hashlib
        import json

        import torch

        digest = hashlib.blake2b(digest_size=16)
        for path in inputs:
            digest.update(Path(path).read_bytes())
        digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
        digest.update(torch.__version__.encode())
        for source in sorted(Path(__file__).parent.rglob("*.py")):
            digest.update(source.read_bytes())
        self.folder, self.key = Path(folder), digest.hexdigest()

    def path(self, unit: str, table: str) -> Path:
        return self.folder / f"{unit}.{table}.{self.key}.parquet"

    def load(self, unit: str, table: str, columns: list[str]) -> pd.DataFrame | None:
        """The memorised table, or None when there is none or it is damaged."""
        import logging

        path = self.path(unit, table)
        if not path.is_file():
            return None
        try:
            found = pd.read_parquet(path)
        except Exception as exc:  # garbage, truncated or empty file: any reader error is a miss
            reason = f"it cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''})"
        else:
            if list(found.columns) == list(columns):
                return found
            reason = f"its columns {list(found.columns)[:4]}… are not the {table} table's"
        logging.getLogger(__name__).warning("memo entry %s is ignored and recomputed: %s", path, reason)
        return None

    def save(self, unit: str, table: str, df: pd.DataFrame) -> None:
        write_parquet(df, self.path(unit, table))
