"""Writers of small datasets in the real on-disk formats, for the loader tests."""

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
from PIL import Image


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    array = np.asarray(array, dtype=np.uint8)
    magic = 0x0800 | array.ndim
    raw = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as fh:
            fh.write(raw)
    else:
        path.write_bytes(raw)
    return path


def write_mnist(folder: Path, n_train=20, n_test=10, gz=False, seed=0):
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), gz)
        write_idx(folder / f"{split}-labels-idx1-ubyte", np.arange(n) % 10, gz)


def write_cifar10(data_dir: Path, per_batch=10, seed=0):
    rng = np.random.default_rng(seed)
    folder = data_dir / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        batch = {
            b"batch_label": name.encode(),
            b"labels": [i % 10 for i in range(per_batch)],
            b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            b"filenames": [b"x.png"] * per_batch,
        }
        with open(folder / name, "wb") as fh:
            pickle.dump(batch, fh)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": [b"c%d" % i for i in range(10)], b"num_cases_per_batch": per_batch}, fh)
    return folder


def write_tiny_imagenet(data_dir: Path, wnids=("n01443537", "n01629819"), per_class=3, size=64, seed=0):
    rng = np.random.default_rng(seed)
    root = data_dir / "tiny-imagenet-200"
    (root / "val" / "images").mkdir(parents=True, exist_ok=True)
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    lines = []
    for c, wnid in enumerate(wnids):
        folder = root / "train" / wnid / "images"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{wnid}_{i}.JPEG")
        name = f"val_{c}.JPEG"
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / "val" / "images" / name)
        lines.append(f"{name}\t{wnid}\t0\t0\t{size - 1}\t{size - 1}")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return root


def write_imagefolder(
    root: Path, classes=("cat", "dog"), per_class=(3, 2), size=(10, 12), mode="RGB", splits=("train", "test"), seed=0
) -> dict[str, np.ndarray]:
    """torchvision's ImageFolder layout, ``root/<split>/<class>/<i>.png``; returns each split's
    pixels (N×H×W×3 or N×H×W) in file order, for comparing with what a loader reads."""
    rng = np.random.default_rng(seed)
    written = {}
    for split in splits:
        arrays = []
        for name, count in zip(classes, per_class):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                shape = (size[0], size[1], 3) if mode == "RGB" else size
                array = rng.integers(0, 256, shape, dtype=np.uint8)
                Image.fromarray(array, mode).save(root / split / name / f"{i:03d}.png")
                arrays.append(array)
        written[split] = np.stack(arrays)
    return written


def corrupt_png(path: Path) -> Path:
    """Damage the compressed pixels of the PNG at ``path`` and leave its header whole: the file
    opens (its size reads fine) but cannot be decoded, as a file damaged in a copy."""
    raw = bytearray(path.read_bytes())
    start = raw.index(b"IDAT") + 10
    raw[start : start + 10] = bytes(10)
    path.write_bytes(bytes(raw))
    return path
