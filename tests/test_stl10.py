"""STL-10 on a tiny copy in the real binary layout: reader, splits, loaders, errors."""
import numpy as np
import pytest
import torch
import torchvision

from course_utils.data import DatasetNotFoundError, load_autoencoder_data, stl10
from course_utils.data.stl10 import (BASE_FOLDER, CLASSES, load_stl10, read_stl10_images, read_stl10_labels,
                                     unlabeled_subset_indices, write_stl10_files)

SIZES = {"unlabeled": 20, "train": 10, "test": 10}


@pytest.fixture(scope="module")
def tiny_stl(tmp_path_factory):
    """20 unlabeled, 10 train and 10 test images with labels 1..10 as STL-10 stores them."""
    root = tmp_path_factory.mktemp("stl10")
    rng = np.random.default_rng(0)
    images = {split: rng.integers(0, 256, (n, 3, 96, 96), dtype=np.uint8) for split, n in SIZES.items()}
    # Mark each image so that orientation mistakes show: a bright column on the left, a dark row at the top.
    for array in images.values():
        array[:, :, :, 0] = 255
        array[:, :, 0, :] = 0
    labels = {"train": np.arange(10), "test": np.arange(10)[::-1].copy()}
    write_stl10_files(root, images, labels)
    return root, images, labels


class _TorchvisionSTL10(torchvision.datasets.STL10):
    """torchvision's own loader, minus the md5 check that only the real 2.6 GB files pass."""

    def _check_integrity(self):
        return True


@pytest.mark.parametrize("split", ["train", "test", "unlabeled"])
def test_reader_agrees_with_torchvision(tiny_stl, split):
    root, images, labels = tiny_stl
    reference = _TorchvisionSTL10(str(root), split=split)
    ours = read_stl10_images(root / BASE_FOLDER / stl10.FILES[split][0])
    assert ours.dtype == torch.uint8 and ours.shape == (SIZES[split], 3, 96, 96)
    assert np.array_equal(ours.numpy(), reference.data)
    assert np.array_equal(ours.numpy(), images[split])  # and both are the images as written
    if split != "unlabeled":
        assert read_stl10_labels(root / BASE_FOLDER / stl10.FILES[split][1]).tolist() == list(reference.labels)
    # torchvision's PIL image and ours show the same picture.
    assert np.array_equal(np.asarray(reference[3][0]), ours[3].permute(1, 2, 0).numpy())


def test_reader_reads_only_the_requested_rows(tiny_stl):
    root, images, _ = tiny_stl
    rows = read_stl10_images(root / BASE_FOLDER / "unlabeled_X.bin", indices=[2, 7, 19])
    assert np.array_equal(rows.numpy(), images["unlabeled"][[2, 7, 19]])
    with pytest.raises(IndexError, match="holds 20 images"):
        read_stl10_images(root / BASE_FOLDER / "unlabeled_X.bin", indices=[20])


def test_unlabeled_subset_is_seeded_sorted_and_distinct():
    a, b = unlabeled_subset_indices(100_000, 10_000, seed=0), unlabeled_subset_indices(100_000, 10_000, seed=0)
    assert np.array_equal(a, b) and len(np.unique(a)) == 10_000 and np.all(np.diff(a) > 0)
    assert not np.array_equal(a, unlabeled_subset_indices(100_000, 10_000, seed=1))
    assert len(unlabeled_subset_indices(20, 10_000)) == 20


def test_course_splits_and_loaders(tiny_stl):
    root, images, labels = tiny_stl
    splits = load_stl10(root, download=False, unlabeled_size=8, seed=0)
    rows = unlabeled_subset_indices(20, 8, seed=0)
    assert np.array_equal(splits["unlabeled"].images.numpy(), images["unlabeled"][rows])
    assert splits["unlabeled"].labels is None
    assert splits["train"].labels.tolist() == list(range(10)) and splits["test"].labels.tolist() == list(range(10))[::-1]
    assert splits["train"].classes == CLASSES

    data = load_autoencoder_data("stl10", root=root, download=False)
    assert data.name == "stl10" and len(data.unlabeled) == 20 and data.classes == CLASSES
    loaders = data.loaders(batch_size=4, seed=0)
    x, y = next(iter(loaders["unlabeled"]))
    assert x.shape == (4, 3, 64, 64) and x.dtype == torch.float32 and y.tolist() == [-1] * 4
    x, y = next(iter(loaders["test"]))
    # CenterCrop(64) of 96: rows and columns 16..79, pixels scaled to [0, 1], no normalisation.
    assert torch.equal(x, torch.from_numpy(images["test"][:4, :, 16:80, 16:80]).float() / 255)
    assert y.tolist() == [9, 8, 7, 6]
    assert len(loaders["train"]) == 3 and loaders["train"].shuffle and not loaders["test"].shuffle


def test_missing_files_give_a_clear_error(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_autoencoder_data("stl10", root=tmp_path, download=False)
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    for text in ("stl10_binary/train_X.bin", "stl10_binary/unlabeled_X.bin", "stl10_binary.tar.gz", "2.6 GB",
                 "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz", str(tmp_path), "COURSE_MODE",
                 "quick"):
        assert text in message, f"expected {text!r} in the error message:\n{message}"


def test_failed_download_is_explained(tmp_path, monkeypatch):
    def offline(root=None):
        raise OSError("[Errno -2] Name or service not known")

    monkeypatch.setattr(stl10, "download_stl10", offline)  # stands in for the network, which tests never use
    with pytest.raises(DatasetNotFoundError, match="automatic download failed: OSError"):
        load_autoencoder_data("stl10", root=tmp_path, download=True)


def test_full_mode_picks_stl10(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="STL-10 is not in"):
        load_autoencoder_data(mode="full", root=tmp_path, download=False)


def test_partial_and_damaged_files(tiny_stl, tmp_path):
    root, images, labels = tiny_stl
    write_stl10_files(tmp_path, {"train": images["train"]}, {"train": labels["train"]})
    with pytest.raises(DatasetNotFoundError) as info:
        load_stl10(tmp_path, download=False)
    assert "missing stl10_binary/unlabeled_X.bin, stl10_binary/test_X.bin, stl10_binary/test_y.bin." in str(info.value)
    damaged = tmp_path / BASE_FOLDER / "train_X.bin"
    damaged.write_bytes(damaged.read_bytes()[:-5])
    with pytest.raises(DatasetNotFoundError, match="damaged"):
        read_stl10_images(damaged)
