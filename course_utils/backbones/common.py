"""What both towers share: ImageNet normalisation, the offline advice, the missing-weights error."""
from __future__ import annotations


import os

import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # per-channel mean of ImageNet (RGB, pixels in [0, 1])
IMAGENET_STD = (0.229, 0.224, 0.225)  # per-channel std of ImageNet

OFFLINE_HINT = (
    "To work without downloads, use the run mode that needs none: "
    "import os; os.environ['COURSE_MODE'] = 'quick' (tiny backbones, built-in shapes data)."
)


class WeightsNotAvailableError(OSError):
    """Pretrained weights are neither cached on this machine nor downloadable right now."""


# --------------------------------------------------------------------------------------
# Image preprocessing
# --------------------------------------------------------------------------------------
def normalize_imagenet(images: torch.Tensor) -> torch.Tensor:
    """Normalise a batch of RGB images with the ImageNet mean and std.

    ``images``: (B, 3, H, W) or (3, H, W); uint8 in [0, 255] or float in [0, 1].
    Returns a float tensor of the same shape on the same device: ``(x - mean) / std``.
    """
    if images.ndim not in (3, 4) or images.shape[-3] != 3:
        raise ValueError(
            f"expected RGB images of shape (B, 3, H, W) or (3, H, W), obtained {tuple(images.shape)}"
        )
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()  # (B, 3, H, W) in [0, 1]
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(3, 1, 1)  # (3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype).view(3, 1, 1)  # (3, 1, 1)
    return (x - mean) / std  # (B, 3, H, W)


def _offline() -> bool:
    """True when the environment asks for no downloads (HF_HUB_OFFLINE=1 or COURSE_OFFLINE=1)."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes") for v in ("HF_HUB_OFFLINE", "COURSE_OFFLINE"))


def _reachable(host: str, timeout: float = 3.0) -> bool:
    """Whether ``host`` answers on port 443: checked once so that an offline machine fails at
    once with a clear message instead of after a minute of download retries."""
    import socket

    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False
