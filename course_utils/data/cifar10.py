"""CIFAR-10 (50,000 + 10,000 colour images of 32x32, 10 classes) from the python pickles of its archive.

The archive is the one ``torchvision.datasets.CIFAR10`` downloads (``cifar-10-python.tar.gz``, md5 checked); it
holds ``cifar-10-batches-py/`` with ``data_batch_1`` .. ``data_batch_5`` and ``test_batch``, each a pickled dict
whose ``"data"`` is a uint8 array (N, 3072), one image per row as three 32x32 channels (red, green, blue), and
``"labels"`` a list of classes. An archive already in the folder is extracted without a download.
"""
from __future__ import annotations

import pickle
import tarfile
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..paths import data_dir
from . import DatasetNotFoundError

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE, MD5, SIZE = "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a", "about 163 MB"
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def cifar10_root(root=None) -> Path:
    return Path(root).expanduser() if root is not None else data_dir() / "cifar10"


def missing_files(root=None) -> list:
    folder = cifar10_root(root) / FOLDER
    return [name for name in TRAIN_BATCHES + [TEST_BATCH] if not (folder / name).is_file()]


def ensure_cifar10(root=None, download: bool = True) -> Path:
    """The root holding ``cifar-10-batches-py/``: extracted from the archive in the folder, or downloaded."""
    root = cifar10_root(root)
    reason = None
    if missing_files(root) and (root / ARCHIVE).is_file():
        with tarfile.open(root / ARCHIVE, "r:gz") as tar:
            tar.extractall(root, filter="data")
    if missing_files(root) and download:
        try:
            from torchvision.datasets.utils import download_and_extract_archive

            download_and_extract_archive(URL, str(root), filename=ARCHIVE, md5=MD5)
        except Exception as error:  # offline, blocked, bad checksum: explain
            reason = f"The automatic download failed: {type(error).__name__}: {error}"
    missing = missing_files(root)
    if missing:
        raise DatasetNotFoundError("\n".join([
            f"CIFAR-10 is not in {root / FOLDER}: missing {', '.join(missing)}.",
            f"Download {ARCHIVE} ({SIZE}) from {URL} and put it in {root} (it is extracted there),",
            "or call load_cifar10(download=True) on a machine with internet access.",
            reason or ("Nothing was downloaded because download=False." if not download else ""),
            "To work without CIFAR-10, use quick mode: os.environ['COURSE_MODE'] = 'quick' (the kit's shapes).",
        ]))
    return root


def read_batch(path) -> tuple:
    """One pickled batch: images uint8 (N, 3, 32, 32) and labels (N,)."""
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="latin1")  # Python 2 pickles: their str keys load as str, as torchvision does
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data = np.asarray(batch["data"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DatasetNotFoundError(f"{path} is damaged: data of shape {data.shape}, expected (N, 3072)")
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()), torch.as_tensor(batch["labels"], dtype=torch.long)


def write_batch(path, images: np.ndarray, labels: Sequence[int]) -> Path:
    """Write a batch in CIFAR-10's pickle layout (the inverse of :func:`read_batch`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.asarray(images, dtype=np.uint8).reshape(len(images), -1)
    with open(path, "wb") as f:
        pickle.dump({"batch_label": path.name, "labels": [int(v) for v in labels], "data": data,
                     "filenames": [f"{i}.png" for i in range(len(data))]}, f, protocol=2)
    return path


def load_cifar10(root=None, download: bool = True, splits: Sequence[int] = (50_000, 10_000)) -> dict:
    """``{"train": (images, labels), "test": (images, labels)}``: images float (N, 3, 32, 32) in [0, 1]."""
    folder = ensure_cifar10(root, download) / FOLDER
    parts = [read_batch(folder / name) for name in TRAIN_BATCHES]
    train = (torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]))
    test = read_batch(folder / TEST_BATCH)
    n_train, n_test = (int(s) for s in splits)
    return {"train": (train[0][:n_train].float() / 255, train[1][:n_train]),
            "test": (test[0][:n_test].float() / 255, test[1][:n_test])}
