"""Text-to-image retrieval evaluation of a CLIP-style model: embeddings in batches, Recall@k with each image
counted once, chance level (see course_utils.clip for the training side)."""
from __future__ import annotations

from typing import Dict, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import normalize_imagenet


def prepare_images(images: torch.Tensor, device=None) -> torch.Tensor:
    """Raw images (uint8, or float in [0, 1]) (B, 3, H, W) -> ImageNet-normalised float on ``device``."""
    if device is not None:
        images = images.to(device, non_blocking=True)
    if images.dtype != torch.uint8:
        low, high = torch.aminmax(images.detach())
        if low.item() < -1e-3 or high.item() > 1 + 1e-3:
            raise ValueError(
                f"expected raw images (uint8, or float in [0, 1]); these range over [{low.item():.2f}, "
                f"{high.item():.2f}], as if already normalised. Pass the images as the dataset stores them: "
                f"the harness applies normalize_imagenet itself."
            )
    return normalize_imagenet(images)  # (B, 3, H, W)


def _device_of(module: nn.Module) -> torch.device:
    param = next(module.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


# --------------------------------------------------------------------------------------
# Retrieval evaluation
# --------------------------------------------------------------------------------------
@torch.no_grad()
def compute_image_embeddings(model: nn.Module, images: torch.Tensor, batch_size: int = 256, device=None) -> torch.Tensor:
    """``model.encode_image`` over raw images (N, 3, H, W) in batches, eval mode; returns (N, embed_dim) on the CPU."""
    device = torch.device(device) if device is not None else _device_of(model)
    was_training = model.training
    model.eval()
    out = [model.encode_image(prepare_images(images[i : i + batch_size], device)).float().cpu()  # (B, E)
           for i in range(0, images.shape[0], batch_size)]
    model.train(was_training)
    return torch.cat(out)  # (N, E)


@torch.no_grad()
def compute_text_embeddings(model: nn.Module, text_features: torch.Tensor, batch_size: int = 1024, device=None) -> torch.Tensor:
    """``model.encode_text_features`` over frozen text features (M, text_dim); returns (M, embed_dim) on the CPU."""
    device = torch.device(device) if device is not None else _device_of(model)
    was_training = model.training
    model.eval()
    out = [model.encode_text_features(text_features[i : i + batch_size].to(device)).float().cpu()  # (B, E)
           for i in range(0, text_features.shape[0], batch_size)]
    model.train(was_training)
    return torch.cat(out)  # (M, E)


def recall_at_k(text_emb: torch.Tensor, image_emb: torch.Tensor, caption_to_image: torch.Tensor,
                ks: Sequence[int] = (1, 5, 10)) -> Dict[str, float]:
    """Text-to-image Recall@k in percent: how often a caption's own image is among its k best images.

    Args:
        text_emb: (M, E) embeddings of M captions (several captions may share an image).
        image_emb: (N, E) embeddings of N *unique* images (each image once, not once per caption).
        caption_to_image: long (M,), the row of ``image_emb`` that caption m describes.
        ks: the k values.

    Similarity is the cosine (rows are L2-normalised here). A tie with the right image counts
    against the caption, so a model that maps everything to one point scores 0, not 100.
    Returns ``{"R@1": ..., "R@5": ..., "R@10": ...}``.
    """
    if text_emb.ndim != 2 or image_emb.ndim != 2 or text_emb.shape[1] != image_emb.shape[1]:
        raise ValueError(f"expected text (M, E) and image (N, E) embeddings, obtained {tuple(text_emb.shape)} "
                         f"and {tuple(image_emb.shape)}")
    caption_to_image = torch.as_tensor(caption_to_image, dtype=torch.long, device=text_emb.device)
    if caption_to_image.shape != (text_emb.shape[0],):
        raise ValueError(f"expected caption_to_image of shape ({text_emb.shape[0]},), obtained {tuple(caption_to_image.shape)}")
    n_images = image_emb.shape[0]
    if caption_to_image.numel() and (caption_to_image.min() < 0 or caption_to_image.max() >= n_images):
        raise ValueError(f"caption_to_image must index the {n_images} images (0..{n_images - 1})")
    t = F.normalize(text_emb.float(), dim=-1)  # (M, E)
    v = F.normalize(image_emb.float().to(t.device), dim=-1)  # (N, E)
    sims = t @ v.T  # (M, N)
    own = sims.gather(1, caption_to_image[:, None])  # (M, 1): similarity to the right image
    rank = (sims >= own).sum(dim=1) - 1  # (M,): other images at least as similar (0 = ranked first)
    return {f"R@{k}": (rank < k).float().mean().item() * 100 for k in ks}


def chance_recall(k: int, n_images: int) -> float:
    """Recall@k in percent of a model that ranks images at random: ``min(k, N) / N``."""
    if n_images < 1:
        raise ValueError(f"n_images must be positive, obtained {n_images}")
    return 100.0 * min(k, n_images) / n_images


def evaluate_retrieval(model: nn.Module, images: torch.Tensor, text_features: torch.Tensor,
                       caption_to_image: torch.Tensor, ks: Sequence[int] = (1, 5, 10), device=None) -> Dict[str, float]:
    """Recall@k of ``model`` on a held-out split, with chance levels (``"chance@k"``) beside them.

    Typical use: ``caps, c2i = data.val.flat_captions()``;
    ``evaluate_retrieval(model, data.val.images, precompute_text_features(text_encoder, caps), c2i)``.
    """
    image_emb = compute_image_embeddings(model, images, device=device)  # (N, E)
    text_emb = compute_text_embeddings(model, text_features, device=device)  # (M, E)
    result = recall_at_k(text_emb, image_emb, caption_to_image, ks)
    result.update({f"chance@{k}": chance_recall(k, images.shape[0]) for k in ks})
    return result
