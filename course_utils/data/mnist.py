"""MNIST with the report's split (48,000 / 12,000 / 10,000), read from the idx files torchvision downloads.

The files are those of ``torchvision.datasets.MNIST`` (``MNIST/raw/*-idx?-ubyte.gz`` under the data folder), and
downloading goes through torchvision's mirrors and checksums. Reading is :func:`read_idx`: the idx format is a
big-endian header (two zero bytes, a type byte 0x08 for unsigned bytes, the number of dimensions, then one 4-byte
size per dimension) followed by the values; gzipped or not. Offline, the error names the files, their size, the
address and the folder to put them in.
"""
from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Sequence

import numpy as np
import torch

from ..paths import data_dir
from . import DatasetNotFoundError

URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"  # torchvision's first mirror
FILES = {  # split -> (images, labels), as torchvision names them
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
SIZE = "about 11 MB in all (9.9 MB for train-images-idx3-ubyte.gz)"
SPLITS = (48_000, 12_000, 10_000)  # train, validation (both from MNIST's 60,000), test (MNIST's 10,000)
SEED = 0


@dataclass
class DigitSplits:
    """Images float (N, C, H, W) in [0, 1] and labels (N,) for train, validation and test."""

    train: tuple
    val: tuple
    test: tuple
    source: str = ""

    def __repr__(self) -> str:
        shape = "x".join(str(s) for s in self.train[0].shape[1:])
        return (f"{self.source}: {len(self.train[0]):,} train, {len(self.val[0]):,} validation, "
                f"{len(self.test[0]):,} test images of {shape}")


def split_digits(images: torch.Tensor, labels: torch.Tensor, splits: Sequence[int], seed: int,
                 source: str, test=None) -> DigitSplits:
    """A seeded (train, val, test) split of ``images``; with ``test`` given, train and val come from ``images``."""
    n_train, n_val, n_test = (int(s) for s in splits)
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    pick = lambda idx: (images[idx].contiguous(), labels[idx].contiguous())  # noqa: E731
    train, val = pick(order[:n_train]), pick(order[n_train:n_train + n_val])
    if test is None:
        test = pick(order[n_train + n_val:n_train + n_val + n_test])
    else:
        test = (test[0][:n_test], test[1][:n_test])
    if len(train[0]) < n_train or len(val[0]) < n_val or len(test[0]) < n_test:
        raise ValueError(f"{source} holds too few images for the split {tuple(splits)}")
    return DigitSplits(train, val, test, source)


def mnist_root(root=None) -> Path:
    """The folder that holds (or will hold) ``MNIST/raw/``: ``data_dir()/"mnist"`` by default."""
    return Path(root).expanduser() if root is not None else data_dir() / "mnist"


def _raw(root: Path) -> Path:
    return root / "MNIST" / "raw"


def missing_files(root=None) -> list:
    raw = _raw(mnist_root(root))
    return [name for pair in FILES.values() for name in pair
            if not (raw / name).is_file() and not (raw / name[:-3]).is_file()]


def download_mnist(root=None) -> Path:
    """Download the four files with torchvision (its mirrors, md5 checked) into ``root/MNIST/raw``."""
    from torchvision.datasets import MNIST

    root = mnist_root(root)
    MNIST(str(root), train=True, download=True)
    return root


def ensure_mnist(root=None, download: bool = True) -> Path:
    root = mnist_root(root)
    missing, reason = missing_files(root), None
    if missing and download:
        try:
            download_mnist(root)
        except Exception as error:  # offline, blocked, bad checksum: explain
            reason = f"The automatic download failed: {type(error).__name__}: {error}"
        missing = missing_files(root)
    if missing:
        raise DatasetNotFoundError("\n".join([
            f"MNIST is not in {_raw(root)}: missing {', '.join(missing)} ({SIZE}).",
            f"Download them from {URL} (e.g. {URL}{missing[0]}) and put them in {_raw(root)},",
            "or call load_mnist(download=True) on a machine with internet access.",
            reason or ("Nothing was downloaded because download=False." if not download else ""),
            "To work without MNIST, use quick mode: os.environ['COURSE_MODE'] = 'quick' (scikit-learn's digits).",
        ]))
    return root


def read_idx(path) -> np.ndarray:
    """An idx file (gzipped when its name ends in .gz) as a numpy array of its stated shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DatasetNotFoundError(f"{path} is not an idx file of unsigned bytes (header {data[:4]!r}): delete it "
                                   f"and download it again from {URL}")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise DatasetNotFoundError(f"{path} is damaged: its header says {shape}, it holds {body.size} values; "
                                   f"download it again from {URL}")
    return body.reshape(shape)


def write_idx(path, array: np.ndarray) -> Path:
    """Write a uint8 array as an idx file (gzipped when the name ends in .gz): the inverse of :func:`read_idx`."""
    array = np.asarray(array, dtype=np.uint8)
    data = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    (gzip.open if path.suffix == ".gz" else open)(path, "wb").write(data)
    return path


def _read_split(root: Path, split: str) -> tuple:
    raw = _raw(root)
    found = [raw / n if (raw / n).is_file() else raw / n[:-3] for n in FILES[split]]
    images = torch.from_numpy(read_idx(found[0]).copy()).float().div(255)[:, None]  # (N, 1, 28, 28) in [0, 1]
    labels = torch.from_numpy(read_idx(found[1]).astype(np.int64))  # (N,)
    if len(images) != len(labels):
        raise DatasetNotFoundError(f"{found[0].name} has {len(images)} images, {found[1].name} {len(labels)} labels")
    return images, labels


def load_mnist(root=None, download: bool = True, splits: Sequence[int] = SPLITS, seed: int = SEED) -> DigitSplits:
    """MNIST as the report splits it: train and validation drawn (seeded) from the 60,000, test the 10,000."""
    root = ensure_mnist(root, download)
    images, labels = _read_split(root, "train")
    return split_digits(images, labels, splits, seed, source="MNIST", test=_read_split(root, "test"))


def mnist_files(root=None) -> Dict[str, Path]:
    raw = _raw(mnist_root(root))
    return {name: raw / name for pair in FILES.values() for name in pair}
