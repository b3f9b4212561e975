"""Problem set "vae_denoising": the reference implementation, the check names and the judges of add_noise and
DenoisingAutoencoder.

Everything that decides a grade, in the grader's process (``autograder/vae_denoising.py`` holds the grader inputs,
the units and the entry points, and imports this module). The reference follows the notebook's text, after the
report *Unsupervised Deep Learning* (Manzali, 2021): three kinds of noise with the report's parameters, clipped
to [0, 1]; a convolutional autoencoder of three conv layers and two dense layers, mirrored, with a Sigmoid output;
a VAE whose conv trunk feeds two dense heads (mean and log-variance); and the negative ELBO (binary cross-entropy
summed over pixels plus beta times the closed-form KL divergence to N(0, I), averaged over the batch).

The judges of VAE and vae_loss are in ``vae_denoising_vae.py`` and ``vae_denoising_vae_loss.py`` beside this
module (docs/ARCHITECTURE.md, "Adding a problem set").
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..core import CheckNames, check, fmt_shape
from .common import layer_shapes, tensor_list

NOISE_KINDS = ("gaussian", "salt_pepper", "speckle")
GAUSSIAN_MEAN, GAUSSIAN_STD = 0.5, 0.3  # the report's N(0.5, 0.3), added to the image
SALT_PEPPER_AMOUNT = 1 / 20  # the report's "one out of 20 pixels", salt or pepper with equal probability
SPECKLE_STD = 0.5  # the report's N(0, .5): image + image * noise
HIDDEN = 128  # the dense layer between the conv trunk and the latent space
TRUNK = 32 * 3 * 3  # the conv trunk's output for 28x28 images: (32, 3, 3) flattened


# ---- reference implementations ----------------------------------------------------------------

def add_noise(images, kind):
    """``images`` (any shape, values in [0, 1]) with noise of ``kind``, every entry drawn independently from
    torch's generator, clipped to [0, 1]; ``images`` itself is left unchanged."""
    if kind == "gaussian":
        noisy = images + GAUSSIAN_MEAN + GAUSSIAN_STD * torch.randn_like(images)
    elif kind == "salt_pepper":
        hit = torch.rand_like(images) < SALT_PEPPER_AMOUNT  # one entry in 20
        salt = torch.rand_like(images) < 0.5  # salt (1) or pepper (0), equally likely
        noisy = torch.where(hit, salt.to(images.dtype), images)
    elif kind == "speckle":
        noisy = images + images * SPECKLE_STD * torch.randn_like(images)
    else:
        raise ValueError(f"unknown kind {kind!r}: use one of {', '.join(NOISE_KINDS)}")
    return noisy.clamp(0, 1)


def conv_trunk() -> nn.Sequential:
    """(B, 1, 28, 28) -> (B, 32, 3, 3) -> flattened (B, 288)."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(),  # (B, 8, 14, 14)
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),  # (B, 16, 7, 7)
        nn.Conv2d(16, 32, 3, stride=2, padding=0), nn.ReLU(),  # (B, 32, 3, 3)
        nn.Flatten())  # (B, 288)


def dense_head(latent_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(TRUNK, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, latent_dim))  # (B, d)


def conv_decoder(latent_dim: int) -> nn.Sequential:
    """(B, d) -> (B, 1, 28, 28) in (0, 1): the mirror image of the trunk and one dense head."""
    return nn.Sequential(
        nn.Linear(latent_dim, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, TRUNK), nn.ReLU(),
        nn.Unflatten(1, (32, 3, 3)),
        nn.ConvTranspose2d(32, 16, 3, stride=2), nn.ReLU(),  # (B, 16, 7, 7)
        nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),  # (B, 8, 14, 14)
        nn.ConvTranspose2d(8, 1, 3, stride=2, padding=1, output_padding=1), nn.Sigmoid())  # (B, 1, 28, 28)


class DenoisingAutoencoder(nn.Module):
    """(B, 1, 28, 28) -> encode -> (B, latent_dim) -> decode -> (B, 1, 28, 28) in (0, 1)."""

    def __init__(self, latent_dim=33):
        super().__init__()
        self.encoder = nn.Sequential(conv_trunk(), dense_head(latent_dim))
        self.decoder = conv_decoder(latent_dim)

    def encode(self, x):
        return self.encoder(x)  # (B, d)

    def decode(self, z):
        return self.decoder(z)  # (B, 1, 28, 28)

    def forward(self, x):
        return self.decode(self.encode(x))


class VAE(nn.Module):
    """encode(x) -> (mu, logvar), each (B, latent_dim); reparameterize; decode(z) -> (B, 1, 28, 28) in (0, 1)."""

    def __init__(self, latent_dim=2):
        super().__init__()
        self.trunk = conv_trunk()
        self.mu_head, self.logvar_head = dense_head(latent_dim), dense_head(latent_dim)
        self.decoder = conv_decoder(latent_dim)

    def encode(self, x):
        h = self.trunk(x)  # (B, 288)
        return self.mu_head(h), self.logvar_head(h)

    def reparameterize(self, mu, logvar):
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)  # z = mu + eps * sigma

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar


def vae_loss(recon, x, mu, logvar, beta=1.0):
    """Mean over the batch of [BCE summed over pixels + beta * KL(N(mu, sigma^2) || N(0, I))]."""
    b = x.shape[0]
    bce = F.binary_cross_entropy(recon, x, reduction="sum")
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return (bce + beta * kl) / b


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def close(a: float, b: float, tol: float = 1e-4) -> bool:
    return abs(a - b) <= tol + tol * abs(b)


# ---- Part 1: add_noise ---------------------------------------------------------------------------------------

def clipped_normal_cdf(t: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """P(clip(N(mean, std), 0, 1) <= t), elementwise (t in [0, 1))."""
    cdf = 0.5 * (1 + torch.erf((t - mean) / (std.clamp_min(1e-12) * math.sqrt(2))))
    cdf = torch.where(std > 0, cdf, (mean <= t).double())
    return torch.where(t >= 1, torch.ones_like(cdf), cdf)


GRID = torch.linspace(0.025, 0.975, 20, dtype=torch.float64)  # where the distributions are compared (off the levels)


def expected_cdf(kind: str, level: float) -> torch.Tensor:
    """The CDF of one noisy entry of an image whose entries are all ``level``, on GRID."""
    level = torch.tensor(float(level), dtype=torch.float64)
    if kind == "gaussian":
        return clipped_normal_cdf(GRID, level + GAUSSIAN_MEAN, torch.tensor(GAUSSIAN_STD, dtype=torch.float64))
    if kind == "speckle":
        return clipped_normal_cdf(GRID, level, level * SPECKLE_STD)
    a = SALT_PEPPER_AMOUNT  # salt_pepper: 0 with a/2, 1 with a/2, the level itself otherwise
    return a / 2 + (1 - a) * (GRID >= level).double()


def empirical_cdf(values: torch.Tensor) -> torch.Tensor:
    v = values.double().reshape(-1)
    return (v[None, :] <= GRID[:, None]).double().mean(dim=1)


KS_TOL = 0.02  # sup distance between the CDFs (the grader draws >= 25,000 entries per level: sampling error < 0.01)


def salt_pepper_amounts(values: torch.Tensor, level: float) -> str:
    """What is wrong with the share of entries hit (1 in 20) or of salt among them (1 in 2), "" when both hold
    (an image of constant ``level`` > 0; the bounds are more than 5 standard errors of 25,000 draws wide)."""
    v = values.double().reshape(-1)
    changed = float((v - level).abs().gt(1e-6).double().mean())
    if not 0.042 <= changed <= 0.058:
        return (f"{changed:.1%} of the entries changed instead of 5% (one in 20): the amount is one in 20 in all, "
                f"salt and pepper together. ")
    salt = float((v > 1 - 1e-6).double().mean())
    if not 0.42 <= salt / changed <= 0.58:
        return f"{salt / changed:.0%} of the changed entries are salt (1) instead of half. "
    return ""


def _noise_mistake(kind: str, values: torch.Tensor, level: float) -> str:
    """Names the classic mistake whose distribution matches ``values`` (an image of constant ``level``)."""
    v = values.double().reshape(-1)
    got = empirical_cdf(v)
    mean = float(v.mean())
    if float(v.max()) > 1 + 1e-6 or float(v.min()) < -1e-6:
        return "The values are not clipped to [0, 1]. "
    variants = {}
    lv = torch.tensor(level, dtype=torch.float64)
    if kind == "gaussian":
        variants = {"you add N(0, 0.3) (mean 0) instead of N(0.5, 0.3)":
                    clipped_normal_cdf(GRID, lv, torch.tensor(0.3, dtype=torch.float64)),
                    "the noise's standard deviation is not 0.3 (0.3 is the standard deviation, not the variance)":
                    clipped_normal_cdf(GRID, lv + 0.5, torch.tensor(math.sqrt(0.3), dtype=torch.float64)),
                    "you draw the noise uniformly (torch.rand) instead of from a normal distribution (torch.randn)":
                    None}
    elif kind == "speckle":
        variants = {"you add N(0, 0.5) to the image instead of image * N(0, 0.5)":
                    clipped_normal_cdf(GRID, lv, torch.tensor(SPECKLE_STD, dtype=torch.float64)),
                    "the image is multiplied by the noise but not added back (image * n instead of image + image * n)":
                    clipped_normal_cdf(GRID, torch.zeros((), dtype=torch.float64), lv * SPECKLE_STD)}
    elif level > 0:  # on black images pepper changes nothing: the amounts show on the others
        amounts = salt_pepper_amounts(v, level)
        if amounts:
            return amounts
    for mistake, cdf in variants.items():
        if cdf is not None and float((got - cdf).abs().max()) < KS_TOL:
            return f"It looks like {mistake}. "
    return f"(mean of the noisy entries {mean:.3f}.) "


class AddNoiseChecks(CheckNames):
    SHAPE = "add_noise keeps the shape and leaves its input unchanged"
    RANGE = "add_noise clips to [0, 1]"
    GAUSSIAN = "gaussian noise: N(0.5, 0.3) added"
    SALT_PEPPER = "salt_pepper noise: one entry in 20 set to 0 or 1"
    SPECKLE = "speckle noise: image + image * N(0, 0.5)"
    INDEPENDENT = "add_noise draws new noise for every entry, image and call"
    SEEDED = "add_noise draws from torch's generator (torch.manual_seed repeats it)"
    UNKNOWN = "add_noise rejects an unknown kind"


def judge_add_noise(obs: dict, inputs: dict) -> list:
    kinds = obs.get("kinds")
    if not isinstance(kinds, dict):
        raise ValueError("no observations per kind of noise")
    shape_msgs, range_msgs, dist_msgs, indep_msgs, seed_msgs = [], [], {k: [] for k in NOISE_KINDS}, [], []
    for kind in NOISE_KINDS:
        seen = kinds.get(kind) or {}
        if "error" in seen:
            for lst in (shape_msgs, range_msgs, dist_msgs[kind], indep_msgs, seed_msgs):
                lst.append(f"{kind}: {seen['error']}")
            continue
        outs = tensor_list(seen.get("outputs"), "the noisy images")
        for level, x, out in zip(inputs["levels"], inputs["constant"], outs):
            where = f"add_noise(images, {kind!r}) on images whose entries are all {level:g}"
            if tuple(out.shape) != tuple(x.shape):
                shape_msgs.append(f"{where}: shape {fmt_shape(out.shape)} instead of {fmt_shape(x.shape)}")
                continue
            if float(out.min()) < 0 or float(out.max()) > 1:
                range_msgs.append(f"{where}: values in [{float(out.min()):.3g}, {float(out.max()):.3g}]")
            distance = float((empirical_cdf(out) - expected_cdf(kind, level)).abs().max())
            if kind == "salt_pepper" and level > 0 and not dist_msgs[kind]:
                amounts = salt_pepper_amounts(out, float(level))  # the share of entries hit, of salt among them
                if amounts:
                    dist_msgs[kind].append(f"{where}: {amounts}")
                    continue
            if distance > KS_TOL and not dist_msgs[kind]:
                dist_msgs[kind].append(f"{where}: a distribution of values {distance:.3f} away (largest gap between "
                                       f"the cumulative distributions) from the one stated. "
                                       + _noise_mistake(kind, out, float(level)))
        if seen.get("unchanged") is not True:
            shape_msgs.append(f"{kind}: the images given to add_noise changed (write into a new tensor)")
        grey = outs[0]  # the grey images: every kind of noise changes some of their entries
        if torch.equal(grey[0], grey[1]) or torch.equal(grey[:, :, 0], grey[:, :, 1]):
            indep_msgs.append(f"{kind}: two images (or two rows of one image) got exactly the same noise")
        again = seen.get("other_call")
        if torch.is_tensor(again) and torch.equal(again, grey):
            indep_msgs.append(f"{kind}: a second call without reseeding gave exactly the same noise")
        repeat = seen.get("repeat")
        if not (torch.is_tensor(repeat) and torch.equal(repeat, grey)):
            seed_msgs.append(f"{kind}: the same torch.manual_seed gave different noise")
    unknown = obs.get("unknown_kind", "")
    hints = {
        AddNoiseChecks.GAUSSIAN: "Add GAUSSIAN noise as images + 0.5 + 0.3 * torch.randn_like(images), then clip.",
        AddNoiseChecks.SALT_PEPPER: "Draw for every entry whether it is hit (probability 1/20), and for a hit "
                                    "whether it becomes 1 or 0 (probability 1/2 each); others keep their value.",
        AddNoiseChecks.SPECKLE: "images + images * (0.5 * torch.randn_like(images)), then clip: black stays black.",
    }
    results = [
        check(AddNoiseChecks.SHAPE, 0.1, not shape_msgs, expected="a new tensor of the images' shape, the images "
              "themselves unchanged", obtained="; ".join(shape_msgs)),
        check(AddNoiseChecks.RANGE, 0.15, not range_msgs, expected="every value in [0, 1] after the noise",
              obtained="; ".join(range_msgs), hint="Clip at the end: noisy.clamp(0, 1)."),
    ]
    for name, kind in ((AddNoiseChecks.GAUSSIAN, "gaussian"), (AddNoiseChecks.SALT_PEPPER, "salt_pepper"),
                       (AddNoiseChecks.SPECKLE, "speckle")):
        results.append(check(name, 0.15, not dist_msgs[kind], expected=f"{kind} noise with the notebook's parameters",
                             obtained=" ".join(dist_msgs[kind]), hint=hints[name]))
    results += [
        check(AddNoiseChecks.INDEPENDENT, 0.1, not indep_msgs, expected="independent noise for every entry of every "
              "image, new on every call", obtained="; ".join(indep_msgs),
              hint="Draw a tensor of the images' own shape (torch.randn_like(images), torch.rand_like(images))."),
        check(AddNoiseChecks.SEEDED, 0.1, not seed_msgs, expected="the same noise after the same torch.manual_seed",
              obtained="; ".join(seed_msgs), hint="Use torch's random functions, not numpy's or Python's random."),
        check(AddNoiseChecks.UNKNOWN, 0.05, unknown == "ValueError", expected="a ValueError for kind='blur'",
              obtained=unknown or "nothing raised"),
    ]
    return results


# ---- Part 2: DenoisingAutoencoder ---------------------------------------------------------------------------

class DenoisingAutoencoderChecks(CheckNames):
    SHAPES = "DenoisingAutoencoder output shapes"
    PARAMS = "DenoisingAutoencoder parameter count"
    RANGE = "DenoisingAutoencoder outputs lie in (0, 1)"
    ENCODE = "DenoisingAutoencoder.encode computes the specified layers"
    DECODE = "DenoisingAutoencoder.decode and forward compute the specified layers"


def _loaded_reference(cls, latent_dim: int, weights: list) -> nn.Module:
    from course_utils.probes.common import load_by_shape

    ref = cls(latent_dim)
    load_by_shape(ref, weights)
    return ref.eval()


def judge_denoising_autoencoder(obs: dict, inputs: dict) -> list:
    dims = obs.get("dims")
    if not isinstance(dims, dict):
        raise ValueError("no observations per latent size")
    msgs = {k: [] for k in ("shapes", "params", "range", "encode", "decode")}
    for d, x, z, weights in zip(inputs["dims"], inputs["x"], inputs["z"], inputs["weights"]):
        seen, where = dims.get(str(int(d))) or {}, f"DenoisingAutoencoder(latent_dim={int(d)})"
        if "error" in seen:
            for lst in msgs.values():
                lst.append(str(seen["error"]))
            continue
        ref = _loaded_reference(DenoisingAutoencoder, int(d), weights)
        with torch.no_grad():
            want = {"encoded": ref.encode(x), "decoded": ref.decode(z), "forward": ref(x)}
        got = {k: seen.get(k) for k in want}
        bad = [f"{k} gave {fmt_shape(got[k].shape) if torch.is_tensor(got[k]) else seen.get(k + '_error', 'nothing')} "
               f"(expected {fmt_shape(w.shape)})" for k, w in want.items()
               if not (torch.is_tensor(got[k]) and got[k].shape == w.shape)]
        if bad:
            msgs["shapes"].append(f"{where}: " + ", ".join(bad))
        params = tensor_list(seen.get("params"), "the parameters")
        n, want_n = sum(p.numel() for p in params), parameter_count(DenoisingAutoencoder(int(d)))
        if n != want_n:
            msgs["params"].append(f"{where}: {n:,} parameters (layers {layer_shapes(params)}), expected {want_n:,} "
                                  f"(layers {layer_shapes(list(DenoisingAutoencoder(int(d)).parameters()))})")
        for k in ("decoded", "forward"):
            t = got[k]
            if torch.is_tensor(t) and t.numel() and not bool(((t > 0) & (t < 1)).all()):
                msgs["range"].append(f"{where}: {k} values in [{t.min().item():.3g}, {t.max().item():.3g}]")
        if seen.get("loaded") is not True:
            msg = (f"{where}: layers with weight/bias shapes {layer_shapes(params)}, not those specified, so the "
                   f"grader could not load its weights into them")
            msgs["encode"].append(msg)
            msgs["decode"].append(msg)
            continue
        for key, part in (("encoded", "encode"), ("decoded", "decode"), ("forward", "decode")):
            t, w = got[key], want[key]
            if not (torch.is_tensor(t) and t.shape == w.shape and torch.allclose(t, w, atol=1e-5, rtol=1e-4)):
                detail = "the same shape but different values" if torch.is_tensor(t) and t.shape == w.shape else "no match"
                if key == "encoded" and torch.is_tensor(t) and t.shape == w.shape and bool((t >= 0).all()):
                    detail += " (all >= 0: is there an activation after the last Linear of the encoder?)"
                msgs[part].append(f"{where}: {key.replace('encoded', 'encode').replace('decoded', 'decode')} gave {detail}")
    return [
        check(DenoisingAutoencoderChecks.SHAPES, 0.2, not msgs["shapes"], expected="encode: (B, latent_dim), decode "
              "and forward: (B, 1, 28, 28)", obtained="; ".join(msgs["shapes"])),
        check(DenoisingAutoencoderChecks.PARAMS, 0.2, not msgs["params"], expected=f"{parameter_count(DenoisingAutoencoder(33)):,} "
              f"parameters for latent_dim=33 (the table's layers)", obtained="; ".join(msgs["params"]),
              hint="Three convs (1 -> 8 -> 16 -> 32, kernel 3, stride 2; padding 1, 1, 0), Linear(288, 128), "
                   "Linear(128, latent_dim); the decoder mirrors it."),
        check(DenoisingAutoencoderChecks.RANGE, 0.2, not msgs["range"], expected="outputs strictly between 0 and 1",
              obtained="; ".join(msgs["range"]), hint="The decoder ends with a Sigmoid."),
        check(DenoisingAutoencoderChecks.ENCODE, 0.2, not msgs["encode"], expected="the code of the specified layers "
              "(the grader loaded its own random weights into your layers)", obtained="; ".join(msgs["encode"]),
              hint="encode: conv trunk (each conv followed by ReLU), Flatten, Linear(288, 128), ReLU, "
                   "Linear(128, latent_dim), nothing after it."),
        check(DenoisingAutoencoderChecks.DECODE, 0.2, not msgs["decode"], expected="the reconstruction of the specified "
              "layers (the grader loaded its own random weights into your layers)", obtained="; ".join(msgs["decode"]),
              hint="decode: Linear(latent_dim, 128), ReLU, Linear(128, 288), ReLU, reshape to (32, 3, 3), "
                   "ConvTranspose2d 32 -> 16 -> 8 -> 1 (ReLU between, Sigmoid at the end); forward = decode(encode(x))."),
    ]
