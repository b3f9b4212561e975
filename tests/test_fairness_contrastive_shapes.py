"""Fairness corpus of problem set "contrastive_shapes": CORRECT solutions in the styles the notebook's text
allows must all get full marks, and the CLASSIC MISTAKES (each a single change of a correct solution) must each
lose points on their own unit, at least half of them (the mistakes below all break what the text states), with a
message that names the problem in words a student can act on.

The solutions were written from the released student notebook only (its markdown and the cells marked
``# YOUR CODE HERE``): Part 1's layer rule and table, Part 2's two bullets and hints, Part 3's formula and
contract, Part 4's paragraph. Every case is graded in-process by the kit's hidden tests
(``autograder.core.run_unit``) with three seeds, since the hidden inputs are drawn per student; the same corpus
then goes through the visible checks, which must pass every correct solution and catch what they can.
"""
from __future__ import annotations

import contextlib
import io
import math
from collections import OrderedDict

import pytest
import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from autograder import contrastive_shapes as cs
from units import full_marks_problems, mistake_problems
from course_utils.contrastive import hue_colours

SEEDS = (11, 20261123, 987654321)


# =====================================================================================================
# ConvAutoencoder: correct solutions
# =====================================================================================================

def _channels(image_size):
    return [3] + [8 * 2 ** i for i in range(int(math.log2(image_size // 4)))]


class AESequentialLoop(nn.Module):
    """Two nn.Sequential built in loops, nn.Flatten / nn.Unflatten."""

    def __init__(self, image_size=64):
        super().__init__()
        ch = _channels(image_size)
        enc = []
        for a, b in zip(ch, ch[1:]):
            enc += [nn.Conv2d(a, b, kernel_size=4, stride=2, padding=1), nn.ReLU()]
        self.encoder = nn.Sequential(*enc, nn.Flatten(), nn.Linear(ch[-1] * 16, 128))
        dec = [nn.Linear(128, ch[-1] * 16), nn.ReLU(), nn.Unflatten(1, (ch[-1], 4, 4))]
        rev = ch[::-1]
        for i, (a, b) in enumerate(zip(rev, rev[1:])):
            dec += [nn.ConvTranspose2d(a, b, 4, 2, 1), nn.Sigmoid() if i == len(rev) - 2 else nn.ReLU()]
        self.decoder = nn.Sequential(*dec)

    def encode(self, x):
        return self.encoder(x)

    def forward(self, x):
        return self.decoder(self.encode(x))


class AEModuleLists(nn.Module):
    """ModuleLists and F.relu / torch.sigmoid in the methods; the decoder's layers declared first."""

    def __init__(self, image_size=64):
        super().__init__()
        ch = _channels(image_size)
        self.up_fc = nn.Linear(128, ch[-1] * 16)
        self.ups = nn.ModuleList([nn.ConvTranspose2d(a, b, 4, 2, 1) for a, b in zip(ch[::-1], ch[::-1][1:])])
        self.downs = nn.ModuleList([nn.Conv2d(a, b, 4, 2, 1) for a, b in zip(ch, ch[1:])])
        self.down_fc = nn.Linear(ch[-1] * 16, 128)
        self.c = ch[-1]

    def encode(self, x):
        for conv in self.downs:
            x = F.relu(conv(x))
        return self.down_fc(x.flatten(1))

    def forward(self, x):
        z = F.relu(self.up_fc(self.encode(x))).reshape(-1, self.c, 4, 4)
        for i, up in enumerate(self.ups):
            z = up(z)
            z = torch.sigmoid(z) if i == len(self.ups) - 1 else F.relu(z)
        return z


class _Encoder(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.convs = nn.Sequential(*[m for a, b in zip(ch, ch[1:]) for m in (nn.Conv2d(a, b, 4, 2, 1), nn.ReLU())])
        self.fc = nn.Linear(ch[-1] * 4 * 4, 128)

    def forward(self, x):
        return self.fc(torch.flatten(self.convs(x), start_dim=1))


class _Decoder(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.c = ch[-1]
        self.fc = nn.Linear(128, self.c * 16)
        rev = ch[::-1]
        layers = []
        for a, b in zip(rev, rev[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1), nn.ReLU()]
        layers[-1] = nn.Sigmoid()
        self.deconvs = nn.Sequential(*layers)

    def forward(self, z):
        return self.deconvs(torch.relu(self.fc(z)).view(z.shape[0], self.c, 4, 4))


class AETwoClasses(nn.Module):
    """An Encoder and a Decoder class of their own."""

    def __init__(self, image_size=64):
        super().__init__()
        ch = _channels(image_size)
        self.enc = _Encoder(ch)
        self.dec = _Decoder(ch)

    def encode(self, x):
        return self.enc(x)

    def forward(self, x):
        return self.dec(self.enc(x))


class AEWhileLoop(nn.Module):
    """Stages counted with a while loop halving the side; an OrderedDict of named layers."""

    def __init__(self, image_size=64):
        super().__init__()
        layers, side, c_in, c_out, i = OrderedDict(), image_size, 3, 8, 0
        while side > 4:
            layers[f"conv{i}"] = nn.Conv2d(c_in, c_out, 4, 2, 1)
            layers[f"relu{i}"] = nn.ReLU()
            side, c_in, c_out, i = side // 2, c_out, c_out * 2, i + 1
        layers["flatten"] = nn.Flatten()
        layers["embed"] = nn.Linear(c_in * 16, 128)
        self.encoder = nn.Sequential(layers)
        dec, c = OrderedDict(), c_in
        dec["fc"] = nn.Linear(128, c * 16)
        dec["fc_relu"] = nn.ReLU()
        dec["unflatten"] = nn.Unflatten(1, (c, 4, 4))
        j = 0
        while c > 8:
            dec[f"deconv{j}"] = nn.ConvTranspose2d(c, c // 2, 4, 2, 1)
            dec[f"relu{j}"] = nn.ReLU()
            c, j = c // 2, j + 1
        dec["out"] = nn.ConvTranspose2d(8, 3, 4, 2, 1)
        dec["sigmoid"] = nn.Sigmoid()
        self.decoder = nn.Sequential(dec)

    def encode(self, x):
        return self.encoder(x)

    def forward(self, x):
        return self.decoder(self.encoder(x))


class AEModuleDict(nn.Module):
    """A ModuleDict, layers looked up by name, a decode method."""

    def __init__(self, image_size=64):
        super().__init__()
        self.ch = _channels(image_size)
        self.n = len(self.ch) - 1
        layers = {f"down{i}": nn.Conv2d(self.ch[i], self.ch[i + 1], 4, 2, 1) for i in range(self.n)}
        layers.update({f"up{i}": nn.ConvTranspose2d(self.ch[i + 1], self.ch[i], 4, 2, 1) for i in range(self.n)})
        layers["to_embedding"] = nn.Linear(self.ch[-1] * 16, 128)
        layers["from_embedding"] = nn.Linear(128, self.ch[-1] * 16)
        self.layers = nn.ModuleDict(dict(sorted(layers.items())))

    def encode(self, x):
        for i in range(self.n):
            x = F.relu(self.layers[f"down{i}"](x))
        return self.layers["to_embedding"](x.reshape(x.shape[0], -1))

    def decode(self, z):
        z = F.relu(self.layers["from_embedding"](z)).reshape(-1, self.ch[-1], 4, 4)
        for i in reversed(range(self.n)):
            z = self.layers[f"up{i}"](z)
            z = F.relu(z) if i > 0 else torch.sigmoid(z)
        return z

    def forward(self, x):
        return self.decode(self.encode(x))


class AEInplaceReLU(AESequentialLoop):
    """ReLU(inplace=True) everywhere, a Sigmoid module kept as an attribute."""

    def __init__(self, image_size=64):
        super().__init__(image_size)
        for seq in (self.encoder, self.decoder):
            for i, m in enumerate(seq):
                if isinstance(m, nn.ReLU):
                    seq[i] = nn.ReLU(inplace=True)


class AEFunctionalHead(nn.Module):
    """Conv stacks in Sequentials, the two Linear layers as attributes, sigmoid via torch.special.expit."""

    def __init__(self, image_size=64):
        super().__init__()
        ch = _channels(image_size)
        self.convs = nn.Sequential(*[m for a, b in zip(ch, ch[1:]) for m in (nn.Conv2d(a, b, 4, 2, 1), nn.ReLU())])
        self.linear_in = nn.Linear(ch[-1] * 16, 128)
        self.linear_out = nn.Linear(128, ch[-1] * 16)
        rev = ch[::-1]
        ups = [m for a, b in zip(rev, rev[1:]) for m in (nn.ConvTranspose2d(a, b, 4, 2, 1), nn.ReLU())]
        self.deconvs = nn.Sequential(*ups[:-1])
        self.c = ch[-1]

    def encode(self, x):
        return self.linear_in(self.convs(x).flatten(1))

    def forward(self, x):
        h = self.linear_out(self.encode(x)).clamp(min=0).view(-1, self.c, 4, 4)
        return torch.special.expit(self.deconvs(h))


class AELastLayerApart(nn.Module):
    """The decoder's last ConvTranspose2d registered first, on its own; stages counted with bit_length."""

    def __init__(self, image_size=64):
        super().__init__()
        n = (image_size // 4).bit_length() - 1  # log2(image_size / 4) for a power of two
        ch = [3] + [8 << i for i in range(n)]
        self.to_rgb = nn.ConvTranspose2d(ch[1], 3, kernel_size=4, stride=2, padding=1)
        self.down = nn.Sequential(*[m for a, b in zip(ch, ch[1:]) for m in (nn.Conv2d(a, b, 4, 2, 1), nn.ReLU())])
        self.embed = nn.Linear(ch[-1] * 16, 128)
        self.unembed = nn.Linear(128, ch[-1] * 16)
        self.up = nn.Sequential(*[m for a, b in zip(ch[:0:-1], ch[-2:0:-1]) for m in (nn.ConvTranspose2d(a, b, 4, 2, 1),
                                                                                   nn.ReLU())])
        self.shape = (ch[-1], 4, 4)

    def encode(self, x):
        return self.embed(self.down(x).view(x.size(0), -1))

    def forward(self, x):
        h = torch.relu(self.unembed(self.encode(x))).view(x.size(0), *self.shape)
        return torch.sigmoid(self.to_rgb(self.up(h)))


# =====================================================================================================
# make_views: correct solutions
# =====================================================================================================

def _grid_crop(images, align_corners=False):
    b = images.shape[0]
    s = torch.empty(b).uniform_(0.3, 1.0)
    t = (torch.rand(b, 2) * 2 - 1) * (1 - s)[:, None]
    zero = torch.zeros(b)
    theta = torch.stack([torch.stack([s, zero, t[:, 0]], 1), torch.stack([zero, s, t[:, 1]], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta, list(images.shape), align_corners=align_corners)
    return F.grid_sample(images, grid, mode="bilinear", align_corners=align_corners)


def _recolour(images):
    v = images.max(dim=1, keepdim=True).values
    return v * hue_colours(torch.rand(images.shape[0]))[:, :, None, None]


def views_stack_theta(images, kind):
    """theta built with torch.stack; torch.empty(...).uniform_; max(...).values."""
    if kind == "crop":
        return _grid_crop(images)
    return _recolour(images)


def views_align_corners(images, kind):
    """affine_grid / grid_sample with align_corners=True."""
    if kind == "crop":
        return _grid_crop(images, align_corners=True)
    return _recolour(images)


def views_roi_align(images, kind):
    """torchvision.ops.roi_align with one box per image."""
    b, _, s, _ = images.shape
    if kind == "crop":
        side = (0.3 + 0.7 * torch.rand(b)) * s
        x0, y0 = torch.rand(b) * (s - side), torch.rand(b) * (s - side)
        boxes = torch.stack([torch.arange(b, dtype=torch.float32), x0, y0, x0 + side, y0 + side], dim=1)
        return torchvision.ops.roi_align(images, boxes, output_size=(s, s), spatial_scale=1.0, aligned=True)
    return _recolour(images)


def views_gather_nearest(images, kind):
    """Integer source pixels per output pixel (nearest neighbour), two gathers."""
    b, c, s, _ = images.shape
    if kind == "crop":
        side = (0.3 + 0.7 * torch.rand(b)) * s
        left, top = torch.rand(b) * (s - side), torch.rand(b) * (s - side)
        u = (torch.arange(s) + 0.5) / s
        cols = (left[:, None] + u * side[:, None]).long().clamp(0, s - 1)
        rows = (top[:, None] + u * side[:, None]).long().clamp(0, s - 1)
        out = images.gather(2, rows[:, None, :, None].expand(b, c, s, s))
        return out.gather(3, cols[:, None, None, :].expand(b, c, s, s))
    return _recolour(images)


def views_meshgrid(images, kind):
    """The sampling grid written by hand from a meshgrid of output coordinates."""
    b, _, s, _ = images.shape
    if kind == "crop":
        side = 0.3 + 0.7 * torch.rand(b, 1, 1)
        cx, cy = ((2 * torch.rand(b, 1, 1) - 1) * (1 - side) for _ in range(2))
        lin = (torch.arange(s) + 0.5) / s * 2 - 1  # pixel centres in [-1, 1]
        gy, gx = torch.meshgrid(lin, lin, indexing="ij")
        grid = torch.stack([cx + side * gx, cy + side * gy], dim=-1)  # (B, S, S, 2)
        return F.grid_sample(images, grid, align_corners=False)
    return _recolour(images)


def _hsv_full(h):
    """Hue -> RGB at full saturation and value, written from the HSV formula."""
    k = (torch.stack([5 + 6 * h, 3 + 6 * h, 1 + 6 * h], dim=1)) % 6
    return 1 - torch.clamp(torch.minimum(k, 4 - k), 0, 1)


def views_own_hsv(images, kind):
    """Its own HSV-to-RGB instead of hue_colours; einsum to paint."""
    if kind == "crop":
        return _grid_crop(images)
    v = images.amax(dim=1)  # (B, S, S)
    return torch.einsum("bhw,bc->bchw", v, _hsv_full(torch.rand(images.shape[0])))


def views_device_aware(images, kind):
    """Everything drawn on the images' device, in the images' dtype; the views clamped to [0, 1]."""
    b, dev = images.shape[0], images.device
    if kind == "crop":
        s = torch.rand(b, device=dev, dtype=images.dtype) * 0.7 + 0.3
        theta = torch.zeros(b, 2, 3, device=dev, dtype=images.dtype)
        theta[:, 0, 0] = theta[:, 1, 1] = s
        theta[:, :, 2] = (1 - s).unsqueeze(1) * torch.empty(b, 2, device=dev).uniform_(-1, 1)
        out = F.grid_sample(images, F.affine_grid(theta, images.size(), align_corners=False), align_corners=False)
        return out.clamp(0, 1)
    colours = hue_colours(torch.rand(b, device=dev)).to(images.dtype)
    return (images.amax(1, keepdim=True) * colours.view(b, 3, 1, 1)).clamp(0, 1)


def views_dict_dispatch(images, kind):
    """A dictionary of the two view makers; an error for an unknown kind."""
    makers = {"crop": _grid_crop, "recolor": _recolour}
    if kind not in makers:
        raise ValueError(kind)
    return makers[kind](images.clone())


# =====================================================================================================
# triplet_loss: correct solutions
# =====================================================================================================

def tl_library(anchor, positive, negative, margin=0.3):
    return F.triplet_margin_loss(anchor, positive, negative, margin=margin, p=2)


def tl_module(anchor, positive, negative, margin=0.3):
    return nn.TripletMarginLoss(margin=margin, p=2)(anchor, positive, negative)


def tl_pairwise(anchor, positive, negative, margin=0.3):
    return torch.clamp(F.pairwise_distance(anchor, positive) - F.pairwise_distance(anchor, negative) + margin,
                       min=0).mean()


def tl_sqrt(anchor, positive, negative, margin=0.3):
    d_ap = ((anchor - positive) ** 2).sum(dim=-1).sqrt()
    d_an = ((anchor - negative) ** 2).sum(dim=-1).sqrt()
    return torch.maximum(d_ap - d_an + margin, torch.zeros_like(d_ap)).mean()


def tl_vector_norm(anchor, positive, negative, margin=0.3):
    d = torch.linalg.vector_norm(anchor - positive, dim=1) - torch.linalg.vector_norm(anchor - negative, dim=1)
    return (d + margin).clamp_min(0).mean()


def tl_cdist_diagonal(anchor, positive, negative, margin=0.3):
    d_ap = torch.cdist(anchor, positive, compute_mode="donot_use_mm_for_euclid_dist").diagonal()
    d_an = torch.cdist(anchor, negative, compute_mode="donot_use_mm_for_euclid_dist").diagonal()
    return F.relu(d_ap - d_an + margin).mean()


def tl_where_sum(anchor, positive, negative, margin=0.3):
    terms = torch.norm(anchor - positive, p=2, dim=1) - torch.norm(anchor - negative, p=2, dim=1) + margin
    return torch.where(terms > 0, terms, torch.zeros_like(terms)).sum() / anchor.shape[0]


def tl_stacked(anchor, positive, negative, margin=0.3):
    d = (anchor.unsqueeze(0) - torch.stack([positive, negative])).norm(dim=-1)  # (2, B)
    return F.relu(d[0] - d[1] + margin).mean(dim=0)


# =====================================================================================================
# nearest_neighbours: correct solutions
# =====================================================================================================

def nn_topk(embeddings, query_index, k=5):
    unit = F.normalize(embeddings, dim=-1)
    sim = unit @ unit[query_index]
    sim[query_index] = -float("inf")
    return torch.topk(sim, k).indices


def nn_argsort(embeddings, query_index, k=5):
    sim = F.cosine_similarity(embeddings, embeddings[query_index].unsqueeze(0), dim=1)
    sim[query_index] = -2.0
    return torch.argsort(sim, descending=True)[:k]


def nn_l2_of_unit_rows(embeddings, query_index, k=5):
    unit = embeddings / embeddings.norm(dim=1, keepdim=True)
    dist = (unit - unit[query_index]).pow(2).sum(dim=1)
    dist[query_index] = float("inf")
    return dist.topk(k, largest=False).indices


def nn_matrix(embeddings, query_index, k=5):
    unit = F.normalize(embeddings, dim=1)
    sims = unit @ unit.T
    sims.fill_diagonal_(float("-inf"))
    return sims[query_index].topk(k).indices


def nn_masked_fill(embeddings, query_index, k=5):
    unit = F.normalize(embeddings, dim=-1)
    sim = unit @ unit[query_index]
    sim = sim.masked_fill(torch.arange(len(sim)) == query_index, float("-inf"))
    return sim.topk(k).indices


def nn_sort(embeddings, query_index, k=5):
    unit = F.normalize(embeddings, dim=-1)
    sim = (unit * unit[query_index]).sum(dim=1)
    sim[query_index] = float("-inf")
    return torch.sort(sim, descending=True).indices[:k]


def nn_list(embeddings, query_index, k=5):
    unit = F.normalize(embeddings, dim=-1)
    sim = torch.einsum("nd,d->n", unit, unit[query_index]).clone()
    sim[query_index] = float("-inf")
    return sim.topk(k).indices.tolist()


def nn_remove_then_map(embeddings, query_index, k=5):
    keep = torch.cat([torch.arange(query_index), torch.arange(query_index + 1, len(embeddings))])
    unit = F.normalize(embeddings, dim=-1)
    sim = unit[keep] @ unit[query_index]
    return keep[sim.topk(k).indices]


# =====================================================================================================
# classic mistakes
# =====================================================================================================

class AEReluEmbedding(AESequentialLoop):
    def encode(self, x):
        return F.relu(self.encoder(x))


class AENoSigmoid(AESequentialLoop):
    def __init__(self, image_size=64):
        super().__init__(image_size)
        self.decoder[-1] = nn.Identity()


class AEAlways64(AESequentialLoop):
    def __init__(self, image_size=64):
        super().__init__(64)


class AEChannelsFrom16(nn.Module):
    def __init__(self, image_size=64):
        super().__init__()
        n = int(math.log2(image_size // 4))
        ch = [3] + [16 * 2 ** i for i in range(n)]
        self.encoder = nn.Sequential(*[m for a, b in zip(ch, ch[1:]) for m in (nn.Conv2d(a, b, 4, 2, 1), nn.ReLU())],
                                     nn.Flatten(), nn.Linear(ch[-1] * 16, 128))
        rev = ch[::-1]
        ups = [m for a, b in zip(rev, rev[1:]) for m in (nn.ConvTranspose2d(a, b, 4, 2, 1), nn.ReLU())]
        self.decoder = nn.Sequential(nn.Linear(128, ch[-1] * 16), nn.ReLU(), nn.Unflatten(1, (ch[-1], 4, 4)),
                                     *ups[:-1], nn.Sigmoid())

    def encode(self, x):
        return self.encoder(x)

    def forward(self, x):
        return self.decoder(self.encoder(x))


class AENoReluAfterDecoderLinear(AESequentialLoop):
    def __init__(self, image_size=64):
        super().__init__(image_size)
        self.decoder[1] = nn.Identity()


def views_loop(images, kind):
    return torch.stack([views_stack_theta(x[None], kind)[0] for x in images])


def views_mean_brightness(images, kind):
    if kind == "crop":
        return _grid_crop(images)
    return images.mean(dim=1, keepdim=True) * hue_colours(torch.rand(len(images)))[:, :, None, None]


def views_random_rgb(images, kind):
    if kind == "crop":
        return _grid_crop(images)
    return images.amax(dim=1, keepdim=True) * torch.rand(len(images), 3)[:, :, None, None]


def views_one_hue_per_batch(images, kind):
    if kind == "crop":
        return _grid_crop(images)
    return images.amax(dim=1, keepdim=True) * hue_colours(torch.rand(1))[:, :, None, None]


def views_one_crop_per_batch(images, kind):
    if kind != "crop":
        return _recolour(images)
    s = 0.3 + 0.7 * torch.rand(())
    t = (2 * torch.rand(2) - 1) * (1 - s)
    theta = torch.tensor([[s, 0.0, t[0]], [0.0, s, t[1]]]).expand(len(images), 2, 3)
    return F.grid_sample(images, F.affine_grid(theta, list(images.shape), align_corners=False), align_corners=False)


def views_rectangles(images, kind):
    if kind != "crop":
        return _recolour(images)
    b = len(images)
    s = 0.3 + 0.7 * torch.rand(b, 2)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = s[:, 0], s[:, 1]
    theta[:, :, 2] = (1 - s) * (2 * torch.rand(b, 2) - 1)
    return F.grid_sample(images, F.affine_grid(theta, list(images.shape), align_corners=False), align_corners=False)


def views_centre_anywhere(images, kind):
    if kind != "crop":
        return _recolour(images)
    b = len(images)
    s = 0.3 + 0.7 * torch.rand(b)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = s
    theta[:, :, 2] = 2 * torch.rand(b, 2) - 1
    return F.grid_sample(images, F.affine_grid(theta, list(images.shape), align_corners=False), align_corners=False)


def views_simclr_scale(images, kind):
    if kind != "crop":
        return _recolour(images)
    b = len(images)
    s = torch.empty(b).uniform_(0.08, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = s
    theta[:, :, 2] = (1 - s)[:, None] * (2 * torch.rand(b, 2) - 1)
    return F.grid_sample(images, F.affine_grid(theta, list(images.shape), align_corners=False), align_corners=False)


def views_with_flip(images, kind):
    view = views_stack_theta(images, kind)
    if kind != "crop":
        return view
    return torch.where(torch.rand(len(images))[:, None, None, None] < 0.5, view.flip(-1), view)


def views_in_place(images, kind):
    if kind == "crop":
        return _grid_crop(images)
    images.copy_(_recolour(images))
    return images


def views_channel_shuffle(images, kind):
    return _grid_crop(images) if kind == "crop" else images[:, torch.randperm(3)]


def nn_drop_first(embeddings, query_index, k=5):
    unit = F.normalize(embeddings, dim=-1)
    return (unit @ unit[query_index]).topk(k + 1).indices[1:]


def nn_keeps_query(embeddings, query_index, k=5):
    unit = F.normalize(embeddings, dim=-1)
    return (unit @ unit[query_index]).topk(k).indices


def nn_raw_l2(embeddings, query_index, k=5):
    d = (embeddings - embeddings[query_index]).norm(dim=1)
    d[query_index] = float("inf")
    return d.topk(k, largest=False).indices


def nn_raw_dot(embeddings, query_index, k=5):
    s = embeddings @ embeddings[query_index]
    s[query_index] = float("-inf")
    return s.topk(k).indices


def nn_farthest(embeddings, query_index, k=5):
    unit = F.normalize(embeddings, dim=-1)
    s = unit @ unit[query_index]
    s[query_index] = float("inf")
    return s.topk(k, largest=False).indices


def nn_values_and_indices(embeddings, query_index, k=5):
    unit = F.normalize(embeddings, dim=-1)
    s = unit @ unit[query_index]
    s[query_index] = float("-inf")
    return s.topk(k)


def nn_normalised_over_batch(embeddings, query_index, k=5):
    unit = F.normalize(embeddings, dim=0)
    s = unit @ unit[query_index]
    s[query_index] = float("-inf")
    return s.topk(k).indices


def _tl(distance, hinge=F.relu, reduce=torch.mean, sign=1.0, fixed_margin=None, swap=False):
    """A triplet loss with one part of the formula changed."""
    def loss(anchor, positive, negative, margin=0.3):
        m = margin if fixed_margin is None else fixed_margin
        pos, neg = (negative, positive) if swap else (positive, negative)
        return reduce(hinge(distance(anchor, pos) - distance(anchor, neg) + sign * m))
    return loss


def _l2(a, b):
    return (a - b).norm(dim=1)


def tl_item(anchor, positive, negative, margin=0.3):
    return torch.tensor(F.relu(_l2(anchor, positive) - _l2(anchor, negative) + margin).mean().item())


def tl_normalised_inside(anchor, positive, negative, margin=0.3):
    a, p, n = (F.normalize(t, dim=1) for t in (anchor, positive, negative))
    return F.relu(_l2(a, p) - _l2(a, n) + margin).mean()


def tl_hinge_after_mean(anchor, positive, negative, margin=0.3):
    return F.relu((_l2(anchor, positive) - _l2(anchor, negative) + margin).mean())


# =====================================================================================================
# the corpus
# =====================================================================================================

CS_CORRECT = [
    *[("test_conv_autoencoder", name, {"ConvAutoencoder": cls}) for name, cls in (
        ("ae-sequential-loop", AESequentialLoop), ("ae-modulelists-decoder-first", AEModuleLists),
        ("ae-two-classes", AETwoClasses), ("ae-while-loop-ordereddict", AEWhileLoop),
        ("ae-moduledict-decode", AEModuleDict), ("ae-inplace-relu", AEInplaceReLU),
        ("ae-functional-head-expit", AEFunctionalHead),
        ("ae-last-layer-apart-bit-length", AELastLayerApart))],
    *[("test_make_views", name, {"make_views": fn}) for name, fn in (
        ("views-stack-theta", views_stack_theta), ("views-align-corners", views_align_corners),
        ("views-roi-align", views_roi_align), ("views-gather-nearest", views_gather_nearest),
        ("views-meshgrid", views_meshgrid), ("views-own-hsv-einsum", views_own_hsv),
        ("views-device-aware-clamped", views_device_aware), ("views-dict-dispatch", views_dict_dispatch))],
    *[("test_triplet_loss", name, {"triplet_loss": fn}) for name, fn in (
        ("tl-F.triplet_margin_loss", tl_library), ("tl-nn.TripletMarginLoss", tl_module),
        ("tl-pairwise-distance-clamp", tl_pairwise), ("tl-sqrt-maximum", tl_sqrt),
        ("tl-vector-norm-clamp-min", tl_vector_norm), ("tl-cdist-diagonal", tl_cdist_diagonal),
        ("tl-where-sum-over-B", tl_where_sum), ("tl-stacked-distances", tl_stacked))],
    *[("test_nearest_neighbours", name, {"nearest_neighbours": fn}) for name, fn in (
        ("nn-topk", nn_topk), ("nn-argsort-cosine-similarity", nn_argsort), ("nn-l2-of-unit-rows", nn_l2_of_unit_rows),
        ("nn-matrix-fill-diagonal", nn_matrix), ("nn-masked-fill", nn_masked_fill), ("nn-sort", nn_sort),
        ("nn-einsum-list", nn_list), ("nn-remove-then-map", nn_remove_then_map))],
]

# (unit, id, objects, keywords): every mistake below breaks what the notebook's text states, so it must lose at
# least half of its unit's points, and one of the failing checks' messages must hold one of the keywords.
CS_MISTAKES = [
    ("test_conv_autoencoder", "ae-relu-after-embedding", {"ConvAutoencoder": AEReluEmbedding},
     ["activation after the last Linear"]),
    ("test_conv_autoencoder", "ae-no-sigmoid", {"ConvAutoencoder": AENoSigmoid}, ["Sigmoid"]),
    ("test_conv_autoencoder", "ae-ignores-image-size", {"ConvAutoencoder": AEAlways64}, ["image_size=32"]),
    ("test_conv_autoencoder", "ae-channels-from-16", {"ConvAutoencoder": AEChannelsFrom16}, ["8 * 2**i channels"]),
    ("test_conv_autoencoder", "ae-no-relu-after-decoder-linear", {"ConvAutoencoder": AENoReluAfterDecoderLinear},
     ["Linear(128, channels * 4 * 4), ReLU"]),
    ("test_make_views", "views-python-loop", {"make_views": views_loop}, ["torch calls for 4 images"]),
    ("test_make_views", "views-mean-brightness", {"make_views": views_mean_brightness}, ["mean of the three channels"]),
    ("test_make_views", "views-random-rgb", {"make_views": views_random_rgb}, ["not a hue at full saturation"]),
    ("test_make_views", "views-one-hue-per-batch", {"make_views": views_one_hue_per_batch}, ["different colours"]),
    ("test_make_views", "views-one-crop-per-batch", {"make_views": views_one_crop_per_batch}, ["crop sides only from"]),
    ("test_make_views", "views-rectangles", {"make_views": views_rectangles}, ["not square"]),
    ("test_make_views", "views-centre-anywhere", {"make_views": views_centre_anywhere}, ["outside the image"]),
    ("test_make_views", "views-simclr-scale-0.08", {"make_views": views_simclr_scale}, ["crop sides of"]),
    ("test_make_views", "views-random-flip", {"make_views": views_with_flip}, ["flipped"]),
    ("test_make_views", "views-in-place", {"make_views": views_in_place}, ["changed the images it was given"]),
    ("test_make_views", "views-channel-shuffle", {"make_views": views_channel_shuffle}, ["not brightness x one colour"]),
    ("test_triplet_loss", "tl-squared-distances", {"triplet_loss": _tl(lambda a, b: ((a - b) ** 2).sum(1))},
     ["squared distances"]),
    ("test_triplet_loss", "tl-no-hinge", {"triplet_loss": _tl(_l2, hinge=lambda x: x)}, ["clamp"]),
    ("test_triplet_loss", "tl-hinge-after-mean", {"triplet_loss": tl_hinge_after_mean}, ["after averaging"]),
    ("test_triplet_loss", "tl-sum", {"triplet_loss": _tl(_l2, reduce=torch.sum)}, ["sum over the batch"]),
    ("test_triplet_loss", "tl-max", {"triplet_loss": _tl(_l2, reduce=torch.max)}, ["largest term"]),
    ("test_triplet_loss", "tl-swapped", {"triplet_loss": _tl(_l2, swap=True)}, ["swapped"]),
    ("test_triplet_loss", "tl-margin-subtracted", {"triplet_loss": _tl(_l2, sign=-1.0)}, ["subtract the margin"]),
    ("test_triplet_loss", "tl-margin-fixed", {"triplet_loss": _tl(_l2, fixed_margin=0.3)},
     ["ignore the margin argument"]),
    ("test_triplet_loss", "tl-item", {"triplet_loss": tl_item}, ["no gradient"]),
    ("test_triplet_loss", "tl-normalised-inside", {"triplet_loss": tl_normalised_inside}, ["normalise the embeddings"]),
    ("test_triplet_loss", "tl-l1", {"triplet_loss": _tl(lambda a, b: (a - b).abs().sum(1))}, ["L1 distance"]),
    ("test_triplet_loss", "tl-norm-over-batch", {"triplet_loss": _tl(lambda a, b: (a - b).norm(dim=0))}, ["dim=0"]),
    ("test_triplet_loss", "tl-no-reduction", {"triplet_loss": _tl(_l2, reduce=lambda x: x)}, ["not one number"]),
    ("test_nearest_neighbours", "nn-drops-first-result", {"nearest_neighbours": nn_drop_first}, ["exact copy"]),
    ("test_nearest_neighbours", "nn-keeps-the-query", {"nearest_neighbours": nn_keeps_query}, ["the query itself"]),
    ("test_nearest_neighbours", "nn-raw-l2", {"nearest_neighbours": nn_raw_l2}, ["L2 distance on the raw"]),
    ("test_nearest_neighbours", "nn-raw-dot", {"nearest_neighbours": nn_raw_dot}, ["raw dot products"]),
    ("test_nearest_neighbours", "nn-farthest", {"nearest_neighbours": nn_farthest}, ["farthest"]),
    ("test_nearest_neighbours", "nn-values-and-indices", {"nearest_neighbours": nn_values_and_indices},
     ["(values, indices)"]),
    ("test_nearest_neighbours", "nn-normalised-over-batch", {"nearest_neighbours": nn_normalised_over_batch},
     ["dim=0"]),
]


@pytest.mark.parametrize("grade_id,case_id,objects", [pytest.param(*c, id=c[1]) for c in CS_CORRECT])
def test_correct_solution_gets_full_marks(grade_id, case_id, objects):
    problems = full_marks_problems(cs.PROBLEM_SET, grade_id, objects, SEEDS)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("grade_id,case_id,objects,keywords", [pytest.param(*c, id=c[1]) for c in CS_MISTAKES])
def test_classic_mistake_loses_half_its_unit_with_a_message_that_names_it(grade_id, case_id, objects, keywords):
    problems = mistake_problems(cs.PROBLEM_SET, grade_id, objects, keywords, SEEDS)
    assert not problems, "\n".join(problems)


def test_corpus_size():
    """At least 8 correct styles of every graded part and 15 classic mistakes; ids unique."""
    for unit in cs.PROBLEM_SET.units:
        assert sum(1 for c in CS_CORRECT if c[0] == unit.grade_id) >= 8, unit.grade_id
        assert sum(1 for c in CS_MISTAKES if c[0] == unit.grade_id) >= 3, unit.grade_id
    assert len(CS_MISTAKES) >= 15
    ids = [c[1] for c in CS_CORRECT + CS_MISTAKES]
    assert len(ids) == len(set(ids))


# =====================================================================================================
# The same corpus through the visible checks (what the notebook's test cells and the self-check run)
# =====================================================================================================

def _visible_verdict(grade_id, objects):
    """None when the unit's visible check passes, else what it said (a failed check or the error raised)."""
    from course_utils.checks import contrastive_shapes as checks

    check = {"test_conv_autoencoder": checks.check_conv_autoencoder, "test_make_views": checks.check_make_views,
             "test_triplet_loss": checks.check_triplet_loss,
             "test_nearest_neighbours": checks.check_nearest_neighbours}[grade_id]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            check(*objects.values())
    except Exception as exc:  # a failed check, or the student's code raising inside it: the cell fails
        return f"{type(exc).__name__}: {exc}"
    return None


# Mistakes the visible checks miss, and why; the hidden tests catch every one of them.
VISIBLE_MISSES = {
    "ae-no-relu-after-decoder-linear": "right shapes, parameter counts and (0, 1) range: only loading known weights "
                                       "into the layers (the hidden check) shows the missing activation",
    "views-simclr-scale-0.08": "caught most of the time, but 16 crops drawn from [0.08, 1] all land above 0.25 in "
                               "about 1 run of 30; the hidden check measures 128 crops",
}


def test_visible_checks_pass_every_correct_solution_and_catch_what_they_can():
    torch.manual_seed(0)
    wrong = [(c[1], v) for c in CS_CORRECT if (v := _visible_verdict(c[0], c[2])) is not None]
    assert not wrong, f"visible checks fail correct solutions: {wrong}"
    missed = {c[1] for c in CS_MISTAKES if _visible_verdict(c[0], c[2]) is None}
    assert missed <= set(VISIBLE_MISSES), f"missed, not declared: {missed - set(VISIBLE_MISSES)}"
    assert "ae-no-relu-after-decoder-linear" in missed  # declared misses stay honest: this one cannot be caught
