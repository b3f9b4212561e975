"""Fairness corpus of problem set "vae_denoising": CORRECT solutions in the styles the notebook's text allows must
all get full marks, and the CLASSIC MISTAKES (each a single change of a correct solution) must each lose at least
half of their own unit, with a message that names the problem in words a student can act on.

The solutions were written from the released student notebook only (its markdown and the cells marked
``# YOUR CODE HERE``): Part 1's three bullets and the paragraph below them, Part 2's table, Part 3's four bullets and
Part 4's formula and contract. Every case is graded in-process by the kit's hidden tests
(``autograder.core.run_unit``) with three seeds, since the hidden inputs are drawn per student; the same corpus then
goes through the visible checks, which must pass every correct solution and catch what they can.
"""
from __future__ import annotations

import contextlib
import io
import math
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import distributions as D
from torch import nn
from torch.nn import functional as F

from autograder import vae_denoising as vd
from units import full_marks_problems, grade_unit, mistake_problems

SEEDS = (11, 20261123, 987654321)


# =====================================================================================================
# add_noise
# =====================================================================================================

def noise_where(images, kind):
    """torch.where and randn_like / rand_like, as the text suggests."""
    if kind == "gaussian":
        out = images + 0.5 + 0.3 * torch.randn_like(images)
    elif kind == "salt_pepper":
        hit, salt = torch.rand_like(images) < 0.05, torch.rand_like(images) < 0.5
        out = torch.where(hit, salt.float(), images)
    elif kind == "speckle":
        out = images + images * 0.5 * torch.randn_like(images)
    else:
        raise ValueError(kind)
    return out.clamp(0, 1)


def noise_normal(images, kind):
    """torch.normal with a size; one uniform draw splits into pepper / salt / untouched; torch.clip."""
    if kind == "gaussian":
        return torch.clip(images + torch.normal(0.5, 0.3, size=images.shape), 0, 1)
    if kind == "salt_pepper":
        u = torch.rand(images.shape)
        out = images.clone()
        out[u < 1 / 40] = 0.0
        out[u > 1 - 1 / 40] = 1.0
        return out.clip(0, 1)
    if kind == "speckle":
        return torch.clip(images * (1 + torch.normal(0.0, 0.5, size=images.shape)), 0.0, 1.0)
    raise ValueError(f"unknown kind {kind}")


def noise_bernoulli(images, kind):
    """torch.bernoulli masks and arithmetic blending; empty_like().normal_()."""
    if kind == "gaussian":
        out = images + torch.empty_like(images).normal_(mean=0.5, std=0.3)
    elif kind == "salt_pepper":
        hit = torch.bernoulli(torch.full_like(images, 1 / 20))
        value = torch.bernoulli(torch.full_like(images, 0.5))
        out = images * (1 - hit) + hit * value
    elif kind == "speckle":
        out = images + images * torch.empty_like(images).normal_(0, 0.5)
    else:
        raise ValueError("kind must be gaussian, salt_pepper or speckle")
    return out.clamp(min=0.0, max=1.0)


_NOISES = {
    "gaussian": lambda x: x + 0.3 * torch.randn(x.shape, dtype=x.dtype) + 0.5,
    "salt_pepper": lambda x: torch.where(torch.rand_like(x) < 0.05, torch.randint(0, 2, x.shape).to(x.dtype), x),
    "speckle": lambda x: x + x * torch.randn_like(x) / 2,
}


def noise_dict_dispatch(images, kind):
    """A dict of lambdas; torch.randint for salt or pepper; KeyError turned into ValueError."""
    try:
        noise = _NOISES[kind]
    except KeyError:
        raise ValueError(f"unknown kind {kind!r}") from None
    return noise(images).clamp(0, 1)


def noise_randint(images, kind):
    """Salt and pepper from one randint in [0, 40): 0 is pepper, 1 is salt; torch.minimum / maximum to clip."""
    if kind not in ("gaussian", "salt_pepper", "speckle"):
        raise ValueError(kind)
    if kind == "salt_pepper":
        r = torch.randint(0, 40, images.shape)
        out = images.masked_fill(r == 0, 0.0).masked_fill(r == 1, 1.0)
    elif kind == "gaussian":
        out = images + (torch.randn_like(images) * 0.3 + 0.5)
    else:
        out = images * (1.0 + 0.5 * torch.randn_like(images))
    return torch.minimum(torch.maximum(out, torch.zeros_like(out)), torch.ones_like(out))


def noise_inplace_on_clone(images, kind):
    """In-place operations on a clone (the input stays unchanged)."""
    out = images.clone()
    if kind == "gaussian":
        out.add_(torch.randn_like(out).mul_(0.3).add_(0.5))
    elif kind == "salt_pepper":
        mask = torch.rand_like(out) < 0.05
        out[mask] = (torch.rand(int(mask.sum())) < 0.5).float()
    elif kind == "speckle":
        out.addcmul_(out, torch.randn_like(out), value=0.5)
    else:
        raise ValueError(kind)
    return out.clamp_(0, 1)


# A match statement (Python 3.10+; the kit supports 3.9, where this module must still import): compiled from text.
_MATCH_SOURCE = """
def noise_match(images, kind):
    '''match statement; the salt value drawn as rand_like().round().'''
    match kind:
        case "gaussian":
            noisy = images + 0.5 + torch.randn_like(images) * 0.3
        case "salt_pepper":
            noisy = torch.where(torch.rand_like(images) < 1 / 20, torch.rand_like(images).round(), images)
        case "speckle":
            noisy = images + images * torch.randn_like(images) * 0.5
        case _:
            raise ValueError(kind)
    return noisy.clamp(0.0, 1.0)
"""
if sys.version_info >= (3, 10):
    exec(compile(_MATCH_SOURCE, __file__, "exec"), globals())
else:  # the same noise without the match statement
    def noise_match(images, kind):
        return noise_where(images, kind)


def noise_float64(images, kind):
    """Noise computed in float64 and cast back to the images' dtype."""
    x = images.double()
    if kind == "gaussian":
        y = x + 0.5 + 0.3 * torch.randn(x.shape, dtype=torch.float64)
    elif kind == "salt_pepper":
        u, v = torch.rand(x.shape, dtype=torch.float64), torch.rand(x.shape, dtype=torch.float64)
        y = torch.where(u < 0.05, (v < 0.5).double(), x)
    elif kind == "speckle":
        y = x + x * 0.5 * torch.randn(x.shape, dtype=torch.float64)
    else:
        raise ValueError(kind)
    return y.clamp(0, 1).to(images.dtype)


class UnknownNoiseError(ValueError):
    """A student's own exception class: "raises a ValueError (or a subclass of it)"."""


def noise_own_error(images, kind):
    """Dispatch through a dict of lambdas; an unknown kind raises a subclass of ValueError."""
    if kind not in _NOISES:
        raise UnknownNoiseError(f"unknown noise kind {kind!r}")
    return noise_dict_dispatch(images, kind)


# add_noise: the classic mistakes

def _noise(gaussian=None, salt_pepper=None, speckle=None, clip=True, unknown_ok=False):
    def add_noise(images, kind):
        fn = {"gaussian": gaussian, "salt_pepper": salt_pepper, "speckle": speckle}.get(kind)
        if fn is None and kind in ("gaussian", "salt_pepper", "speckle"):
            return noise_where(images, kind)
        if fn is None:
            if unknown_ok:
                return images
            raise ValueError(kind)
        out = fn(images)
        return out.clamp(0, 1) if clip else out
    return add_noise


def noise_not_clipped(images, kind):
    return noise_where(images, kind) if kind == "salt_pepper" else _noise(
        gaussian=lambda x: x + 0.5 + 0.3 * torch.randn_like(x), speckle=lambda x: x + x * 0.5 * torch.randn_like(x),
        clip=False)(images, kind)


def noise_numpy(images, kind):
    rng = np.random.default_rng()
    if kind == "gaussian":
        return (images + torch.from_numpy(rng.normal(0.5, 0.3, images.shape)).float()).clamp(0, 1)
    return noise_where(images, kind)


def noise_in_place(images, kind):
    if kind == "gaussian":
        images += 0.5 + 0.3 * torch.randn_like(images)
        return images.clamp_(0, 1)
    return noise_where(images, kind)


def noise_same_for_batch(images, kind):
    if kind == "gaussian":
        return (images + 0.5 + 0.3 * torch.randn(1, *images.shape[1:])).clamp(0, 1)
    return noise_where(images, kind)


# =====================================================================================================
# DenoisingAutoencoder
# =====================================================================================================

def _trunk(inplace=False):
    return [nn.Conv2d(1, 8, 3, 2, 1), nn.ReLU(inplace), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU(inplace),
            nn.Conv2d(16, 32, 3, 2, 0), nn.ReLU(inplace)]


def _decoder(d, last=nn.Sigmoid, inplace=False):
    return [nn.Linear(d, 128), nn.ReLU(inplace), nn.Linear(128, 288), nn.ReLU(inplace), nn.Unflatten(1, (32, 3, 3)),
            nn.ConvTranspose2d(32, 16, 3, 2), nn.ReLU(inplace), nn.ConvTranspose2d(16, 8, 3, 2, 1, 1),
            nn.ReLU(inplace), nn.ConvTranspose2d(8, 1, 3, 2, 1, 1), last()]


class DAESequential(nn.Module):
    def __init__(self, latent_dim=33, inplace=False, last=nn.Sigmoid, code_act=None):
        super().__init__()
        tail = [code_act()] if code_act else []
        self.encoder = nn.Sequential(*_trunk(inplace), nn.Flatten(), nn.Linear(288, 128), nn.ReLU(inplace),
                                     nn.Linear(128, latent_dim), *tail)
        self.decoder = nn.Sequential(*_decoder(latent_dim, last, inplace))

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        return self.decode(self.encode(x))


class DAEInplace(DAESequential):
    def __init__(self, latent_dim=33):
        super().__init__(latent_dim, inplace=True)


class DAEDecoderFirst(nn.Module):
    """Decoder layers declared first; F.relu and torch.sigmoid in the methods; .view for the reshape."""

    def __init__(self, latent_dim=33):
        super().__init__()
        self.d1, self.d2 = nn.Linear(latent_dim, 128), nn.Linear(128, 288)
        self.t1, self.t2 = nn.ConvTranspose2d(32, 16, 3, 2), nn.ConvTranspose2d(16, 8, 3, 2, 1, 1)
        self.t3 = nn.ConvTranspose2d(8, 1, 3, 2, 1, 1)
        self.c1, self.c2, self.c3 = nn.Conv2d(1, 8, 3, 2, 1), nn.Conv2d(8, 16, 3, 2, 1), nn.Conv2d(16, 32, 3, 2)
        self.e1, self.e2 = nn.Linear(288, 128), nn.Linear(128, latent_dim)

    def encode(self, x):
        x = F.relu(self.c3(F.relu(self.c2(F.relu(self.c1(x))))))
        return self.e2(F.relu(self.e1(x.view(x.size(0), -1))))

    def decode(self, z):
        h = F.relu(self.d2(F.relu(self.d1(z)))).view(-1, 32, 3, 3)
        return torch.sigmoid(self.t3(F.relu(self.t2(F.relu(self.t1(h))))))

    def forward(self, x):
        return self.decode(self.encode(x))


class _Enc(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(1, 8, 3, 2, 1), nn.Conv2d(8, 16, 3, 2, 1), nn.Conv2d(16, 32, 3, 2, 0)])
        self.fc = nn.ModuleList([nn.Linear(288, 128), nn.Linear(128, d)])

    def forward(self, x):
        for conv in self.convs:
            x = conv(x).relu()
        return self.fc[1](self.fc[0](x.flatten(1)).relu())


class _Dec(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(d, 128), nn.ReLU(), nn.Linear(128, 288), nn.ReLU())
        self.ups = nn.ModuleList([nn.ConvTranspose2d(32, 16, 3, 2), nn.ConvTranspose2d(16, 8, 3, 2, 1, 1),
                                  nn.ConvTranspose2d(8, 1, 3, 2, 1, 1)])

    def forward(self, z):
        x = self.fc(z).reshape(len(z), 32, 3, 3)
        for i, up in enumerate(self.ups):
            x = up(x)
            x = torch.sigmoid(x) if i == 2 else torch.relu(x)
        return x


class DAETwoClasses(nn.Module):
    """Encoder and decoder classes of their own with ModuleLists."""

    def __init__(self, latent_dim=33):
        super().__init__()
        self.enc, self.dec = _Enc(latent_dim), _Dec(latent_dim)

    def encode(self, x):
        return self.enc(x)

    def decode(self, z):
        return self.dec(z)

    def forward(self, x):
        return self.dec(self.enc(x))


class DAEOrderedDict(nn.Module):
    """Named layers in OrderedDicts; forward written out again."""

    def __init__(self, latent_dim=33):
        super().__init__()
        layers = _trunk() + [nn.Flatten(), nn.Linear(288, 128), nn.ReLU(), nn.Linear(128, latent_dim)]
        self.encoder = nn.Sequential(OrderedDict((f"layer{i}", m) for i, m in enumerate(layers)))
        self.decoder = nn.Sequential(OrderedDict((f"layer{i}", m) for i, m in enumerate(_decoder(latent_dim))))

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        return self.decoder(self.encoder(x))


class DAEOutputSize(nn.Module):
    """ConvTranspose2d without output_padding, its output size given at call time (output_size=...)."""

    def __init__(self, latent_dim=33):
        super().__init__()
        self.encoder = nn.Sequential(*_trunk(), nn.Flatten(), nn.Linear(288, 128), nn.ReLU(), nn.Linear(128, latent_dim))
        self.fc = nn.Sequential(nn.Linear(latent_dim, 128), nn.ReLU(), nn.Linear(128, 288), nn.ReLU())
        self.t1, self.t2, self.t3 = (nn.ConvTranspose2d(32, 16, 3, 2), nn.ConvTranspose2d(16, 8, 3, 2, 1),
                                     nn.ConvTranspose2d(8, 1, 3, 2, 1))

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        h = self.fc(z).unflatten(1, (32, 3, 3))
        h = F.relu(self.t1(h))
        h = F.relu(self.t2(h, output_size=[14, 14]))
        return torch.sigmoid(self.t3(h, output_size=[28, 28]))

    def forward(self, x):
        return self.decode(self.encode(x))


class DAEModuleDict(nn.Module):
    """A ModuleDict of two Sequentials; forward calls the modules directly; Tanh-free sigmoid via expit."""

    def __init__(self, latent_dim=33):
        super().__init__()
        self.parts = nn.ModuleDict({
            "encoder": nn.Sequential(*_trunk(), nn.Flatten(), nn.Linear(288, 128), nn.ReLU(), nn.Linear(128, latent_dim)),
            "decoder": nn.Sequential(*_decoder(latent_dim, last=nn.Identity))})

    def encode(self, x):
        return self.parts["encoder"](x)

    def decode(self, z):
        return torch.special.expit(self.parts["decoder"](z))

    def forward(self, x):
        return self.decode(self.encode(x))


class DAEFunctionalParams(nn.Module):
    """The encoder's dense layers as bare nn.Parameters on the module, with F.linear."""

    def __init__(self, latent_dim=33):
        super().__init__()
        self.trunk = nn.Sequential(*_trunk(), nn.Flatten())
        fc1, fc2 = nn.Linear(288, 128), nn.Linear(128, latent_dim)
        self.w1, self.b1 = nn.Parameter(fc1.weight.detach()), nn.Parameter(fc1.bias.detach())
        self.w2, self.b2 = nn.Parameter(fc2.weight.detach()), nn.Parameter(fc2.bias.detach())
        self.decoder = nn.Sequential(*_decoder(latent_dim))

    def encode(self, x):
        return F.linear(F.relu(F.linear(self.trunk(x), self.w1, self.b1)), self.w2, self.b2)

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        return self.decoder(self.encode(x))


class DAENoSigmoid(DAESequential):
    def __init__(self, latent_dim=33):
        super().__init__(latent_dim, last=nn.Identity)


class DAEReluCode(DAESequential):
    def __init__(self, latent_dim=33):
        super().__init__(latent_dim, code_act=nn.ReLU)


class DAEPaddedThirdConv(nn.Module):
    """Padding 1 on the third conv too: (32, 4, 4) = 512 values, and the dense layers follow."""

    def __init__(self, latent_dim=33):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(1, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU(),
                                     nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU(), nn.Flatten(), nn.Linear(512, 128),
                                     nn.ReLU(), nn.Linear(128, latent_dim))
        self.decoder = nn.Sequential(*_decoder(latent_dim))

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        return self.decode(self.encode(x))


class DAENoReluBeforeReshape(nn.Module):
    def __init__(self, latent_dim=33):
        super().__init__()
        self.encoder = nn.Sequential(*_trunk(), nn.Flatten(), nn.Linear(288, 128), nn.ReLU(), nn.Linear(128, latent_dim))
        dec = _decoder(latent_dim)
        del dec[3]  # the ReLU after Linear(128, 288)
        self.decoder = nn.Sequential(*dec)

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        return self.decode(self.encode(x))


# =====================================================================================================
# VAE
# =====================================================================================================

def _head(d):
    return nn.Sequential(nn.Linear(288, 128), nn.ReLU(), nn.Linear(128, d))


class VAEReference(nn.Module):
    """The text's layout: trunk, mu head, logvar head, decoder; randn_like."""

    def __init__(self, latent_dim=2):
        super().__init__()
        self.trunk = nn.Sequential(*_trunk(), nn.Flatten())
        self.mu_head, self.logvar_head = _head(latent_dim), _head(latent_dim)
        self.decoder = nn.Sequential(*_decoder(latent_dim))

    def encode(self, x):
        h = self.trunk(x)
        return self.mu_head(h), self.logvar_head(h)

    def reparameterize(self, mu, logvar):
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar


class VAELogvarFirst(VAEReference):
    """The logvar head declared before the mu head; std as sqrt(exp(logvar)); eps from torch.randn(shape)."""

    def __init__(self, latent_dim=2):
        nn.Module.__init__(self)
        self.trunk = nn.Sequential(*_trunk(), nn.Flatten())
        self.logvar_head = _head(latent_dim)
        self.mu_head = _head(latent_dim)
        self.decoder = nn.Sequential(*_decoder(latent_dim))

    def reparameterize(self, mu, logvar):
        return mu + torch.sqrt(torch.exp(logvar)) * torch.randn(mu.shape)


class VAEInterleaved(nn.Module):
    """Head layers declared interleaved (mu 1, logvar 1, logvar 2, mu 2); F.relu; logvar.mul(0.5).exp()."""

    def __init__(self, latent_dim=2):
        super().__init__()
        self.convs = nn.Sequential(*_trunk())
        self.mu1, self.lv1 = nn.Linear(288, 128), nn.Linear(288, 128)
        self.lv2, self.mu2 = nn.Linear(128, latent_dim), nn.Linear(128, latent_dim)
        self.dec = nn.Sequential(*_decoder(latent_dim))

    def encode(self, x):
        h = self.convs(x).flatten(1)
        return self.mu2(F.relu(self.mu1(h))), self.lv2(F.relu(self.lv1(h)))

    def reparameterize(self, mu, logvar):
        std = logvar.mul(0.5).exp()
        return torch.empty_like(mu).normal_() * std + mu

    def decode(self, z):
        return self.dec(z)

    def forward(self, x):
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar


class VAERsample(VAEReference):
    """torch.distributions.Normal(mu, sigma).rsample()."""

    def reparameterize(self, mu, logvar):
        return D.Normal(mu, torch.exp(logvar / 2)).rsample()


class VAEInlineForward(VAEReference):
    """forward draws its own eps (the same draw as reparameterize) instead of calling it; a tuple from a list."""

    def forward(self, x):
        mu, logvar = self.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(logvar)
        return tuple([self.decode(z), mu, logvar])


class VAEModuleDict(nn.Module):
    """A ModuleDict of heads; the decoder's sigmoid in decode(); encode returns a list."""

    def __init__(self, latent_dim=2):
        super().__init__()
        self.trunk = nn.Sequential(*_trunk(), nn.Flatten())
        self.heads = nn.ModuleDict({"mu": _head(latent_dim), "logvar": _head(latent_dim)})
        self.decoder = nn.Sequential(*_decoder(latent_dim, last=nn.Identity))

    def encode(self, x):
        h = self.trunk(x)
        return [self.heads["mu"](h), self.heads["logvar"](h)]

    def reparameterize(self, mu, logvar):
        eps = torch.randn_like(mu)
        return mu + eps * (0.5 * logvar).exp()

    def decode(self, z):
        return torch.sigmoid(self.decoder(z))

    def forward(self, x):
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar


class VAEFunctional(nn.Module):
    """Every layer an attribute, F.conv2d-free but functional activations; exp(logvar) ** 0.5."""

    def __init__(self, latent_dim=2):
        super().__init__()
        self.c1, self.c2, self.c3 = nn.Conv2d(1, 8, 3, 2, 1), nn.Conv2d(8, 16, 3, 2, 1), nn.Conv2d(16, 32, 3, 2)
        self.fc_mu, self.out_mu = nn.Linear(288, 128), nn.Linear(128, latent_dim)
        self.fc_lv, self.out_lv = nn.Linear(288, 128), nn.Linear(128, latent_dim)
        self.decoder = DAETwoClasses(latent_dim).dec

    def encode(self, x):
        h = torch.flatten(F.relu(self.c3(F.relu(self.c2(F.relu(self.c1(x)))))), 1)
        return self.out_mu(F.relu(self.fc_mu(h))), self.out_lv(F.relu(self.fc_lv(h)))

    def reparameterize(self, mu, logvar):
        return mu + torch.randn_like(mu) * logvar.exp() ** 0.5

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar


class VAEReuseDAE(nn.Module):
    """The decoder taken from a DenoisingAutoencoder; heads in a ModuleList; eps via torch.normal."""

    def __init__(self, latent_dim=2):
        super().__init__()
        self.trunk = nn.Sequential(*_trunk(), nn.Flatten())
        self.heads = nn.ModuleList([_head(latent_dim), _head(latent_dim)])
        self.decoder = DAESequential(latent_dim).decoder

    def encode(self, x):
        h = self.trunk(x)
        mu, logvar = (head(h) for head in self.heads)
        return mu, logvar

    def reparameterize(self, mu, logvar):
        return mu + torch.normal(torch.zeros_like(mu), torch.ones_like(mu)) * torch.exp(logvar * 0.5)

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def _vae_with(reparameterize=None, forward=None):
    class Mistake(VAEReference):
        pass
    if reparameterize:
        Mistake.reparameterize = reparameterize
    if forward:
        Mistake.forward = forward
    return Mistake


VAENoDraw = _vae_with(reparameterize=lambda self, mu, logvar: mu + 0 * logvar)
VAELogvarAsStd = _vae_with(reparameterize=lambda self, mu, logvar: mu + torch.randn_like(mu) * logvar)
VAEExpLogvarStd = _vae_with(reparameterize=lambda self, mu, logvar: mu + torch.randn_like(mu) * logvar.exp())
VAENumpyEps = _vae_with(reparameterize=lambda self, mu, logvar: mu + torch.from_numpy(
    np.random.default_rng().standard_normal(tuple(mu.shape))).float() * torch.exp(0.5 * logvar))
VAEOneEps = _vae_with(reparameterize=lambda self, mu, logvar: mu + torch.randn(1, mu.shape[1]) * torch.exp(0.5 * logvar))
VAEDetachedStd = _vae_with(reparameterize=lambda self, mu, logvar: mu + torch.randn_like(mu) * torch.exp(
    0.5 * logvar).detach())


def _decode_mu(self, x):
    mu, logvar = self.encode(x)
    return self.decode(mu), mu, logvar


VAEDecodesMu = _vae_with(forward=_decode_mu)


class VAEOneHead(VAEReference):
    """One head for both: logvar = mu's head (the logvar head never used, so its parameters count but do nothing)."""

    def encode(self, x):
        h = self.trunk(x)
        mu = self.mu_head(h)
        return mu, mu


# =====================================================================================================
# vae_loss
# =====================================================================================================

def loss_reference(recon, x, mu, logvar, beta=1.0):
    bce = F.binary_cross_entropy(recon, x, reduction="sum")
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return (bce + beta * kl) / x.shape[0]


def loss_per_sample(recon, x, mu, logvar, beta=1.0):
    bce = F.binary_cross_entropy(recon, x, reduction="none").flatten(1).sum(dim=1)  # (B,)
    kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(dim=1)  # (B,)
    return (bce + beta * kl).mean()


def loss_by_hand(recon, x, mu, logvar, beta=1.0):
    b = x.size(0)
    rec = -(x * torch.log(recon) + (1 - x) * torch.log(1 - recon)).sum() / b
    return rec + beta * (-0.5 * (1 + logvar - mu * mu - torch.exp(logvar)).sum() / b)


def loss_distributions(recon, x, mu, logvar, beta=1.0):
    likelihood = D.Bernoulli(probs=recon, validate_args=False).log_prob(x).flatten(1).sum(1)
    kl = D.kl_divergence(D.Normal(mu, torch.exp(0.5 * logvar)), D.Normal(0.0, 1.0)).sum(1)
    return (-likelihood + beta * kl).mean()


def loss_mean_times_pixels(recon, x, mu, logvar, beta=1.0):
    per_image = F.binary_cross_entropy(recon, x) * x[0].numel()  # the mean over everything, times pixels per image
    return per_image + beta * torch.mean(torch.sum(-0.5 * (1 + logvar - mu ** 2 - logvar.exp()), dim=1))


def loss_module(recon, x, mu, logvar, beta=1.0):
    bce = nn.BCELoss(reduction="sum")(recon, x)
    kl = torch.sum(mu.pow(2) + logvar.exp() - logvar - 1) / 2
    return bce / len(x) + beta * kl / len(x)


def loss_logits(recon, x, mu, logvar, beta=1.0):
    bce = F.binary_cross_entropy_with_logits(torch.logit(recon), x, reduction="sum")
    return (bce + beta * 0.5 * (mu.square() + logvar.exp() - logvar - 1).sum()) / x.shape[0]


def loss_einsum(recon, x, mu, logvar, beta=1.0):
    b = x.shape[0]
    bce = F.binary_cross_entropy(recon.reshape(b, -1), x.reshape(b, -1), reduction="sum")
    kl = 0.5 * (torch.einsum("bd,bd->", mu, mu) + logvar.exp().sum() - logvar.numel() - logvar.sum())
    return (bce + beta * kl) / b


def _loss(recon_term="bce", pixel="sum", kl_sign=-0.5, kl_var=lambda lv: lv.exp(), batch="mean", beta_on="kl",
          kl_latent="sum", kl_batch=None, item=False):
    def vae_loss(recon, x, mu, logvar, beta=1.0):
        b = x.shape[0]
        if recon_term == "bce":
            rec = F.binary_cross_entropy(recon, x, reduction="sum")
        elif recon_term == "swapped":
            rec = F.binary_cross_entropy(x, recon, reduction="sum")
        else:
            rec = F.mse_loss(recon, x, reduction="sum")
        if pixel == "mean":
            rec = rec / x[0].numel()
        elif pixel == "mean-of-all":  # F.binary_cross_entropy(recon, x) with its default reduction, then / B below
            rec = rec / x.numel()
        terms = 1 + logvar - mu.pow(2) - kl_var(logvar)
        kl = kl_sign * (terms.sum() if kl_latent == "sum" else terms.mean(dim=1).sum())
        beta_kl, beta_rec = (beta, 1.0) if beta_on == "kl" else (1.0, beta) if beta_on == "rec" else (1.0, 1.0)
        if kl_batch == "sum":
            out = beta_rec * rec / b + beta_kl * kl
        else:
            out = beta_rec * rec + beta_kl * kl
            out = out / b if batch == "mean" else out
        return out.item() if item else out
    return vae_loss


# =====================================================================================================
# the corpus
# =====================================================================================================

VD_CORRECT = [
    *[("test_add_noise", name, {"add_noise": fn}) for name, fn in (
        ("noise-where", noise_where), ("noise-normal-one-uniform", noise_normal), ("noise-bernoulli", noise_bernoulli),
        ("noise-dict-dispatch", noise_dict_dispatch), ("noise-randint-minmax", noise_randint),
        ("noise-inplace-on-clone", noise_inplace_on_clone), ("noise-match-round", noise_match),
        ("noise-float64", noise_float64), ("noise-own-valueerror-subclass", noise_own_error))],
    *[("test_denoising_autoencoder", name, {"DenoisingAutoencoder": cls}) for name, cls in (
        ("dae-sequential", DAESequential), ("dae-inplace-relu", DAEInplace), ("dae-decoder-first-view", DAEDecoderFirst),
        ("dae-two-classes-modulelists", DAETwoClasses), ("dae-ordereddict", DAEOrderedDict),
        ("dae-output-size", DAEOutputSize), ("dae-moduledict-expit", DAEModuleDict),
        ("dae-bare-parameters", DAEFunctionalParams))],
    *[("test_vae", name, {"VAE": cls}) for name, cls in (
        ("vae-reference-layout", VAEReference), ("vae-logvar-head-first", VAELogvarFirst),
        ("vae-interleaved-heads", VAEInterleaved), ("vae-rsample", VAERsample), ("vae-inline-forward", VAEInlineForward),
        ("vae-moduledict-list", VAEModuleDict), ("vae-functional", VAEFunctional), ("vae-reuses-dae", VAEReuseDAE))],
    *[("test_vae_loss", name, {"vae_loss": fn}) for name, fn in (
        ("loss-reference", loss_reference), ("loss-per-sample-mean", loss_per_sample), ("loss-by-hand", loss_by_hand),
        ("loss-distributions", loss_distributions), ("loss-mean-times-pixels", loss_mean_times_pixels),
        ("loss-bceloss-module", loss_module), ("loss-logits", loss_logits), ("loss-einsum", loss_einsum))],
]

# (unit, id, objects, keywords): each breaks what the notebook's text states, so it must lose at least half of its
# unit's points, and one of the failing checks' messages must hold one of the keywords.
VD_MISTAKES = [
    ("test_add_noise", "noise-not-clipped", {"add_noise": noise_not_clipped}, ["not clipped", "clip"]),
    ("test_add_noise", "noise-gaussian-mean-0", {"add_noise": _noise(gaussian=lambda x: x + 0.3 * torch.randn_like(x))},
     ["(mean 0)"]),
    ("test_add_noise", "noise-gaussian-variance-0.3",
     {"add_noise": _noise(gaussian=lambda x: x + 0.5 + math.sqrt(0.3) * torch.randn_like(x))}, ["not the variance"]),
    ("test_add_noise", "noise-gaussian-uniform", {"add_noise": _noise(gaussian=lambda x: x + 0.3 * torch.rand_like(x)
                                                                      + 0.35)}, ["gaussian noise"]),
    ("test_add_noise", "noise-salt-pepper-1-in-20-each", {"add_noise": _noise(salt_pepper=lambda x: torch.where(
        torch.rand_like(x) < 0.1, (torch.rand_like(x) < 0.5).float(), x))}, ["instead of 5%"]),
    ("test_add_noise", "noise-salt-only", {"add_noise": _noise(salt_pepper=lambda x: torch.where(
        torch.rand_like(x) < 0.05, torch.ones_like(x), x))}, ["instead of half"]),
    ("test_add_noise", "noise-speckle-additive", {"add_noise": _noise(speckle=lambda x: x + 0.5 * torch.randn_like(x))},
     ["instead of image * n(0, 0.5)"]),
    ("test_add_noise", "noise-speckle-not-added-back",
     {"add_noise": _noise(speckle=lambda x: x * 0.5 * torch.randn_like(x))}, ["not added back"]),
    ("test_add_noise", "noise-numpy-not-seeded", {"add_noise": noise_numpy}, ["torch.manual_seed"]),
    ("test_add_noise", "noise-same-for-every-image", {"add_noise": noise_same_for_batch}, ["same noise"]),
    ("test_add_noise", "noise-in-place", {"add_noise": noise_in_place}, ["changed"]),
    ("test_add_noise", "noise-unknown-kind-accepted", {"add_noise": _noise(unknown_ok=True)}, ["valueerror"]),
    ("test_denoising_autoencoder", "dae-no-sigmoid", {"DenoisingAutoencoder": DAENoSigmoid}, ["sigmoid"]),
    ("test_denoising_autoencoder", "dae-relu-after-code", {"DenoisingAutoencoder": DAEReluCode},
     ["activation after the last linear"]),
    ("test_denoising_autoencoder", "dae-padded-third-conv", {"DenoisingAutoencoder": DAEPaddedThirdConv},
     ["parameters"]),
    ("test_denoising_autoencoder", "dae-no-relu-before-reshape", {"DenoisingAutoencoder": DAENoReluBeforeReshape},
     ["decode gave the same shape but different values"]),
    ("test_vae", "vae-no-random-draw", {"VAE": VAENoDraw}, ["no random draw"]),
    ("test_vae", "vae-logvar-as-std", {"VAE": VAELogvarAsStd}, ["logvar itself as the standard deviation"]),
    ("test_vae", "vae-exp-logvar-as-std", {"VAE": VAEExpLogvarStd},
     ["exp(logvar) as the standard deviation", "where logvar > 0.5"]),
    ("test_vae", "vae-numpy-eps", {"VAE": VAENumpyEps}, ["draw eps with torch"]),
    ("test_vae", "vae-one-eps-per-batch", {"VAE": VAEOneEps}, ["same eps"]),
    ("test_vae", "vae-detached-std", {"VAE": VAEDetachedStd}, ["dz/dlogvar"]),
    ("test_vae", "vae-forward-decodes-mu", {"VAE": VAEDecodesMu}, ["decodes mu"]),
    ("test_vae", "vae-one-head", {"VAE": VAEOneHead}, ["(mu, logvar) differ"]),
    ("test_vae_loss", "loss-kl-wrong-sign", {"vae_loss": _loss(kl_sign=0.5)}, ["wrong sign"]),
    ("test_vae_loss", "loss-mean-over-pixels", {"vae_loss": _loss(pixel="mean")}, ["mean over the pixels"]),
    ("test_vae_loss", "loss-default-reduction-then-batch", {"vae_loss": _loss(pixel="mean-of-all")},
     ["mean over the pixels"]),
    ("test_vae_loss", "loss-summed-over-batch", {"vae_loss": _loss(batch="sum")}, ["summed over the batch, not averaged"]),
    ("test_vae_loss", "loss-kl-summed-over-batch", {"vae_loss": _loss(kl_batch="sum")},
     ["kl term is summed over the batch"]),
    ("test_vae_loss", "loss-mse", {"vae_loss": _loss(recon_term="mse")}, ["squared error"]),
    ("test_vae_loss", "loss-beta-ignored", {"vae_loss": _loss(beta_on="none")}, ["beta is ignored"]),
    ("test_vae_loss", "loss-beta-on-reconstruction", {"vae_loss": _loss(beta_on="rec")}, ["reconstruction term"]),
    ("test_vae_loss", "loss-kl-no-half", {"vae_loss": _loss(kl_sign=-1.0)}, ["factor 1/2"]),
    ("test_vae_loss", "loss-kl-sigma-for-variance", {"vae_loss": _loss(kl_var=lambda lv: (0.5 * lv).exp())},
     ["exp(logvar / 2) (sigma)"]),
    ("test_vae_loss", "loss-kl-mean-over-latents", {"vae_loss": _loss(kl_latent="mean")}, ["averaged over the latent"]),
    ("test_vae_loss", "loss-bce-arguments-swapped", {"vae_loss": _loss(recon_term="swapped")}, ["swapped"]),
    ("test_vae_loss", "loss-item", {"vae_loss": _loss(item=True)}, ["0-d", "no gradients"]),
]


@pytest.mark.parametrize("grade_id,case_id,objects", [pytest.param(*c, id=c[1]) for c in VD_CORRECT])
def test_correct_solution_gets_full_marks(grade_id, case_id, objects):
    problems = full_marks_problems(vd.PROBLEM_SET, grade_id, objects, SEEDS)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("grade_id,case_id,objects,keywords", [pytest.param(*c, id=c[1]) for c in VD_MISTAKES])
def test_classic_mistake_loses_half_its_unit_with_a_message_that_names_it(grade_id, case_id, objects, keywords):
    problems = mistake_problems(vd.PROBLEM_SET, grade_id, objects, keywords, SEEDS)
    assert not problems, "\n".join(problems)


def test_corpus_size():
    """At least 8 correct styles of every graded part and 15 classic mistakes; ids unique."""
    for unit in vd.PROBLEM_SET.units:
        assert sum(1 for c in VD_CORRECT if c[0] == unit.grade_id) >= 8, unit.grade_id
        assert sum(1 for c in VD_MISTAKES if c[0] == unit.grade_id) >= 3, unit.grade_id
    assert len(VD_MISTAKES) >= 15
    ids = [c[1] for c in VD_CORRECT + VD_MISTAKES]
    assert len(ids) == len(set(ids))


# =====================================================================================================
# The same corpus through the visible checks (what the notebook's test cells and the self-check run)
# =====================================================================================================

def _visible_verdict(grade_id, objects):
    """None when the unit's visible check passes, else what it said (a failed check or the error raised)."""
    from course_utils.checks import vae_denoising as checks

    check = {"test_add_noise": checks.check_add_noise, "test_denoising_autoencoder": checks.check_denoising_autoencoder,
             "test_vae": checks.check_vae, "test_vae_loss": checks.check_vae_loss}[grade_id]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            check(*objects.values())
    except Exception as exc:  # a failed check, or the student's code raising inside it: the cell fails
        return f"{type(exc).__name__}: {exc}"
    return None


# Mistakes the visible checks miss, and why; the hidden tests catch every one of them.
VISIBLE_MISSES = {
    "dae-no-relu-before-reshape": "right shapes, parameter count and (0, 1) range: only loading known weights into "
                                  "the layers (the hidden check) shows the missing activation",
}


def test_visible_checks_pass_every_correct_solution_and_catch_what_they_can():
    torch.manual_seed(0)
    wrong = [(c[1], v) for c in VD_CORRECT if (v := _visible_verdict(c[0], c[2])) is not None]
    assert not wrong, f"visible checks fail correct solutions: {wrong}"
    missed = {c[1] for c in VD_MISTAKES if _visible_verdict(c[0], c[2]) is None}
    assert missed <= set(VISIBLE_MISSES), f"missed, not declared: {missed - set(VISIBLE_MISSES)}"


def test_a_loss_written_for_digits_only_keeps_the_checks_of_the_digits():
    """vae_loss hard-wired to 784 pixels (x.view(-1, 784)) breaks on colour images, which the text allows: it loses
    that check, and the unit's second half, with the error named, but keeps the value checks on digits."""
    def loss_784(recon, x, mu, logvar, beta=1.0):
        bce = F.binary_cross_entropy(recon.view(-1, 784), x.view(-1, 784), reduction="sum")
        return (bce - beta * 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())) / x.shape[0]

    unit, results = grade_unit(vd.PROBLEM_SET, "test_vae_loss", {"vae_loss": loss_784}, 0)
    failed = {r.name: r.message for r in results if not r.passed}
    assert set(failed) == {vd.VAELossChecks.SHAPES, unit.whole_check}, failed
    assert "raised an error" in failed[vd.VAELossChecks.SHAPES] and "(4, 3, 8, 8)" in failed[vd.VAELossChecks.SHAPES]
