"""Visible checks of "contrastive_shapes", run by the notebook's test cells (see course_utils.checks).

They check what the notebook text states (shapes, parameter counts, value ranges, what a view may change,
the loss and the neighbours of hand-made examples you can work out on paper) and explain failures in words
you can act on. Passing them is a good sign, not a grade: the autograder runs its own, more thorough, hidden
checks.
"""
from __future__ import annotations

import torch
from torch import nn

from ..probes.contrastive_shapes import _indices, count_torch_calls, measure_crop, ramp_images
from . import CheckFailed, _call, _ok, _one_thread, _require, _shape, _visible, count_parameters

__all__ = ["CheckFailed", "check_conv_autoencoder", "check_make_views", "check_triplet_loss",
           "check_nearest_neighbours"]

PARAMETERS = {64: 350_259, 32: 153_043}  # ConvAutoencoder(image_size=...) as the notebook's table gives it


@_visible
@_one_thread
def check_conv_autoencoder(ConvAutoencoder) -> None:  # noqa: N803 - the student's class
    """ConvAutoencoder(image_size=64) and (image_size=32): parameters, embedding and reconstruction shapes, ranges."""
    print("Checking ConvAutoencoder:")
    for size, params in PARAMETERS.items():
        torch.manual_seed(0)
        model = _call(f"ConvAutoencoder(image_size={size})", ConvAutoencoder, image_size=size)
        _require(isinstance(model, nn.Module), "ConvAutoencoder(...) to create a torch.nn.Module", type(model).__name__)
        n = count_parameters(model.eval())
        _require(n == params, f"{params:,} parameters for image_size={size}", f"{n:,}",
                 "Stage i (from 0) has 8 * 2**i channels; every conv has kernel 4, stride 2, padding 1; the encoder "
                 "ends with Linear(channels * 4 * 4, 128), the decoder starts with Linear(128, channels * 4 * 4).")
        x = torch.rand(2, 3, size, size)
        with torch.no_grad():
            z = _call("ConvAutoencoder.encode", model.encode, x)
            out = _call("ConvAutoencoder.forward", model, x)
        _require(tuple(z.shape) == (2, 128), f"encode to give shape (2, 128) for images of shape {tuple(x.shape)}",
                 _shape(z))
        _require(tuple(out.shape) == tuple(x.shape), f"forward to give shape {tuple(x.shape)}", _shape(out))
        _require(bool(((out > 0) & (out < 1)).all()), "reconstructed pixels strictly between 0 and 1",
                 f"values in [{out.min().item():.3g}, {out.max().item():.3g}]", "The decoder ends with a Sigmoid.")
        _ok(f"image_size={size}: {n:,} parameters, embedding (2, 128), reconstruction {tuple(out.shape)} in (0, 1)")
    _require(bool((z < 0).any()), "some negative embedding values (nothing follows the encoder's last Linear)",
             f"all of them >= 0 (minimum {z.min().item():.3g})", "Do not put an activation after the last Linear.")
    _ok("the embedding is the last Linear's output (it has negative values)")
    print("ConvAutoencoder: visible checks passed.")


def _check_calls(make_views, kind: str) -> None:
    small, large = torch.rand(2, 3, 16, 16), torch.rand(16, 3, 16, 16)
    n_small = count_torch_calls(make_views, small, kind)[1]
    n_large = count_torch_calls(make_views, large, kind)[1]
    _require(n_large <= n_small + 2, f"make_views(images, {kind!r}) to do as many torch operations for 16 images as "
             f"for 2 (no Python loop over the images)", f"{n_small} for 2 images and {n_large} for 16",
             "Draw the parameters of all images at once (torch.rand(B)) and transform the whole batch together.")


@_visible
@_one_thread
def check_make_views(make_views) -> None:
    """Crops of images whose pixels say where they come from, and recoloured shapes."""
    print("Checking make_views:")
    torch.manual_seed(0)
    b, s = 16, 32
    ramps = ramp_images(b, s)  # channel 0: the pixel's column, 1: its row, 2: the image's number
    given = ramps.clone()
    views = _call("make_views(images, 'crop')", make_views, given, "crop")
    _require(torch.is_tensor(views) and tuple(views.shape) == (b, 3, s, s),
             f"make_views(images, 'crop') to give a tensor of shape ({b}, 3, {s}, {s})",
             _shape(views) if torch.is_tensor(views) else type(views).__name__)
    _require(torch.equal(given, ramps), "the images given to make_views to stay unchanged", "they changed (in place)")
    fits = [measure_crop(views[i]) for i in range(b)]
    own = [abs(f["image"] - (i + 1) / (b + 1)) < 0.4 / (b + 1) for i, f in enumerate(fits)]
    _require(all(own), "every view to come from its own image", f"{own.count(False)} of {b} views from another image",
             "Keep the batch in order: view i is a crop of image i.")
    tol = 1.0 / s + 2e-3
    for i, f in enumerate(fits):
        _require(max(f["residual_x"], f["residual_y"]) < tol and f["scale_x"] > 0 and f["scale_y"] > 0,
                 "every view to be an axis-aligned crop of its image resized to the full size (no flip, no rotation, "
                 "nothing outside the image)", f"view {i} is not",
                 "Use one affine map per image: theta = [[s, 0, tx], [0, s, ty]].")
        _require(abs(f["scale_x"] - f["scale_y"]) < 2.5 / s, "square crops",
                 f"view {i}: {f['scale_x']:.2f} of the width by {f['scale_y']:.2f} of the height",
                 "Use the same s for both axes.")
        side = (f["scale_x"] + f["scale_y"]) / 2
        _require(0.3 - 1.5 / s <= side <= 1 + 1.5 / s, "crop sides between 0.3 and 1 of the image side",
                 f"view {i}: {side:.2f}")
        for a in "xy":
            _require(f[f"start_{a}"] > -0.5 / s - 0.01 and f[f"start_{a}"] + f[f"scale_{a}"] < 1 + 0.5 / s + 0.01,
                     "every crop inside the image", f"view {i} reaches from {f[f'start_{a}']:.2f} to "
                     f"{f[f'start_{a}'] + f[f'scale_{a}']:.2f} of the side along {a}",
                     "A crop of side s fits when its centre lies in [-(1 - s), 1 - s] (affine_grid's coordinates).")
    sides = sorted(round((f["scale_x"] + f["scale_y"]) / 2, 2) for f in fits)
    _require(len(set(sides)) > b // 2, "a different crop for every image", f"sides {sides}",
             "Draw one side and one position per image.")
    _ok(f"{b} square crops of their own images, sides from {sides[0]:.2f} to {sides[-1]:.2f}, all inside the image")
    _check_calls(make_views, "crop")
    _ok("crop: no Python loop over the images")

    from ..contrastive import SHAPES_OPTIONS
    from ..data.shapes import generate_shapes

    images = generate_shapes(8, image_size=s, seed=3, cache=False, **SHAPES_OPTIONS).images.float() / 255
    given = images.clone()
    views = _call("make_views(images, 'recolor')", make_views, given, "recolor")
    _require(torch.is_tensor(views) and views.shape == images.shape,
             f"make_views(images, 'recolor') to give a tensor of shape {tuple(images.shape)}",
             _shape(views) if torch.is_tensor(views) else type(views).__name__)
    _require(torch.equal(given, images), "the images given to make_views to stay unchanged", "they changed (in place)",
             "Build a new tensor; do not write into `images`.")
    brightness = images.amax(dim=1)  # (B, S, S): what a recolouring keeps
    _require(torch.allclose(views.amax(dim=1), brightness, atol=2e-3),
             "every pixel to keep its brightness (the largest of its three channels)",
             f"brightness changed by up to {(views.amax(dim=1) - brightness).abs().max().item():.3f}",
             "Multiply the brightness by a colour whose largest channel is 1.")
    hues = []
    for i in range(len(images)):
        p = int(brightness[i].flatten().argmax())
        colour = views[i].flatten(1)[:, p] / brightness[i].flatten()[p]  # (3,) this view's colour
        _require(torch.allclose(views[i], brightness[i] * colour[:, None, None], atol=2e-3),
                 "each view to be brightness x one colour", f"view {i} is not",
                 "Every pixel of an image gets the same colour, scaled by its brightness.")
        _require(abs(colour.max().item() - 1) < 0.02 and colour.min().item() < 0.02,
                 "a fully saturated colour (largest channel 1, smallest 0)",
                 f"view {i}: RGB ({colour[0]:.2f}, {colour[1]:.2f}, {colour[2]:.2f})", "Use hue_colours(hues).")
        hues.append(tuple(round(c, 2) for c in colour.tolist()))
    _require(len(set(hues)) > len(hues) // 2, "a different colour for every image", f"colours {hues}",
             "Draw one hue per image: torch.rand(B).")
    _ok("recolor: brightness x one random hue colour per image")
    _check_calls(make_views, "recolor")
    _ok("recolor: no Python loop over the images")
    print("make_views: visible checks passed.")


@_visible
@_one_thread
def check_triplet_loss(triplet_loss) -> None:
    """Two triplets on a line, worked out on paper."""
    print("Checking triplet_loss:")
    anchor = torch.tensor([[0.0, 0.0], [0.0, 0.0]], requires_grad=True)
    positive = torch.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    negative = torch.tensor([[0.0, 2.0], [1.1, 0.0]], requires_grad=True)
    # distances: positive 1 and 1; negative 2 and 1.1. Terms: max(1 - 2 + 0.3, 0) = 0, max(1 - 1.1 + 0.3, 0) = 0.2.
    value = _call("triplet_loss", triplet_loss, anchor, positive, negative)
    _require(torch.is_tensor(value) and value.ndim == 0, "a 0-d tensor (one number)",
             f"{type(value).__name__} {tuple(value.shape) if torch.is_tensor(value) else ''}",
             "Average over the batch with .mean().")
    got = float(value.detach())
    hint = ""
    if abs(got - 0.045) < 1e-4:
        hint = "That is the loss with squared distances: use the distances themselves (.norm(dim=1))."
    elif abs(got - 0.2) < 1e-4:
        hint = "That is the sum over the batch: take the mean."
    elif abs(got + 0.25) < 1e-4:
        hint = "That is without the hinge: clamp every term at 0 (max(., 0)) before averaging."
    elif abs(got - 0.85) < 1e-4:
        hint = "That is with the positive and the negative swapped."
    elif abs(got) < 1e-6:
        hint = ("Is the margin subtracted instead of added, or the hinge max(., 0) applied after averaging instead "
                "of to each triplet?")
    _require(abs(got - 0.1) < 1e-4, "(max(1 - 2 + 0.3, 0) + max(1 - 1.1 + 0.3, 0)) / 2 = 0.1 with the default "
             "margin 0.3", f"{got:.6f}", hint)
    _ok("two triplets, margin 0.3: loss 0.1")
    got = float(torch.as_tensor(_call("triplet_loss", triplet_loss, anchor, positive, negative, margin=1.0)).detach())
    _require(abs(got - 0.45) < 1e-4, "(max(1 - 2 + 1, 0) + max(1 - 1.1 + 1, 0)) / 2 = 0.45 with margin=1.0",
             f"{got:.6f}", "Use the margin argument.")
    _ok("margin=1.0: loss 0.45")
    # One triplet off the axes: distances 1 (from (0.6, 0.8)) and 1.2 (from (1.2, 0)); term 1 - 1.2 + 0.3 = 0.1.
    a, p, n = torch.zeros(1, 2), torch.tensor([[0.6, 0.8]]), torch.tensor([[1.2, 0.0]])
    got = float(torch.as_tensor(_call("triplet_loss", triplet_loss, a, p, n)).detach().reshape(-1)[0])
    hint = ("That is with the L1 distance (|x| + |y|): use the L2 distance, .norm(dim=1)." if abs(got - 0.5) < 1e-4
            else "Take each row's distance (.norm(dim=1)), not the norm over the batch." if abs(got - 0.55) < 1e-4
            else "")
    _require(abs(got - 0.1) < 1e-4, "max(1 - 1.2 + 0.3, 0) = 0.1 for a = (0, 0), p = (0.6, 0.8), n = (1.2, 0)",
             f"{got:.6f}", hint)
    _ok("one triplet off the axes: loss 0.1 (L2 distances)")
    _require(value.requires_grad, "a loss that carries gradients back to the embeddings",
             "a tensor cut off from its inputs", "Compute the loss with torch operations (no .item(), .detach(), numpy).")
    value.backward()
    _require(negative.grad is not None and float(negative.grad.abs().sum()) > 0,
             "gradients to reach the negative", "none", "Compute the loss with torch operations (no .item()).")
    _ok("gradients flow back to the embeddings")
    print("triplet_loss: visible checks passed.")


@_visible
@_one_thread
def check_nearest_neighbours(nearest_neighbours) -> None:
    """Seven 2-D embeddings and the query (1, 0): the three nearest by cosine similarity."""
    print("Checking nearest_neighbours:")
    for query, copy in ((3, 0), (0, 3)):  # the query's exact copy before it, then after it
        rows = {copy: [1.0, 0.0],  # an exact copy of the query: cosine 1
                1: [10.0, 0.3],    # cosine 0.9996 but long: far away in L2 distance
                2: [0.6, 0.5],     # cosine 0.77, but the closest in L2 distance
                query: [1.0, 0.0],
                4: [0.0, 1.0],     # cosine 0
                5: [3.0, 1.0],     # cosine 0.95
                6: [-1.0, 0.0]}    # cosine -1
        embeddings = torch.tensor([rows[i] for i in range(7)])
        got = _call("nearest_neighbours", nearest_neighbours, embeddings, query, k=3,
                    hint="Rank one similarity per row (a 1-D tensor of N values) and keep the k best.")
        got = _indices(got)
        want = [copy, 1, 5]
        hint = ("That is the ranking by L2 distance: compare the L2-normalised embeddings (cosine similarity)."
                if got == [copy, 2, 4] else
                "That is the ranking by raw dot products: L2-normalise the embeddings first." if got == [1, 5, copy]
                else "The query itself must not be among its neighbours (set its similarity to -inf); its exact copy "
                     "must." if query in got else "")
        _require(got == want, f"indices {want} (its copy, then cosine 0.9996, then 0.95) for query {query} with k=3",
                 f"{got}", hint)
    _ok("query (1, 0): its copy, then (10, 0.3), then (3, 1): the query itself left out")
    default = _call("nearest_neighbours", nearest_neighbours, embeddings, 0)
    _require(len(_indices(default)) == 5, "5 indices with the default k", f"{_indices(default)}")
    _ok("k defaults to 5")
    print("nearest_neighbours: visible checks passed.")
