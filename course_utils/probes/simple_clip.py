"""Kernel-side probes of problem set "simple_clip".

A probe runs the student's objects on inputs the grader chose and returns plain observations
(tensors, numbers, strings). It judges nothing and holds no solution: the verdict is computed by
the grader in its own process. The small modules below are *test rigs* (deliberately not the
problem set's backbones): encoders small enough that a check runs in milliseconds, rebuilt by the
grader from the same weights. The visible checks (``course_utils.checks.simple_clip``) use them too.
"""
from __future__ import annotations

import traceback
from typing import Dict, List, Sequence, Union

import torch
from torch import nn

# --------------------------------------------------------------------------------------
# Test rigs
# --------------------------------------------------------------------------------------


class RigImageEncoder(nn.Module):
    """A one-convolution image encoder: (B, 3, H, W) -> (B, out_dim), with ``out_dim`` like the course's."""

    def __init__(self, out_dim: int = 6):
        super().__init__()
        self.conv = nn.Conv2d(3, out_dim, 3, padding=1)
        self.out_dim = int(out_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(images)).mean(dim=(2, 3))  # (B, out_dim)


class RigTextEncoder(nn.Module):
    """A bag-of-words text encoder: a caption -> the mean of one vector per known word.

    It takes what the course's ``TextEncoder`` takes: a list of captions (or one string), or a
    batch from :meth:`tokenize` (``{"input_ids", "attention_mask"}``), or a tensor of token ids.
    Unlike the course's encoder it is *not* frozen when it is built.
    """

    def __init__(self, vocab: Sequence[str], out_dim: int = 5):
        super().__init__()
        self.vocab = {word: i + 1 for i, word in enumerate(vocab)}  # 0 = unknown word / padding
        self.embedding = nn.Embedding(len(vocab) + 1, out_dim)
        self.out_dim = int(out_dim)

    def tokenize(self, captions: Union[str, Sequence[str]], max_length: int = 200) -> Dict[str, torch.Tensor]:
        if isinstance(captions, str):
            captions = [captions]
        ids = [[self.vocab.get(w, 0) for w in c.lower().replace(",", " ").replace(".", " ").split()][:max_length] or [0]
               for c in captions]
        length = max(len(i) for i in ids)
        input_ids = torch.tensor([i + [0] * (length - len(i)) for i in ids], dtype=torch.long)  # (B, L)
        return {"input_ids": input_ids, "attention_mask": (input_ids > 0).long()}

    def forward(self, captions, max_length: int = 200) -> torch.Tensor:
        if isinstance(captions, (str, list, tuple)):
            captions = self.tokenize(captions, max_length)
        if isinstance(captions, dict):
            ids, mask = captions["input_ids"], captions.get("attention_mask")
        else:
            ids, mask = captions, None
        ids = ids.to(self.embedding.weight.device)
        mask = (ids > 0) if mask is None else mask.to(ids.device).bool()  # (B, L)
        vectors = self.embedding(ids) * mask[..., None]  # (B, L, D)
        return vectors.sum(1) / mask.sum(1, keepdim=True).clamp(min=1)  # (B, D)


class RigRetrievalModel(nn.Module):
    """A model with every attribute and method of the notebook's ``CLIPModel`` (so that ``retrieve_images``
    may take the device from any of them): ``image_encoder``, ``text_encoder``, ``image_projection``,
    ``text_projection``, ``temperature``, ``encode_image``, ``encode_text_features``. The text side is the
    grader's (a fixed linear map of the text features; *not* normalised, which changes no ranking but means
    that ``retrieve_images`` must normalise what it compares); the image side is never needed for a ranking
    from precomputed image embeddings."""

    def __init__(self, vocab: Sequence[str], text_dim: int, embed_dim: int, image_dim: int = 6):
        super().__init__()
        self.text_encoder = RigTextEncoder(vocab, text_dim)
        self.text_projection = nn.Linear(text_dim, embed_dim)
        self.image_encoder = RigImageEncoder(image_dim)  # registered after the text side: the grader's
        self.image_projection = nn.Linear(image_dim, embed_dim)  # parameters are the first four
        self.temperature = 1.0

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return self.image_projection(self.image_encoder(images))  # (B, E)

    def encode_text_features(self, text_features: torch.Tensor) -> torch.Tensor:
        return self.text_projection(text_features)  # (B, E)

    def forward(self, images: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("retrieve_images does not need to run the model's forward (the contrastive loss)")


def load_params(module: nn.Module, params) -> nn.Module:
    """Copy ``params`` (in ``parameters()`` order) into ``module``."""
    with torch.no_grad():
        for p, v in zip(module.parameters(), params):
            p.copy_(v)
    return module


def _params(module: nn.Module) -> list:
    return [p.detach().cpu().clone() for p in module.parameters()]


def _error(exc: BaseException, what: str) -> str:
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return f"{what} raised an error when the grader ran it: {last}"


def _tensor(value):
    """A student's return value as a detached CPU float tensor (a number becomes a 0-d tensor)."""
    if torch.is_tensor(value):
        return value.detach().cpu().float()
    return torch.tensor(float(value))


# --------------------------------------------------------------------------------------
# Probes
# --------------------------------------------------------------------------------------


def probe_projection_head(objects: dict, inputs: dict) -> dict:
    """``ProjectionHead(embedding_dim, projection_dim)`` and ``ProjectionHead(embedding_dim)`` on grader inputs."""
    cls = objects["ProjectionHead"]
    x = inputs["x"]  # (B, embedding_dim)
    out = {}
    torch.manual_seed(int(inputs["seed"]))
    head = cls(int(inputs["embedding_dim"]), int(inputs["projection_dim"]))
    if not isinstance(head, nn.Module):
        return {"error": f"ProjectionHead(...) should create a torch.nn.Module, obtained a {type(head).__name__}."}
    head = head.cpu().float().eval()
    with torch.no_grad():
        out["output"] = _tensor(head(x.clone()))
    out["params"] = _params(head)
    try:
        default = cls(int(inputs["embedding_dim"])).cpu().float().eval()
        with torch.no_grad():
            out["default_output_shape"] = list(default(x.clone()).shape)
    except Exception as exc:
        out["default_error"] = _error(exc, f"ProjectionHead({int(inputs['embedding_dim'])}) (default projection_dim)")
    return out


def _rig_encoders(inputs: dict):
    image_encoder = load_params(RigImageEncoder(int(inputs["image_dim"])), inputs["image_encoder"])
    text_encoder = load_params(RigTextEncoder(inputs["vocab"], int(inputs["text_dim"])), inputs["text_encoder"])
    return image_encoder, text_encoder


def probe_clip_model(objects: dict, inputs: dict) -> dict:
    """Build ``CLIPModel`` on rig encoders; report its embeddings, losses on grader embeddings and
    the weights after one SGD step over its trainable parameters. Each part runs on its own, so one
    failing part does not hide the others."""
    cls = objects["CLIPModel"]
    seed = int(inputs["seed"])
    out: dict = {}

    def build(**kwargs):
        torch.manual_seed(seed)
        image_encoder, text_encoder = _rig_encoders(inputs)
        model = cls(image_encoder, text_encoder, **kwargs)
        if not isinstance(model, nn.Module):
            raise TypeError(f"CLIPModel(...) should create a torch.nn.Module, obtained a {type(model).__name__}")
        return model.cpu()

    # 1. Embeddings of images and text features (embed_dim given, then the default).
    stage = "CLIPModel(...)"
    try:
        model = build(embed_dim=int(inputs["embed_dim"])).eval()
        out["head_shapes"] = {name: [list(p.shape) for p in getattr(model, name).parameters()]
                              for name in ("image_projection", "text_projection")
                              if isinstance(getattr(model, name, None), nn.Module)}
        with torch.no_grad():
            stage = "encode_image"
            out["image_emb"] = _tensor(model.encode_image(inputs["images"].clone()))
            stage = "encode_text_features"
            out["text_emb"] = _tensor(model.encode_text_features(inputs["text_features"].clone()))
            stage = "forward"
            loss = model(inputs["images"].clone(), inputs["text_features"].clone())
        out["forward_is_scalar"] = bool(torch.is_tensor(loss) and loss.ndim == 0)
        out["forward"] = _tensor(loss).reshape(-1)[:1]
        temperature = getattr(model, "temperature", None)
        if isinstance(temperature, (int, float)) or (torch.is_tensor(temperature) and temperature.numel() == 1):
            out["temperature"] = float(temperature)
        default = build().eval()
        with torch.no_grad():
            out["default_image_shape"] = list(default.encode_image(inputs["images"].clone()).shape)
            out["default_text_shape"] = list(default.encode_text_features(inputs["text_features"].clone()).shape)
    except Exception as exc:
        out["encode_error"] = _error(exc, f"CLIPModel ({stage})")
        out["encode_stage"] = stage

    # 2. contrastive_loss on embeddings the grader chose, at two temperatures.
    try:
        losses = {}
        for name, kwargs in (("default", {}), ("other", {"temperature": float(inputs["other_temperature"])})):
            model = build(embed_dim=int(inputs["embed_dim"]), **kwargs).eval()
            with torch.no_grad():
                losses[name] = [_tensor(model.contrastive_loss(i.clone(), t.clone())).reshape(-1)[:1]
                                for i, t in inputs["loss_pairs"]]
        out["losses"] = losses
    except Exception as exc:
        out["loss_error"] = _error(exc, "CLIPModel.contrastive_loss")

    # 3. One SGD step over the trainable parameters, text features computed through the text encoder.
    try:
        model = build(embed_dim=int(inputs["embed_dim"])).train()
        image_head, text_head = _params(model.image_projection), _params(model.text_projection)
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.SGD(trainable, lr=float(inputs["lr"]))
        text_features = model.text_encoder(inputs["token_ids"].clone())  # (B, text_dim)
        loss = model(inputs["images"].clone(), text_features)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        out["step"] = {"image_encoder": _params(model.image_encoder), "text_encoder": _params(model.text_encoder),
                       "image_head_before": image_head, "image_head_after": _params(model.image_projection),
                       "text_head_before": text_head, "text_head_after": _params(model.text_projection)}
    except Exception as exc:
        out["step_error"] = _error(exc, "A training step of CLIPModel")
    return out


def _names(value) -> List[str]:
    """The file names a retrieval returned (a list, or the first item of a ``(names, scores)`` pair)."""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], (list, tuple)):
        value = value[0]
    if torch.is_tensor(value) or not isinstance(value, (list, tuple)):
        return [f"<{type(value).__name__}>"]
    return [v if isinstance(v, str) else f"<{type(v).__name__} {v!r}>"[:60] for v in value][:1000]


def probe_retrieve_images(objects: dict, inputs: dict) -> dict:
    """Run ``retrieve_images`` with a rig model on the grader's embeddings and queries."""
    retrieve_images = objects["retrieve_images"]
    torch.manual_seed(int(inputs.get("seed", 0)))
    model = RigRetrievalModel(inputs["vocab"], int(inputs["text_dim"]), int(inputs["embed_dim"]))
    load_params(model, inputs["model"]).eval()  # the text side (its first parameters)
    filenames = list(inputs["filenames"])
    out = {}
    for key, embeddings, k in (("default_k", "unit_embeddings", None), ("small_k", "unit_embeddings", inputs["small_k"]),
                               ("scaled", "scaled_embeddings", None)):
        results = []
        try:
            for query in inputs["queries"]:
                args = (model, inputs[embeddings].clone(), query, list(filenames))
                results.append(_names(retrieve_images(*args) if k is None else retrieve_images(*args, k=int(k))))
        except Exception as exc:
            out[f"{key}_error"] = _error(exc, "retrieve_images")
            continue
        out[key] = results
    return out
