"""Tensor-resident image datasets and a batched-augmentation loader.

The course's datasets are small enough to live in memory (10,000 STL-10 images at 96x96 are
276 MB as uint8), so instead of decoding one PIL image at a time the kit keeps every image in one
uint8 tensor, optionally on the GPU, and augments whole batches with tensor indexing:

    loader = TensorLoader(dataset, batch_size=128, shuffle=True, augment="flip_crop", crop=64)
    for images, labels in loader:      # images: float32 (B, 3, 64, 64) in [0, 1]
        ...

``augment="flip_crop"`` is the problem set's ``RandomHorizontalFlip() + RandomCrop(64)``, drawn
independently for every image; ``augment=None`` with ``crop`` set is ``CenterCrop(crop)``.
Pixels are scaled to [0, 1] and not normalised, as in the problem set.
"""
from __future__ import annotations

from typing import Iterator, Optional, Sequence

import torch

AUGMENTATIONS = (None, "flip_crop")


def _check_images(images) -> torch.Tensor:
    images = torch.as_tensor(images)
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(
            f"expected images of shape (N, 3, H, W) (channels first, RGB), obtained {tuple(images.shape)}; "
            "convert an (N, H, W, 3) array with images.permute(0, 3, 1, 2)"
        )
    if images.dtype != torch.uint8:
        raise ValueError(
            f"expected uint8 images (pixel values 0..255), obtained dtype {images.dtype}; "
            "convert float images in [0, 1] with (images * 255).round().to(torch.uint8)"
        )
    return images


class TensorImageDataset(torch.utils.data.Dataset):
    """Images kept as one uint8 tensor, with optional integer labels.

    Args:
        images: uint8 tensor (N, 3, H, W).
        labels: long tensor (N,), or ``None`` for unlabeled data (items then carry label -1).
        classes: optional list of class names (``classes[label]`` names a label).

    ``dataset[i]`` returns ``(image, label)`` with ``image`` a float32 tensor (3, H, W) in [0, 1].
    """

    def __init__(self, images, labels=None, classes: Optional[Sequence[str]] = None):
        self.images = _check_images(images)  # (N, 3, H, W) uint8
        if labels is not None:
            labels = torch.as_tensor(labels).long().reshape(-1)  # (N,)
            if labels.shape[0] != self.images.shape[0]:
                raise ValueError(
                    f"expected one label per image ({self.images.shape[0]} labels), obtained {labels.shape[0]}"
                )
        self.labels = labels
        self.classes = list(classes) if classes is not None else None

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int):
        image = self.images[index].float().div(255.0)  # (3, H, W) in [0, 1]
        label = int(self.labels[index]) if self.labels is not None else -1
        return image, label

    @property
    def image_size(self) -> int:
        """Side length of the stored images (they may be cropped later by a loader)."""
        return int(self.images.shape[-1])

    def subset(self, indices) -> "TensorImageDataset":
        """A new dataset holding only ``indices`` (a list, range or long tensor)."""
        indices = torch.as_tensor(indices, dtype=torch.long)
        labels = self.labels[indices] if self.labels is not None else None
        return TensorImageDataset(self.images[indices], labels, self.classes)

    def __repr__(self) -> str:
        n, c, h, w = self.images.shape
        labelled = "labelled" if self.labels is not None else "unlabeled"
        return f"{type(self).__name__}({n} {labelled} images of {c}x{h}x{w})"


def center_crop_offset(size: int, crop: int) -> int:
    """Top/left offset of a centred crop, computed as torchvision's ``CenterCrop`` does."""
    return int(round((size - crop) / 2.0))


def flip_crop(images: torch.Tensor, crop: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Per-image random horizontal flip + random ``crop x crop`` crop of a batch, without a Python loop.

    Args:
        images: tensor (B, C, H, W) of any dtype (uint8 is cheapest to index).
        crop: output side length (<= H and <= W).
        generator: a CPU ``torch.Generator`` for reproducible draws.

    Returns:
        tensor (B, C, crop, crop) of the same dtype and device.
    """
    b, c, h, w = images.shape
    if crop > h or crop > w:
        raise ValueError(f"crop={crop} is larger than the images ({h}x{w}); use a crop of at most {min(h, w)}")
    device = images.device
    # Draw on the CPU generator so that results do not depend on the device.
    top = torch.randint(0, h - crop + 1, (b,), generator=generator)  # (B,)
    left = torch.randint(0, w - crop + 1, (b,), generator=generator)  # (B,)
    flip = torch.rand(b, generator=generator) < 0.5  # (B,)
    steps = torch.arange(crop)  # (crop,)
    rows = (top[:, None] + steps).to(device)  # (B, crop)
    cols = left[:, None] + steps  # (B, crop)
    cols = torch.where(flip[:, None], cols.flip(1), cols).to(device)  # (B, crop): a flipped image reads its columns backwards
    # Two gathers with broadcast (expanded, not copied) indices: first the rows, then the columns.
    out = images.gather(2, rows[:, None, :, None].expand(b, c, crop, w))  # (B, C, crop, W)
    return out.gather(3, cols[:, None, None, :].expand(b, c, crop, crop))  # (B, C, crop, crop)


def center_crop(images: torch.Tensor, crop: int) -> torch.Tensor:
    """Centred ``crop x crop`` crop of a batch (B, C, H, W) -> (B, C, crop, crop), as ``CenterCrop``."""
    h, w = images.shape[-2:]
    if crop > h or crop > w:
        raise ValueError(f"crop={crop} is larger than the images ({h}x{w}); use a crop of at most {min(h, w)}")
    top, left = center_crop_offset(h, crop), center_crop_offset(w, crop)
    return images[..., top : top + crop, left : left + crop]


class TensorLoader:
    """Batches of a tensor-resident dataset, augmented in batches on the data's device.

    Args:
        dataset: a :class:`TensorImageDataset` (or anything with uint8 ``images`` (N, 3, H, W) and
            ``labels`` (N,) or ``None``).
        batch_size: images per batch.
        shuffle: draw a new random order every epoch.
        augment: ``None`` or ``"flip_crop"`` (random horizontal flip + random crop of ``crop``, per image).
        crop: output side length; with ``augment=None`` a centre crop.
        device: where the images live and batches are made (e.g. ``"cuda"``); default CPU.
        seed: seed of the loader's own random generator; ``None`` draws one from torch's global RNG,
            so ``torch.manual_seed(...)`` also makes the loader reproducible.
        drop_last: drop the last incomplete batch.

    Iterating yields ``(images, labels)``: float32 (B, 3, h, w) in [0, 1] and long (B,) (-1 when
    unlabeled), both on ``device``. Every new iteration draws a new order and new augmentations.
    """

    def __init__(
        self,
        dataset,
        batch_size: int,
        shuffle: bool = False,
        augment: Optional[str] = None,
        crop: Optional[int] = None,
        device=None,
        seed: Optional[int] = None,
        drop_last: bool = False,
    ):
        if augment not in AUGMENTATIONS:
            raise ValueError(f"augment={augment!r} is not supported; use one of {AUGMENTATIONS}")
        if augment == "flip_crop" and crop is None:
            raise ValueError("augment='flip_crop' needs a crop size, e.g. crop=64")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be a positive integer, obtained {batch_size}")
        images = _check_images(dataset.images)
        h, w = images.shape[-2:]
        if crop is not None and (crop > h or crop > w):
            raise ValueError(f"crop={crop} is larger than the stored images ({h}x{w}); use crop <= {min(h, w)}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.augment = augment
        self.crop = crop
        self.drop_last = drop_last
        self.device = torch.device(device) if device is not None else images.device
        self.images = images.to(self.device)  # (N, 3, H, W) uint8, moved once
        labels = getattr(dataset, "labels", None)
        n = images.shape[0]
        self.labels = (
            torch.as_tensor(labels).long().to(self.device) if labels is not None
            else torch.full((n,), -1, dtype=torch.long, device=self.device)
        )  # (N,)
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        n = self.images.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def num_images(self) -> int:
        return int(self.images.shape[0])

    def __iter__(self) -> Iterator[tuple]:
        n = self.images.shape[0]
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)  # (N,)
        order = order.to(self.device)
        for batch_index in range(len(self)):
            idx = order[batch_index * self.batch_size : (batch_index + 1) * self.batch_size]  # (B,)
            images = self.images[idx]  # (B, 3, H, W) uint8
            if self.augment == "flip_crop":
                images = flip_crop(images, self.crop, self.generator)  # (B, 3, crop, crop)
            elif self.crop is not None:
                images = center_crop(images, self.crop)  # (B, 3, crop, crop)
            yield images.float().div_(255.0), self.labels[idx]  # (B, 3, h, w) in [0, 1], (B,)

    def __repr__(self) -> str:
        return (f"TensorLoader({self.num_images} images, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"augment={self.augment!r}, crop={self.crop}, device={self.device})")


def make_loader(dataset, batch_size: int = 128, train: bool = False, crop: Optional[int] = None,
                augment: bool = False, device=None, seed: Optional[int] = None) -> TensorLoader:
    """Shortcut: ``train=True`` shuffles; ``augment=True`` adds random flip + crop (``crop`` required)."""
    return TensorLoader(dataset, batch_size, shuffle=train, augment="flip_crop" if augment else None,
                        crop=crop, device=device, seed=seed)
