"""Backbones for the CLIP problem set, created by name (image encoders from timm's model registry).

Two towers, each with a tiny registered twin that runs the same code path on a CPU in
milliseconds (tests, ``quick`` and ``grading`` modes):

===========================  ===============================================  =======  =====================================
name                         what it is                                       out_dim  pretrained weights
===========================  ===============================================  =======  =====================================
``resnet50``                 timm ``resnet50``, no classifier, average pool   2048     torchvision ImageNet (IMAGENET1K_V2),
                                                                                       timm tag ``resnet50.tv2_in1k``
``resnet18``                 timm ``resnet18``, no classifier, average pool   512      torchvision ImageNet (IMAGENET1K_V1),
                                                                                       timm tag ``resnet18.tv_in1k``
``resnet_tiny``              timm ResNet of BasicBlocks, widths 8-16-32-64,   64       none (random init)
                             registered in timm's registry
``distilbert-base-uncased``  DistilBERT, CLS token                            768      Hugging Face Hub
``distilbert-tiny``          DistilBERT, dim 32, 2 layers, real vocab         32       none (random init)
===========================  ===============================================  =======  =====================================

Each image encoder is ``timm.create_model(name, pretrained, num_classes=0, global_pool="avg")``, as
in the upstream Simple CLIP; the ImageNet weights are torchvision's, which timm hosts on the
Hugging Face Hub (``timm/resnet50.tv2_in1k``) and caches in the hub's cache (``~/.cache/huggingface``).
timm is imported only when an image encoder is built; :func:`register_timm_models` (called then,
and at import when timm is already loaded) puts ``resnet_tiny`` into timm's registry, after which
``timm.create_model("resnet_tiny", num_classes=0, global_pool="avg")`` works too.

``create_text_encoder`` also takes any Hugging Face model name or a local model folder.
The text encoder is **frozen** in this course: its builder calls :meth:`TextEncoder.lock`,
after which its weights never change, it stays in eval mode and it runs under ``no_grad``.

Images enter the image encoder as float tensors normalised with the ImageNet mean and std:
use :func:`normalize_imagenet` on uint8 or [0, 1] images first.

References: He et al., *Deep Residual Learning* (2016); Sanh et al., *DistilBERT* (2019);
open_clip's ``lock_text_tower`` for the frozen tower; timm's model registry (``_registry.py``, ``_factory.py``).
"""
from __future__ import annotations

from typing import List, Optional

from .common import IMAGENET_MEAN, IMAGENET_STD, OFFLINE_HINT, WeightsNotAvailableError, normalize_imagenet
from .image import (IMAGE_ENCODERS, TINY_WIDTHS, ImageBackbone, ImageEncoder, _timm_image_encoder,  # noqa: F401
                    create_image_encoder, register_timm_models, resnet_tiny)
from .text import TEXT_ENCODERS, TextEncoder, create_text_encoder, minilm_folder

__all__ = [
    "IMAGENET_MEAN", "IMAGENET_STD", "OFFLINE_HINT", "WeightsNotAvailableError", "normalize_imagenet",
    "ImageEncoder", "ImageBackbone", "IMAGE_ENCODERS", "TINY_WIDTHS", "resnet_tiny", "register_timm_models",
    "create_image_encoder", "minilm_folder", "TextEncoder", "TEXT_ENCODERS", "create_text_encoder",
    "list_models",
]


def __getattr__(name: str):  # PEP 562: course_utils.backbones.TinyResNet (imports timm on first access)
    from . import image

    return getattr(image, name)


def list_models(kind: Optional[str] = None) -> List[str]:
    """Registered backbone names; ``kind`` is ``"image"``, ``"text"`` or None for both."""
    if kind not in (None, "image", "text"):
        raise ValueError(f"kind must be 'image', 'text' or None, got {kind!r}")
    names = []
    if kind in (None, "image"):
        names += list(IMAGE_ENCODERS)
    if kind in (None, "text"):
        names += list(TEXT_ENCODERS)
    return names
