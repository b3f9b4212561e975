"""scikit-learn's handwritten digits (1,797 images of 8x8, values 0..16, 10 classes), upsampled to MNIST's 28x28.

Real handwriting that ships inside scikit-learn, so it needs no download: the offline stand-in for MNIST. Each
image is scaled to [0, 1] and resized bilinearly to 28x28 (MNIST's size, so the same networks read both); the
split is a seeded permutation, the same on every machine.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch.nn import functional as F

from .mnist import DigitSplits, split_digits

SEED = 0


def load_digits_28(splits: Sequence[int] = (1_297, 250, 250), seed: int = SEED) -> DigitSplits:
    """``{train, val, test}`` of the upsampled digits: images float (N, 1, 28, 28) in [0, 1], labels (N,)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    small = torch.as_tensor(bunch.images, dtype=torch.float32)[:, None] / 16.0  # (1797, 1, 8, 8) in [0, 1]
    images = F.interpolate(small, size=(28, 28), mode="bilinear", align_corners=False).clamp(0, 1)  # (1797, 1, 28, 28)
    labels = torch.as_tensor(bunch.target, dtype=torch.long)
    return split_digits(images, labels, splits, seed, source="scikit-learn digits (8x8, upsampled to 28x28)")
