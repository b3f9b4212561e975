"""STL-10 with the course's splits, read straight from the binary files into uint8 tensors.

The problem set uses three parts of STL-10 (96x96 colour images, 10 classes):

=============  ===========================================  ==============================
split          images                                       transform (done by the loader)
=============  ===========================================  ==============================
unlabeled      10,000 chosen at random (seeded) of 100,000  RandomHorizontalFlip + RandomCrop(64)
train          5,000 labelled                               CenterCrop(64)
test           8,000 labelled                               CenterCrop(64)
=============  ===========================================  ==============================

The files are the ones ``torchvision.datasets.STL10`` downloads (``stl10_binary/*.bin``), and
downloading goes through torchvision. Reading does not: torchvision loads the whole 2.7 GB
``unlabeled_X.bin`` into memory, whereas :func:`read_stl10_images` memory-maps the file and reads
only the 10,000 rows the course uses. Both apply the same layout: each image is stored as three
96x96 channels written column by column, hence the ``transpose(0, 1, 3, 2)`` below (the one in
torchvision's ``STL10.__loadfile``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from ..paths import data_dir
from . import DatasetNotFoundError
from .loaders import TensorImageDataset

BASE_FOLDER = "stl10_binary"
ARCHIVE_NAME = "stl10_binary.tar.gz"
ARCHIVE_SIZE = "about 2.6 GB"
URL = "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz"
IMAGE_SHAPE = (3, 96, 96)
IMAGE_BYTES = 3 * 96 * 96  # 27,648 bytes per image
CLASSES = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]

# split -> (images file, labels file or None)
FILES: Dict[str, tuple] = {
    "train": ("train_X.bin", "train_y.bin"),
    "test": ("test_X.bin", "test_y.bin"),
    "unlabeled": ("unlabeled_X.bin", None),
}
UNLABELED_SUBSET = 10_000  # images of the unlabeled split the autoencoder trains on
SUBSET_SEED = 0


def stl10_root(root=None) -> Path:
    """The folder that holds (or will hold) ``stl10_binary/``: ``data_dir()/"stl10"`` by default."""
    return Path(root).expanduser() if root is not None else data_dir() / "stl10"


def required_files(splits: Sequence[str] = ("unlabeled", "train", "test")) -> List[str]:
    """Paths (relative to the root) of the files the given splits need."""
    names = []
    for split in splits:
        if split not in FILES:
            raise ValueError(f"unknown STL-10 split {split!r}; use one of {', '.join(FILES)}")
        names += [f"{BASE_FOLDER}/{name}" for name in FILES[split] if name is not None]
    return names


def missing_files(root=None, splits: Sequence[str] = ("unlabeled", "train", "test")) -> List[str]:
    """The required files that are not in ``root`` (relative paths; empty when all are there)."""
    root = stl10_root(root)
    return [name for name in required_files(splits) if not (root / name).is_file()]


def _missing_message(root: Path, missing: List[str], reason: Optional[str] = None) -> str:
    lines = [
        f"STL-10 is not in {root}: missing {', '.join(missing)}.",
        f"Download {ARCHIVE_NAME} ({ARCHIVE_SIZE}) from {URL}",
        f"and extract it into {root}, so that {root / BASE_FOLDER / 'train_X.bin'} exists",
        "(or call load_autoencoder_data(download=True) on a machine with internet access; in Colab, point",
        "COURSE_DATA_DIR at Google Drive so that the download survives a disconnect).",
    ]
    if reason:
        lines.append(reason)
    lines.append("To work without STL-10, use the built-in shapes data: os.environ['COURSE_MODE'] = 'quick' "
                 "or load_autoencoder_data(dataset='shapes').")
    return "\n".join(lines)


def download_stl10(root=None) -> Path:
    """Download and extract the STL-10 archive into ``root`` with torchvision (checks its md5)."""
    from torchvision.datasets import STL10
    from torchvision.datasets.utils import download_and_extract_archive

    root = stl10_root(root)
    root.mkdir(parents=True, exist_ok=True)
    download_and_extract_archive(STL10.url, str(root), filename=STL10.filename, md5=STL10.tgz_md5)
    return root


def ensure_stl10(root=None, download: bool = True, splits: Sequence[str] = ("unlabeled", "train", "test")) -> Path:
    """Make sure the files of ``splits`` are in ``root``; download them if allowed.

    Raises:
        DatasetNotFoundError: files are missing and could not be downloaded; the message says
            which files, where to get the archive, and where to put it.
    """
    root = stl10_root(root)
    missing = missing_files(root, splits)
    reason = None
    if missing and download:
        try:
            download_stl10(root)
        except Exception as error:  # offline, blocked, disk full, bad checksum: explain, do not crash obscurely
            reason = f"The automatic download failed: {type(error).__name__}: {error}"
        missing = missing_files(root, splits)
    if missing:
        if reason is None and not download:
            reason = "Nothing was downloaded because download=False."
        raise DatasetNotFoundError(_missing_message(root, missing, reason))
    return root


def _check_size(path: Path) -> int:
    size = path.stat().st_size
    if size == 0 or size % IMAGE_BYTES:
        raise DatasetNotFoundError(
            f"{path} is damaged: {size} bytes is not a whole number of 96x96x3 images ({IMAGE_BYTES} bytes each). "
            f"Delete it and extract {ARCHIVE_NAME} again (download from {URL})."
        )
    return size // IMAGE_BYTES


def count_images(path) -> int:
    """Number of images in an STL-10 ``*_X.bin`` file (from its size)."""
    return _check_size(Path(path))


def read_stl10_images(path, indices: Optional[Sequence[int]] = None) -> torch.Tensor:
    """Read images from an STL-10 ``*_X.bin`` file as a uint8 tensor (N, 3, 96, 96).

    Args:
        path: the binary file.
        indices: rows to read (e.g. a random subset of the unlabeled split); only those rows are
            read from disk. Default: all rows.
    """
    path = Path(path)
    n = _check_size(path)
    stored = np.memmap(path, dtype=np.uint8, mode="r", shape=(n,) + IMAGE_SHAPE)  # (N, 3, 96, 96), not in RAM
    if indices is None:
        rows = np.array(stored)  # (N, 3, 96, 96)
    else:
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= n):
            raise IndexError(f"{path.name} holds {n} images; indices must lie in [0, {n})")
        rows = stored[indices]  # (K, 3, 96, 96): reads only these rows
    del stored
    rows = rows.transpose(0, 1, 3, 2)  # each channel is stored column-major: (K, 3, W, H) -> (K, 3, H, W)
    return torch.from_numpy(np.ascontiguousarray(rows))  # (K, 3, 96, 96) uint8


def read_stl10_labels(path) -> torch.Tensor:
    """Read an STL-10 ``*_y.bin`` file (labels 1..10 as stored) as a long tensor of classes 0..9."""
    path = Path(path)
    raw = np.fromfile(path, dtype=np.uint8)  # (N,) values 1..10
    if raw.size == 0 or raw.min() < 1 or raw.max() > 10:
        raise DatasetNotFoundError(
            f"{path} is damaged: STL-10 labels are bytes 1..10, found {raw.size} values in "
            f"[{raw.min() if raw.size else '-'}, {raw.max() if raw.size else '-'}]. Extract {ARCHIVE_NAME} again."
        )
    return torch.from_numpy(raw.astype(np.int64) - 1)  # (N,) 0-based


def read_class_names(root=None) -> List[str]:
    """Class names from ``class_names.txt`` when present, else the standard ten."""
    path = stl10_root(root) / BASE_FOLDER / "class_names.txt"
    if path.is_file():
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        if len(names) == 10:
            return names
    return list(CLASSES)


def unlabeled_subset_indices(n_total: int, size: int = UNLABELED_SUBSET, seed: int = SUBSET_SEED) -> np.ndarray:
    """The sorted rows of the unlabeled split used for the autoencoder (seeded, without replacement).

    Uses numpy's legacy ``RandomState``, whose stream never changes between numpy versions, so
    every student gets the same 10,000 images.
    """
    size = min(int(size), int(n_total))
    return np.sort(np.random.RandomState(seed).permutation(n_total)[:size])


def load_stl10_split(split: str, root=None, indices: Optional[Sequence[int]] = None) -> TensorImageDataset:
    """One split (``train``, ``test`` or ``unlabeled``) of STL-10 files already on disk."""
    root = stl10_root(root)
    missing = missing_files(root, [split])
    if missing:
        raise DatasetNotFoundError(_missing_message(root, missing))
    images_file, labels_file = FILES[split]
    images = read_stl10_images(root / BASE_FOLDER / images_file, indices)  # (N, 3, 96, 96) uint8
    labels = None
    if labels_file is not None:
        labels = read_stl10_labels(root / BASE_FOLDER / labels_file)  # (N,)
        if labels.shape[0] != images.shape[0]:
            raise DatasetNotFoundError(
                f"{labels_file} has {labels.shape[0]} labels but {images_file} has {images.shape[0]} images; "
                f"extract {ARCHIVE_NAME} again."
            )
    return TensorImageDataset(images, labels, classes=read_class_names(root))


def load_stl10(root=None, download: bool = True, unlabeled_size: int = UNLABELED_SUBSET,
               seed: int = SUBSET_SEED) -> Dict[str, TensorImageDataset]:
    """The course's STL-10 splits as uint8 tensors at 96x96 (crops are done by the loaders).

    Args:
        root: folder holding ``stl10_binary/`` (default ``data_dir()/"stl10"``).
        download: download the archive with torchvision when files are missing.
        unlabeled_size: images of the unlabeled split to keep (10,000 in the problem set).
        seed: seed of the unlabeled subset.

    Returns:
        ``{"unlabeled": ..., "train": ..., "test": ...}`` of :class:`TensorImageDataset`.

    Raises:
        DatasetNotFoundError: the files are missing and could not be downloaded.
    """
    root = ensure_stl10(root, download=download)
    n_unlabeled = count_images(root / BASE_FOLDER / FILES["unlabeled"][0])
    rows = unlabeled_subset_indices(n_unlabeled, unlabeled_size, seed)
    return {
        "unlabeled": load_stl10_split("unlabeled", root, indices=rows),
        "train": load_stl10_split("train", root),
        "test": load_stl10_split("test", root),
    }


def write_stl10_files(root, images: Dict[str, np.ndarray], labels: Dict[str, np.ndarray]) -> Path:
    """Write arrays in the STL-10 binary layout (the inverse of the readers), e.g. for a small test copy.

    Args:
        root: destination; files go to ``root/stl10_binary/``.
        images: split -> uint8 array (N, 3, 96, 96) in the usual (C, H, W) orientation.
        labels: split -> int array (N,) of classes 0..9 (stored as 1..10).
    """
    folder = Path(root) / BASE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for split, array in images.items():
        array = np.asarray(array, dtype=np.uint8)
        if array.ndim != 4 or array.shape[1:] != IMAGE_SHAPE:
            raise ValueError(f"expected {split} images of shape (N, 3, 96, 96), obtained {array.shape}")
        array.transpose(0, 1, 3, 2).tofile(folder / FILES[split][0])  # column-major channels, as STL-10 stores them
        if FILES[split][1] is not None:
            (np.asarray(labels[split]) + 1).astype(np.uint8).tofile(folder / FILES[split][1])
    (folder / "class_names.txt").write_text("\n".join(CLASSES) + "\n")
    return Path(root)
