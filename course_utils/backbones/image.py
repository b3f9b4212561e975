"""Image encoders by name, from timm's registry (the tiny twin registered there too); see course_utils.backbones."""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

import torch
from torch import nn

from .common import (IMAGENET_MEAN, IMAGENET_STD, OFFLINE_HINT, WeightsNotAvailableError, _offline,  # noqa: F401
                     _reachable, normalize_imagenet)

__all__ = ["ImageEncoder", "ImageBackbone", "IMAGE_ENCODERS", "TINY_WIDTHS", "resnet_tiny", "register_timm_models",
           "create_image_encoder"]  # timm's register_model appends what it registers


# --------------------------------------------------------------------------------------
# Image encoders: timm's registry
# --------------------------------------------------------------------------------------
class ImageEncoder(nn.Module):
    """A CNN trunk without its classifier: (B, 3, H, W) normalised images -> (B, out_dim) features."""

    def __init__(self, trunk: nn.Module, out_dim: int, name: str = ""):
        super().__init__()
        self.model = trunk  # timm model built with num_classes=0, global_pool="avg" (fc = Identity)
        self.out_dim = int(out_dim)  # feature size after global average pooling
        self.name = name

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W), obtained {tuple(images.shape)}")
        if images.dtype == torch.uint8:
            raise TypeError("the image encoder takes float images; apply normalize_imagenet(images) first")
        return self.model(images)  # (B, out_dim)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, out_dim={self.out_dim}"


@dataclass(frozen=True)
class ImageBackbone:
    """What a kit name stands for in timm's registry."""

    arch: str  # timm architecture (registry name)
    weights: Optional[str]  # timm pretrained tag of the course's weights; None: random init only
    documented_as: str  # the weights in the course's words (torchvision's names)
    size_mb: int = 0  # download size of the weights file

    @property
    def timm_name(self) -> str:
        """``arch.tag`` as passed to ``timm.create_model`` (the bare ``arch`` when there are no weights)."""
        return f"{self.arch}.{self.weights}" if self.weights else self.arch


IMAGE_ENCODERS: Dict[str, ImageBackbone] = {
    "resnet50": ImageBackbone("resnet50", "tv2_in1k", "torchvision ResNet50_Weights.IMAGENET1K_V2", 100),
    "resnet18": ImageBackbone("resnet18", "tv_in1k", "torchvision ResNet18_Weights.IMAGENET1K_V1", 47),
    "resnet_tiny": ImageBackbone("resnet_tiny", None, "none: the tiny twin is always randomly initialised"),
}

TINY_WIDTHS = (8, 16, 32, 64)  # channels of the tiny twin's four stages (64-128-256-512 in resnet18)
TIMM_MIN_VERSION = (1, 0, 8)  # timm's ResNet takes channels=(...) from 1.0.8 on

# Pretrained config of the models this module registers; timm's register_model reads it from
# the module's ``default_cfgs``. No url / hf_hub_id: resnet_tiny has no weights to download.
default_cfgs = {
    "resnet_tiny": dict(
        num_classes=1000, input_size=(3, 224, 224), pool_size=(7, 7), crop_pct=0.875, interpolation="bilinear",
        mean=IMAGENET_MEAN, std=IMAGENET_STD, first_conv="conv1", classifier="fc",
    ),
}


_TINY_RESNET_CLASS = None  # timm ResNet subclass, made on first use (timm is imported lazily)


def _tiny_resnet_class():
    """timm's ResNet with its 7x7 stem as narrow as the first stage.

    timm's ResNet takes the stage widths as ``channels`` but fixes the plain 7x7 stem at 64
    channels (only its deep 3x3 stem can be narrowed); the twin keeps resnet18's stem layout
    (and its parameter names, ``conv1``/``bn1``) at 8 channels, so the first block needs no projection.
    """
    global _TINY_RESNET_CLASS
    if _TINY_RESNET_CLASS is None:
        from timm.models.resnet import BasicBlock, ResNet

        class TinyResNet(ResNet):
            def __init__(self, zero_init_last: bool = True, **kwargs):
                super().__init__(zero_init_last=zero_init_last, **kwargs)
                width = self.layer1[0].conv2.out_channels  # channels[0]
                self.conv1 = nn.Conv2d(self.in_chans, width, kernel_size=7, stride=2, padding=3, bias=False)
                self.bn1 = nn.BatchNorm2d(width)
                self.layer1[0] = BasicBlock(width, width)  # input already `width` wide: no downsample branch
                self.feature_info[0]["num_chs"] = width
                self.init_weights(zero_init_last=zero_init_last)

        TinyResNet.__module__, TinyResNet.__qualname__ = __name__, "TinyResNet"  # picklable by name
        _TINY_RESNET_CLASS = TinyResNet
    return _TINY_RESNET_CLASS


def __getattr__(name: str):  # PEP 562: course_utils.backbones.TinyResNet (imports timm on first access)
    if name == "TinyResNet":
        return _tiny_resnet_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def resnet_tiny(pretrained: bool = False, **kwargs) -> nn.Module:
    """timm entrypoint of the tiny twin: a ResNet of BasicBlocks, one block per stage, widths 8-16-32-64.

    timm's ResNet class with resnet18's layout (7x7 stride-2 stem, max-pool, four stages of
    BasicBlocks, global average pool) and narrow widths: stem 8, stages 8-16-32-64, 64 features,
    under 0.1 M parameters, milliseconds per batch on a CPU.
    """
    from timm.models import build_model_with_cfg
    from timm.models.resnet import BasicBlock

    args = dict(
        block=BasicBlock, layers=(1, 1, 1, 1), channels=TINY_WIDTHS,
        zero_init_last=False,  # residual branches not zeroed: torchvision's initialisation, as the twin always had
    )
    return build_model_with_cfg(_tiny_resnet_class(), "resnet_tiny", pretrained, **dict(args, **kwargs))


def _version(text: str) -> tuple:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def register_timm_models(strict: bool = True):
    """Put the kit's tiny twin into timm's registry (once) and return the ``timm`` module.

    Afterwards ``timm.create_model("resnet_tiny", num_classes=0, global_pool="avg")`` builds it.
    ``strict=False`` (used at import) returns quietly instead of raising when timm is missing or older than 1.0.8.
    """
    least = ".".join(map(str, TIMM_MIN_VERSION))
    try:
        import timm
        from timm.models import is_model, register_model
    except ImportError as err:
        if not strict:
            return None
        raise ImportError(
            f"the course's image encoders are built by timm, which cannot be imported ({err}); "
            f"install it: pip install 'timm>={least}'"
        ) from err
    if _version(timm.__version__) < TIMM_MIN_VERSION:
        if not strict:
            return timm
        raise ImportError(
            f"the course's image encoders need timm >= {least} (installed: {timm.__version__}); "
            f"upgrade it: pip install -U 'timm>={least}'"
        )
    if not is_model("resnet_tiny"):
        register_model(resnet_tiny)
    return timm


def _hub_cache() -> Path:
    """The Hugging Face hub cache that timm downloads into (HF_HUB_CACHE, default ~/.cache/huggingface/hub)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def _cached_weights(repo_id: str) -> Optional[str]:
    """The weights file of ``repo_id`` in the hub cache (what timm would load), or None."""
    from huggingface_hub import try_to_load_from_cache

    for filename in ("model.safetensors", "pytorch_model.bin"):  # timm's order: safetensors first
        found = try_to_load_from_cache(repo_id, filename, cache_dir=_hub_cache())
        if isinstance(found, str):
            return found
    return None


def _timm_image_encoder(
    name: str, pretrained: bool, pretrained_cfg_overlay: Optional[dict] = None
) -> ImageEncoder:
    """``timm.create_model(timm_name, pretrained, num_classes=0, global_pool="avg")`` wrapped as an ImageEncoder.

    Cached weights are read from the hub cache without touching the network; missing ones are
    downloaded by timm through the Hugging Face hub, or a :class:`WeightsNotAvailableError` says
    what to do offline. ``pretrained_cfg_overlay`` is passed to timm as is (e.g. ``dict(file=...)``).
    """
    timm = register_timm_models()
    spec = IMAGE_ENCODERS[name]
    overlay = dict(pretrained_cfg_overlay or {})
    repo_id = ""
    if pretrained and not overlay:
        repo_id = timm.models.get_pretrained_cfg(spec.timm_name).hf_hub_id  # "timm/resnet50.tv2_in1k"
        cached = _cached_weights(repo_id)
        if cached is not None:
            overlay = dict(file=cached)  # what the hub would hand timm, without a network round trip
        else:
            from huggingface_hub import constants

            host = re.sub(r"^https?://", "", constants.ENDPOINT).split("/")[0].split(":")[0]
            if _offline() or not _reachable(host):
                reason = "offline mode is set" if _offline() else f"{host} cannot be reached"
                raise WeightsNotAvailableError(_image_weights_message(name, spec, repo_id, reason))
    try:
        trunk = timm.create_model(
            spec.timm_name, pretrained=pretrained, num_classes=0, global_pool="avg",
            pretrained_cfg_overlay=overlay or None,
        )
    except OSError as err:  # hub errors, network or disk failure while downloading or reading
        if not pretrained:
            raise
        first = (str(err).strip().splitlines() or [""])[0]
        raise WeightsNotAvailableError(
            _image_weights_message(name, spec, repo_id or f"timm/{spec.timm_name}", f"{type(err).__name__}: {first}")
        ) from None
    return ImageEncoder(trunk, trunk.num_features, name)


def _image_weights_message(name: str, spec: ImageBackbone, repo_id: str, reason: str) -> str:
    folder = _hub_cache() / f"models--{repo_id.replace('/', '--')}"
    return (
        f"Could not load the ImageNet weights of {name} ({reason}).\n"
        f"timm builds {name} with {spec.documented_as} (timm tag {spec.timm_name!r}), downloaded once from the "
        f"Hugging Face Hub, https://huggingface.co/{repo_id} (about {spec.size_mb} MB), into {folder}.\n"
        f"Connect to the internet and run again, or on a connected machine run "
        f"`hf download {repo_id}` and copy its folder {folder.name} into {folder.parent} "
        f"(set HF_HOME or HF_HUB_CACHE to choose another cache folder), or build the encoder without weights: "
        f"create_image_encoder({name!r}, pretrained=False).\n{OFFLINE_HINT}"
    )


def create_image_encoder(name: str = "resnet50", pretrained: bool = True) -> ImageEncoder:
    """Build an image encoder by name: (B, 3, H, W) normalised images -> (B, out_dim) features.

    ``timm.create_model(name, pretrained, num_classes=0, global_pool="avg")`` with the course's
    weights: ``resnet50`` with ``pretrained=True`` is the problem set's encoder (torchvision's
    ImageNet weights, timm tag ``resnet50.tv2_in1k``, ``out_dim`` 2048). ``resnet_tiny``
    (``out_dim`` 64, never pretrained) is its fast twin.
    """
    if name not in IMAGE_ENCODERS:
        raise KeyError(f"unknown image encoder {name!r}; known image encoders: {', '.join(IMAGE_ENCODERS)}")
    # The tiny twin has no pretrained weights: it is randomly initialised whatever ``pretrained`` says.
    return _timm_image_encoder(name, pretrained=bool(pretrained) and IMAGE_ENCODERS[name].weights is not None)


if sys.modules.get("timm") is not None:  # timm already loaded: register now, so timm.create_model("resnet_tiny") works
    register_timm_models(strict=False)
