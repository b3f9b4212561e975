"""Visible sanity checks of the CLIP problem set, run by the notebook's test cells.

They check what the assignment text states (shapes, unit-norm embeddings, the loss on hand-made
examples whose value you can work out on paper, which weights a training step may change) and
explain failures in words you can act on. Passing them is a good sign, not a grade: the
autograder runs its own, more thorough, hidden checks.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from . import CheckFailed, _call, _ok, _one_thread, _require, _shape, _visible, count_parameters
from ..probes.simple_clip import RigImageEncoder, RigRetrievalModel, RigTextEncoder

__all__ = ["CheckFailed", "check_projection_head", "check_clip_model", "check_retrieve_images"]

def _norms(x: torch.Tensor) -> str:
    n = x.norm(dim=-1)
    return f"row norms in [{n.min().item():.4f}, {n.max().item():.4f}]"


def _require_unit_rows(x: torch.Tensor, what: str, hint: str) -> None:
    ok = bool(torch.allclose(x.norm(dim=-1), torch.ones(x.shape[0]), atol=1e-4))
    _require(ok, f"every row of {what} to have L2 norm 1", _norms(x), hint)


@_visible
@_one_thread
def check_projection_head(ProjectionHead) -> None:  # noqa: N803 - the student's class
    """ProjectionHead(12, 16) on a (4, 12) input: one Linear (208 parameters), unit-norm (4, 16) rows."""
    print("Checking ProjectionHead:")
    torch.manual_seed(0)
    head = _call("ProjectionHead", ProjectionHead, 12, 16)
    _require(isinstance(head, nn.Module), "ProjectionHead(12, 16) to create a torch.nn.Module", type(head).__name__)
    n = count_parameters(head)
    _require(n == 12 * 16 + 16, "208 parameters (one nn.Linear(12, 16): 12 x 16 weights + 16 biases)", f"{n:,}",
             "The head is a single linear layer followed by L2 normalisation.")
    _ok(f"{n} parameters: one Linear(12, 16)")
    x = 5 * torch.randn(4, 12)
    with torch.no_grad():
        out = _call("ProjectionHead.forward", head, x)
    _require(tuple(out.shape) == (4, 16), "output shape (4, 16) for an input of shape (4, 12)", _shape(out))
    _ok("output shape (4, 16)")
    _require_unit_rows(out, "the output", "Divide each row by its own L2 norm (dim=-1), e.g. F.normalize(x, dim=-1).")
    _ok("every output row has L2 norm 1")
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    if len(linears) == 1:
        with torch.no_grad():
            lin = linears[0](x)
            want = lin / lin.norm(dim=-1, keepdim=True)
        _require(torch.allclose(out, want, atol=1e-5), "the L2-normalised output of your Linear layer",
                 "other values", "Nothing goes between the Linear layer and the normalisation (no activation).")
        _ok("output = Linear(x) / ||Linear(x)||")
    with torch.no_grad():
        default = _call("ProjectionHead", ProjectionHead, 12)(x)
    _require(tuple(default.shape) == (4, 256), "output shape (4, 256) from ProjectionHead(12) (projection_dim defaults to 256)",
             _shape(default))
    _ok("projection_dim defaults to 256")
    print("ProjectionHead: visible checks passed.")


VOCAB = ["a", "dog", "cat", "runs", "sleeps", "on", "the", "grass", "sofa"]


def _tiny_clip(CLIPModel, **kwargs):  # noqa: N803
    torch.manual_seed(0)
    model = _call("CLIPModel", CLIPModel, RigImageEncoder(6), RigTextEncoder(VOCAB, 5), **kwargs)
    _require(isinstance(model, nn.Module), "CLIPModel(...) to create a torch.nn.Module", type(model).__name__)
    return model


def _loss(model, i, t) -> float:
    value = _call("CLIPModel.contrastive_loss", model.contrastive_loss, torch.as_tensor(i), torch.as_tensor(t),
                  hint="The loss must work for any batch size: take the number of pairs from the embeddings.")
    _require(torch.is_tensor(value) and value.ndim == 0, "contrastive_loss to return a scalar tensor",
             f"{type(value).__name__} {tuple(value.shape) if torch.is_tensor(value) else ''}")
    return float(value)


@_visible
@_one_thread
def check_clip_model(CLIPModel) -> None:  # noqa: N803
    """Embeddings on tiny encoders, the loss on hand-made pairs, and one training step."""
    print("Checking CLIPModel:")
    model = _tiny_clip(CLIPModel, embed_dim=8)
    for attr in ("image_encoder", "text_encoder", "image_projection", "text_projection"):
        _require(isinstance(getattr(model, attr, None), nn.Module), f"an attribute model.{attr} (a module)",
                 "none" if not hasattr(model, attr) else type(getattr(model, attr)).__name__)
    images, text_features = torch.randn(4, 3, 8, 8), torch.randn(4, 5)
    with torch.no_grad():
        img = _call("CLIPModel.encode_image", model.encode_image, images,
                    hint="encode_image projects the image encoder's features (image_encoder.out_dim = 6 here) with "
                         "self.image_projection, built as ProjectionHead(image_encoder.out_dim, embed_dim).")
        txt = _call("CLIPModel.encode_text_features", model.encode_text_features, text_features,
                    hint="encode_text_features projects text features (text_encoder.out_dim = 5 here) with "
                         "self.text_projection, built as ProjectionHead(text_encoder.out_dim, embed_dim).")
    _require(tuple(img.shape) == (4, 8) and tuple(txt.shape) == (4, 8),
             "encode_image and encode_text_features to return shape (4, 8) with embed_dim=8",
             f"{_shape(img)} and {_shape(txt)}")
    _require_unit_rows(img, "encode_image's output", "Use your ProjectionHead, which normalises its output.")
    _require_unit_rows(txt, "encode_text_features's output", "Use your ProjectionHead, which normalises its output.")
    _ok("encode_image / encode_text_features give unit-norm (4, 8) embeddings")

    # Two pairs of orthogonal unit vectors: every log-term of equations 1 and 3 equals log(1 + e^(-1/tau)).
    eye = [[1.0, 0.0], [0.0, 1.0]]
    hot = _tiny_clip(CLIPModel, embed_dim=8, temperature=0.5)
    got, want = _loss(hot, eye, eye), math.log1p(math.exp(-1 / 0.5))
    hint = ""
    if abs(got - math.log1p(math.exp(-0.5))) < 1e-4:
        hint = "That is log(1 + e^(-tau)): you multiply by the temperature instead of dividing by it."
    elif abs(got - 2 * want) < 1e-4:
        hint = "That is twice the loss: average the two directions instead of adding them."
    elif abs(got - math.log1p(math.exp(-1 / 0.07))) < 1e-4:
        hint = "That is the loss at tau = 0.07: use self.temperature, not a fixed 0.07."
    _require(abs(got - want) < 1e-4, f"log(1 + e^(-1/0.5)) = {want:.6f} for two orthogonal unit pairs with tau = 0.5",
             f"{got:.6f}", hint)
    _ok(f"loss of two orthogonal unit pairs at tau = 0.5: {got:.6f} = log(1 + e^(-2))")
    scaled = _loss(hot, [[3.0, 0.0], [0.0, 3.0]], [[0.5, 0.0], [0.0, 0.5]])
    _require(abs(scaled - want) < 1e-4, f"the same loss ({want:.6f}) when the embeddings are multiplied by 3 and 0.5",
             f"{scaled:.6f}", "L2-normalise both embeddings inside the loss: only their directions may matter.")
    other = [[1.0, 0.0], [0.6, 0.8]]
    rows = torch.tensor([[3.0], [0.5]])
    plain, stretched = _loss(hot, eye, other), _loss(hot, rows * torch.tensor(eye), rows.flip(0) * torch.tensor(other))
    _require(abs(plain - stretched) < 1e-4, f"the same loss ({plain:.6f}) when each row is multiplied by its own number",
             f"{stretched:.6f}", "Normalise each embedding on its own: F.normalize(x, dim=-1), not over the batch.")
    _ok("the loss ignores the length of the embeddings")
    forward, backward = _loss(hot, eye, other), _loss(hot, other, eye)
    _require(abs(forward - backward) < 1e-5, "contrastive_loss(I, T) == contrastive_loss(T, I)",
             f"{forward:.6f} and {backward:.6f}",
             "Average the image-to-text loss (equation 1) and the text-to-image loss (equation 3).")
    _ok("the loss is symmetric in images and texts")

    # One optimiser step over the trainable parameters, text features computed by the text encoder.
    model = _tiny_clip(CLIPModel, embed_dim=8).train()
    text_before = [p.detach().clone() for p in model.text_encoder.parameters()]
    image_before = [p.detach().clone() for p in model.image_encoder.parameters()]
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    ids = torch.tensor([[1, 2, 4], [1, 3, 4], [2, 5, 9], [6, 7, 8]])  # token ids of four captions
    loss = _call("CLIPModel.forward", model, images, model.text_encoder(ids))
    _require(torch.is_tensor(loss) and loss.ndim == 0, "forward(images, text_features) to return the loss as a scalar tensor",
             f"{type(loss).__name__} {tuple(loss.shape) if torch.is_tensor(loss) else ''}")
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    _require(all(torch.equal(a, b) for a, b in zip(text_before, model.text_encoder.parameters())),
             "the text encoder to stay frozen", "its weights changed after a training step",
             "Call text_encoder.requires_grad_(False) in __init__.")
    _require(any(not torch.equal(a, b) for a, b in zip(image_before, model.image_encoder.parameters())),
             "the image encoder to be trained", "its weights did not change after a training step",
             "The loss must reach the image encoder: no torch.no_grad() or .detach() in encode_image.")
    _ok("a training step changes the image encoder and leaves the text encoder frozen")
    print("CLIPModel: visible checks passed.")


@_visible
@_one_thread
def check_retrieve_images(retrieve_images) -> None:
    """Five images with hand-made embeddings and the query "red": the best three by cosine similarity."""
    print("Checking retrieve_images:")
    model = RigRetrievalModel(["red", "green", "blue"], text_dim=3, embed_dim=3)
    with torch.no_grad():  # "red" -> (1, 0, 0), "green" -> (0, 1, 0), "blue" -> (0, 0, 1)
        model.text_encoder.embedding.weight.copy_(torch.cat([torch.zeros(1, 3), torch.eye(3)]))
        model.text_projection.weight.copy_(torch.eye(3))
        model.text_projection.bias.zero_()
    names = ["red.jpg", "dark_red.jpg", "orange.jpg", "purple.jpg", "green.jpg"]
    embeddings = torch.tensor([[2.0, 0.0, 0.0],   # cosine with "red": 1.000, dot product 2.0
                               [0.1, 0.01, 0.0],  # 0.995, dot 0.1: nearly the same direction, but short
                               [3.0, 3.0, 0.0],   # 0.707, dot 3.0: long, half red
                               [1.0, 0.0, 1.2],   # 0.640, dot 1.0
                               [0.0, 1.0, 0.0]])  # 0.000
    got = _call("retrieve_images", retrieve_images, model, embeddings, "red", names, k=3,
                hint="Rank one score per image (a 1-D tensor of N scores) and keep the k best.")
    _require(isinstance(got, (list, tuple)) and all(isinstance(n, str) for n in got),
             "a list of file names", repr(got)[:120], "Return [image_filenames[i] for i in ...], not indices.")
    _require(len(got) == 3, "3 file names with k=3", f"{len(got)}")
    _ok("returns k file names")
    want, raw = ["red.jpg", "dark_red.jpg", "orange.jpg"], ["orange.jpg", "red.jpg", "purple.jpg"]
    hint = ("That is the ranking by raw dot products: L2-normalise the image embeddings first." if list(got) == raw
            else "the right images in the wrong order: sort best first (torch.topk does)." if sorted(got) == sorted(want)
            else "")
    _require(list(got) == want, f"{want} (highest cosine similarity first)", f"{list(got)}", hint)
    _ok(f"query 'red' -> {want}")
    default = _call("retrieve_images", retrieve_images, model, embeddings.repeat(2, 1), "green",
                    [f"{i}_{n}" for i in range(2) for n in names], hint="k defaults to 9.")
    _require(len(default) == 9, "9 file names with the default k", f"{len(default)}")
    _ok("k defaults to 9")
    print("retrieve_images: visible checks passed.")
