"""The harness around your CLIP model: cached text features, training, linear probe, retrieval metrics.

This module knows nothing of your model's insides. It relies only on this contract, which the
problem set asks you to implement:

``CLIPModel(image_encoder, text_encoder, embed_dim=256, temperature=0.07)`` is an ``nn.Module`` with

* ``image_encoder``, ``text_encoder``: the two backbones passed in (the text encoder is frozen);
* ``image_projection``, ``text_projection``: your ``ProjectionHead`` modules;
* ``encode_image(images)``: normalised images (B, 3, H, W) -> (B, embed_dim), L2-normalised rows;
* ``encode_text_features(text_features)``: frozen text features (B, text_dim) -> (B, embed_dim),
  L2-normalised rows;
* ``forward(images, text_features)`` -> the symmetric InfoNCE loss, a scalar tensor.

Images. Everything here takes images as they come from the datasets and loaders (uint8, or float
in [0, 1]) and applies :func:`~course_utils.backbones.normalize_imagenet` just before calling the
model, so ``encode_image`` always receives ImageNet-normalised images.

Speed. The text encoder is frozen, so its output for a caption never changes: it is computed once
(:func:`precompute_text_features`, batches padded to their longest caption, not to 200 tokens)
and training reads those features from memory. Likewise the linear probe trains on features the
frozen image encoder extracted once. See ``benchmarks/bench_clip.py`` for the gains.

References: Radford et al., *Learning Transferable Visual Models From Natural Language
Supervision* (2021); M. Moein Shariatnia, *Simple CLIP* (2021); open_clip's ``ClipLoss``.
"""
from __future__ import annotations

from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

# Retrieval evaluation lives in course_utils.retrieval; imported here too, where the notebook has always found it.
from .retrieval import (_device_of, chance_recall, compute_image_embeddings, compute_text_embeddings,  # noqa: F401
                        evaluate_retrieval, prepare_images, recall_at_k)
from .training import History, fit, progress


# --------------------------------------------------------------------------------------
# Frozen text features, computed once
# --------------------------------------------------------------------------------------
@torch.no_grad()
def precompute_text_features(text_encoder: nn.Module, captions: Sequence[str], batch_size: int = 256,
                             max_length: int = 200, sort_by_length: bool = True, desc: str = "text features") -> torch.Tensor:
    """Run the frozen text encoder once over ``captions``; returns float (N, text_dim) on the CPU.

    Each batch is padded to its own longest caption. With ``sort_by_length`` captions of similar
    length share a batch (less padding still); rows come back in the order of ``captions``.
    """
    captions = list(captions)
    if not captions:
        raise ValueError("no captions to encode")
    text_encoder.eval()
    order = sorted(range(len(captions)), key=lambda i: len(captions[i])) if sort_by_length else list(range(len(captions)))
    out = None
    for start in progress(range(0, len(order), batch_size), desc=desc, unit="batch", leave=False):
        idx = order[start : start + batch_size]
        batch = text_encoder.tokenize([captions[i] for i in idx], max_length=max_length)  # (B, L), L = longest
        feats = text_encoder(batch).float().cpu()  # (B, text_dim)
        if out is None:
            out = torch.empty(len(captions), feats.shape[1])  # (N, text_dim)
        out[torch.tensor(idx)] = feats
    return out


class TextEmbeddingCache:
    """Frozen text features, each distinct caption encoded once and remembered.

    ``cache(captions)`` returns (B, text_dim) features, encoding only captions it has not seen.
    """

    def __init__(self, text_encoder: nn.Module, batch_size: int = 256, max_length: int = 200):
        self.text_encoder = text_encoder
        self.batch_size = batch_size
        self.max_length = max_length
        self._rows: Dict[str, int] = {}  # caption -> row of self._features
        self._features = None  # float (K, text_dim)

    def __len__(self) -> int:
        return len(self._rows)

    def __call__(self, captions: Sequence[str]) -> torch.Tensor:
        captions = [captions] if isinstance(captions, str) else list(captions)
        new = list(dict.fromkeys(c for c in captions if c not in self._rows))
        if new:
            feats = precompute_text_features(self.text_encoder, new, self.batch_size, self.max_length)  # (K', D)
            self._features = feats if self._features is None else torch.cat([self._features, feats])
            for caption in new:
                self._rows[caption] = len(self._rows)
        return self._features[torch.tensor([self._rows[c] for c in captions], dtype=torch.long)]  # (B, D)


# --------------------------------------------------------------------------------------
# Image-caption batches
# --------------------------------------------------------------------------------------
class ImageTextLoader:
    """Batches of (image, text feature) pairs held in memory.

    Args:
        images: uint8 (N, 3, H, W), e.g. ``data.train.images``.
        text_features: float (N, text_dim), the frozen features of each image's caption.
        batch_size: pairs per batch (32 in the problem set). The other captions of a batch are
            the negatives of the contrastive loss, so a batch needs at least two pairs.
        shuffle: new random order every epoch (training); with it, an incomplete last batch is dropped.
        device: where batches are made (images are moved there once).
        seed: seed of the loader's own random generator.

    Yields ``(images, text_features)``: float (B, 3, H, W) in [0, 1] and float (B, text_dim).
    """

    def __init__(self, images: torch.Tensor, text_features: torch.Tensor, batch_size: int = 32,
                 shuffle: bool = True, device=None, seed: int = 0):
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images of shape (N, 3, H, W), obtained {tuple(images.shape)}")
        if text_features.ndim != 2 or text_features.shape[0] != images.shape[0]:
            raise ValueError(
                f"expected one text feature row per image: images {tuple(images.shape)}, "
                f"text_features {tuple(text_features.shape)}"
            )
        if batch_size < 2:
            raise ValueError(f"batch_size must be at least 2 (the other pairs are the negatives), obtained {batch_size}")
        self.device = torch.device(device) if device is not None else images.device
        self.images = images.to(self.device)  # (N, 3, H, W)
        self.text_features = text_features.to(self.device)  # (N, D)
        self.batch_size = int(min(batch_size, images.shape[0]))
        self.shuffle = shuffle
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        n = self.images.shape[0]
        return n // self.batch_size if self.shuffle else -(-n // self.batch_size)

    def __iter__(self):
        n = self.images.shape[0]
        order = (torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)).to(self.device)
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]  # (B,)
            images = self.images[idx]  # (B, 3, H, W)
            images = images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()
            yield images, self.text_features[idx]  # (B, 3, H, W) in [0, 1], (B, D)


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------
def make_optimizer(model: nn.Module, head_lr: float = 1e-3, image_lr: float = 1e-4, weight_decay: float = 1e-3,
                   patience: int = 1, factor: float = 0.8):
    """AdamW with one learning rate for the projection heads and one for the image encoder.

    Parameter groups: 0 = the heads (and any other trainable parameter of the model that is not
    in an encoder), ``lr=head_lr``, ``weight_decay``; 1 = the image encoder, ``lr=image_lr``, no
    weight decay. The frozen text encoder is never handed to the optimizer. The scheduler is
    ``ReduceLROnPlateau(patience=1, factor=0.8)``: call ``scheduler.step(loss)`` once per epoch
    (:func:`train_clip` does).

    Returns ``(optimizer, scheduler)``.
    """
    for attr in ("image_encoder", "image_projection", "text_projection"):
        if not isinstance(getattr(model, attr, None), nn.Module):
            raise AttributeError(
                f"the model has no module attribute {attr!r}; CLIPModel must keep image_encoder, text_encoder, "
                f"image_projection and text_projection as attributes (see the contract in course_utils.clip)"
            )
    text_encoder = getattr(model, "text_encoder", None)
    text_ids = {id(p) for p in text_encoder.parameters()} if isinstance(text_encoder, nn.Module) else set()
    image_params = [p for p in model.image_encoder.parameters() if p.requires_grad]
    image_ids = {id(p) for p in image_params}
    head_params = [p for p in model.parameters() if p.requires_grad and id(p) not in image_ids and id(p) not in text_ids]
    if not head_params:
        raise ValueError("the projection heads have no trainable parameters; did ProjectionHead create its layers?")
    groups = [{"params": head_params, "lr": head_lr, "weight_decay": weight_decay}]
    if image_params:
        groups.append({"params": image_params, "lr": image_lr, "weight_decay": 0.0})
    optimizer = torch.optim.AdamW(groups, lr=head_lr, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", patience=patience, factor=factor)
    return optimizer, scheduler


def _loss_value(model: nn.Module, images: torch.Tensor, text_features: torch.Tensor, device) -> torch.Tensor:
    loss = model(prepare_images(images, device), text_features.to(device))
    if not torch.is_tensor(loss) or loss.ndim != 0:
        shape = tuple(loss.shape) if torch.is_tensor(loss) else type(loss).__name__
        raise ValueError(f"CLIPModel.forward must return the loss as a scalar tensor, obtained {shape}")
    return loss


@torch.no_grad()
def evaluate_clip_loss(model: nn.Module, loader: Iterable, device=None) -> float:
    """Mean contrastive loss of ``model`` over ``(images, text_features)`` batches, in eval mode."""
    device = device or _device_of(model)
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for images, text_features in loader:
        total += float(_loss_value(model, images, text_features, device))
        count += 1
    model.train(was_training)
    if count == 0:
        raise ValueError("the loader yielded no batches")
    return total / count


def train_clip(model: nn.Module, loader: Iterable, num_epochs: int, optimizer: torch.optim.Optimizer,
               scheduler=None, device=None, history: Optional[History] = None, val_loader: Optional[Iterable] = None,
               on_epoch_end: Optional[Callable[[int, History], None]] = None, start_epoch: int = 0,
               checkpoint=None) -> History:
    """Train ``model`` on ``(images, text_features)`` batches; returns the loss :class:`History`.

    Each step: ``loss = model(normalize_imagenet(images), text_features)``, backward, optimizer
    step. After each epoch the scheduler steps on the validation loss (``val_loader``) or, without
    one, on the epoch's training loss; ``history.metrics`` records ``val_loss`` and the heads' ``lr``.

    ``checkpoint`` saves every epoch and resumes after a disconnect (see :func:`course_utils.training.fit`):
    ``Checkpointer(None, "clip", model=model, optimizer=optimizer, scheduler=scheduler)``.
    """
    device = torch.device(device) if device is not None else _device_of(model)
    model.to(device)

    def step(batch):
        images, text_features = batch
        model.train()
        loss = _loss_value(model, images, text_features, device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    def epoch_end(epoch: int, hist: History) -> None:
        metric = hist.epoch_loss[-1]
        if val_loader is not None:
            metric = evaluate_clip_loss(model, val_loader, device)
            hist.log("val_loss", metric)
        hist.log("lr", optimizer.param_groups[0]["lr"])
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(metric)
        elif scheduler is not None:
            scheduler.step()
        if on_epoch_end is not None:
            on_epoch_end(epoch, hist)

    return fit(step, loader, num_epochs, desc="train CLIP", history=history, on_epoch_end=epoch_end,
               start_epoch=start_epoch, checkpoint=checkpoint)


# --------------------------------------------------------------------------------------
# Linear probe on frozen features
# --------------------------------------------------------------------------------------
@torch.no_grad()
def extract_features(encoder: nn.Module, loader: Iterable, device=None,
                     normalize: bool = True) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Run a frozen encoder once over a loader; returns ``(features (N, D), labels (N,) or None)`` on the CPU.

    ``loader`` yields images, or ``(images, labels, ...)`` tuples; images raw (uint8 or float in
    [0, 1]). With ``normalize`` they get the ImageNet mean/std first (what ResNets expect).
    """
    device = torch.device(device) if device is not None else _device_of(encoder)
    was_training = encoder.training
    encoder.eval()
    feats, labels = [], []
    for batch in progress(loader, desc="extract features", unit="batch", leave=False):
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        x = prepare_images(images, device) if normalize else images.to(device).float()  # (B, 3, H, W)
        feats.append(encoder(x).float().flatten(1).cpu())  # (B, D)
        if isinstance(batch, (tuple, list)) and len(batch) > 1:
            labels.append(torch.as_tensor(batch[1]).long().cpu())  # (B,)
    encoder.train(was_training)
    if not feats:
        raise ValueError("the loader yielded no batches")
    return torch.cat(feats), (torch.cat(labels) if labels else None)


def linear_probe(train_feats: torch.Tensor, train_labels: torch.Tensor, test_feats: torch.Tensor,
                 test_labels: torch.Tensor, num_classes: int = 10, epochs: int = 100, lr: float = 1e-3,
                 weight_decay: float = 1e-4, batch_size: int = 256, seed: int = 0) -> Dict[str, object]:
    """Train ``Linear(D, num_classes)`` on frozen features with Adam and cross-entropy.

    Mini-batches are cut from the feature tensors in memory, so 100 epochs take seconds.
    Returns ``{"train_accuracy": %, "test_accuracy": %, "loss": [mean loss per epoch]}``.
    """
    if train_feats.ndim != 2 or test_feats.ndim != 2 or train_feats.shape[1] != test_feats.shape[1]:
        raise ValueError(f"expected features (N, D) with the same D, obtained {tuple(train_feats.shape)} "
                         f"and {tuple(test_feats.shape)}")
    if train_labels.shape[0] != train_feats.shape[0] or test_labels.shape[0] != test_feats.shape[0]:
        raise ValueError("expected one label per feature row")
    if int(train_labels.max()) >= num_classes or int(train_labels.min()) < 0:
        raise ValueError(f"labels must lie in [0, {num_classes}); obtained "
                         f"[{int(train_labels.min())}, {int(train_labels.max())}]")
    device = train_feats.device
    with torch.random.fork_rng(devices=[]):  # the probe's initialisation does not touch global RNG state
        torch.manual_seed(seed)
        classifier = nn.Linear(train_feats.shape[1], num_classes).to(device)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    x, y = train_feats.float(), train_labels.long().to(device)  # (N, D), (N,)
    losses: List[float] = []
    for _ in progress(range(epochs), desc="linear probe", unit="epoch", leave=False):
        order = torch.randperm(x.shape[0], generator=generator).to(device)  # (N,)
        total = 0.0
        for start in range(0, x.shape[0], batch_size):
            idx = order[start : start + batch_size]  # (B,)
            loss = F.cross_entropy(classifier(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * idx.numel()
        losses.append(total / x.shape[0])
    with torch.no_grad():
        train_acc = (classifier(x).argmax(1) == y).float().mean().item() * 100
        test_acc = (classifier(test_feats.float().to(device)).argmax(1) == test_labels.to(device)).float().mean().item() * 100
    return {"train_accuracy": train_acc, "test_accuracy": test_acc, "loss": losses}


def probe_image_encoder(encoder: nn.Module, train_loader: Iterable, test_loader: Iterable, device=None,
                        num_classes: int = 10, **probe_kwargs) -> Dict[str, object]:
    """Extract frozen features of both loaders once, then :func:`linear_probe` them.

    Probe the CLIP-trained ``model.image_encoder`` and, as a control, a fresh ImageNet backbone
    (``create_image_encoder("resnet50")``): the difference is what CLIP training added.
    """
    train_feats, train_labels = extract_features(encoder, train_loader, device)
    test_feats, test_labels = extract_features(encoder, test_loader, device)
    if train_labels is None or test_labels is None:
        raise ValueError("the probe needs labelled loaders that yield (images, labels)")
    return linear_probe(train_feats, train_labels, test_feats, test_labels, num_classes=num_classes, **probe_kwargs)
