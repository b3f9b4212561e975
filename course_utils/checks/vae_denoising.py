"""Visible checks of "vae_denoising", run by the notebook's test cells (see course_utils.checks).

They check what the notebook text states (shapes, parameter counts, value ranges, the noise's amounts, the draws of
reparameterize, a loss worked out on paper) and explain failures in words you can act on. Passing them is a good
sign, not a grade: the autograder runs its own, more thorough, hidden checks.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from . import CheckFailed, _call, _ok, _one_thread, _require, _shape, _visible, count_parameters

__all__ = ["CheckFailed", "check_add_noise", "check_denoising_autoencoder", "check_vae", "check_vae_loss"]

DAE_PARAMETERS = 94_498  # DenoisingAutoencoder(latent_dim=33), as the notebook's table gives it
VAE_PARAMETERS = 123_781  # VAE(latent_dim=2)


def _noisy(add_noise, level: float, kind: str, n: int = 16) -> torch.Tensor:
    images = torch.full((n, 1, 28, 28), level)
    given = images.clone()
    out = _call(f"add_noise(images, {kind!r})", add_noise, given, kind)
    _require(torch.is_tensor(out) and tuple(out.shape) == tuple(images.shape),
             f"add_noise(images, {kind!r}) to give a tensor of shape {tuple(images.shape)}",
             _shape(out) if torch.is_tensor(out) else type(out).__name__)
    _require(torch.equal(given, images), "the images given to add_noise to stay unchanged", "they changed (in place)",
             "Build a new tensor; do not write into `images`.")
    _require(float(out.min()) >= 0 and float(out.max()) <= 1, f"{kind} noise clipped to [0, 1]",
             f"values in [{float(out.min()):.3f}, {float(out.max()):.3f}] for images whose pixels are all {level:g}",
             "Clip at the end: noisy.clamp(0, 1).")
    return out


@_visible
@_one_thread
def check_add_noise(add_noise) -> None:
    """The three kinds on constant images, whose noisy values you can predict."""
    print("Checking add_noise:")
    torch.manual_seed(0)
    for kind in ("gaussian", "salt_pepper", "speckle"):
        _noisy(add_noise, 0.9, kind)
    _ok("every kind keeps the shape, leaves its input alone and clips to [0, 1]")
    out = _noisy(add_noise, 0.0, "gaussian")
    mean = float(out.mean())
    _require(0.47 < mean < 0.53, "black images to become grey around 0.5 with gaussian noise N(0.5, 0.3)",
             f"a mean of {mean:.3f}", "The noise added is N(0.5, 0.3): its mean is 0.5, not 0.")
    spread = float(_noisy(add_noise, 0.0, "gaussian").std())
    _require(0.26 < spread < 0.32, "a standard deviation near 0.3 (a bit less after clipping: 0.29)",
             f"{spread:.3f}", "0.3 is the standard deviation, not the variance.")
    _ok(f"gaussian: black images become grey, mean {mean:.2f}, spread {spread:.2f}")
    out = _noisy(add_noise, 0.5, "salt_pepper", n=64)
    changed, salt = float((out != 0.5).float().mean()), float((out == 1).float().mean())
    _require(0.04 < changed < 0.06, "one pixel in 20 (5%) set to 0 or 1", f"{changed:.1%} changed",
             "The amount counts salt and pepper together: each hit pixel is salt or pepper with probability 1/2.")
    _require(0.4 < salt / changed < 0.6, "as much salt (1) as pepper (0)", f"{salt / changed:.0%} salt")
    _ok(f"salt_pepper: {changed:.1%} of the pixels hit, half of them salt")
    _require(bool((_noisy(add_noise, 0.0, "speckle") == 0).all()), "black pixels to stay black with speckle noise "
             "(image + image * noise)", "some became brighter", "Multiply the noise by the image before adding it.")
    spread = float(_noisy(add_noise, 0.4, "speckle").std())
    _require(0.17 < spread < 0.23, "a spread of 0.4 * 0.5 = 0.2 for pixels of 0.4 with speckle noise",
             f"{spread:.3f}", "speckle adds images * n with n drawn from N(0, 0.5) (standard deviation 0.5).")
    _ok(f"speckle: black stays black, pixels of 0.4 spread by {spread:.2f}")
    images = torch.full((4, 1, 28, 28), 0.4)
    for kind in ("gaussian", "salt_pepper", "speckle"):
        torch.manual_seed(1)
        first = _call("add_noise", add_noise, images.clone(), kind)
        torch.manual_seed(1)
        again = _call("add_noise", add_noise, images.clone(), kind)
        _require(torch.equal(first, again), f"the same {kind} noise after the same torch.manual_seed", "different noise",
                 "Draw with torch (torch.randn_like, torch.rand_like), not numpy or random.")
        _require(not torch.equal(first[0], first[1]), "every image of a batch to get its own noise",
                 f"images 0 and 1 got the same {kind} noise", "Draw noise of the images' own shape.")
    _ok("seeded by torch.manual_seed, new noise for every image")
    try:
        add_noise(images, "blur")
        raise CheckFailed("expected a ValueError for an unknown kind ('blur'), obtained no error.")
    except ValueError:
        _ok("an unknown kind raises ValueError")
    print("add_noise: visible checks passed.")


def _make(cls, name: str, d: int) -> nn.Module:
    torch.manual_seed(0)
    model = _call(f"{name}(latent_dim={d})", cls, latent_dim=d)
    _require(isinstance(model, nn.Module), f"{name}(...) to create a torch.nn.Module", type(model).__name__)
    return model.eval()


@_visible
@_one_thread
def check_denoising_autoencoder(DenoisingAutoencoder) -> None:  # noqa: N803 - the student's class
    print("Checking DenoisingAutoencoder:")
    model = _make(DenoisingAutoencoder, "DenoisingAutoencoder", 33)
    n = count_parameters(model)
    _require(n == DAE_PARAMETERS, f"{DAE_PARAMETERS:,} parameters for latent_dim=33 (the table's layers)", f"{n:,}",
             "Convs 1 -> 8 -> 16 -> 32 (kernel 3, stride 2, padding 1, 1, 0), Linear(288, 128), Linear(128, 33); "
             "the decoder mirrors them.")
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        z = _call("DenoisingAutoencoder.encode", model.encode, x)
        out = _call("DenoisingAutoencoder.decode", model.decode, z)
        full = _call("DenoisingAutoencoder.forward", model, x)
    _require(tuple(z.shape) == (2, 33), "encode to give shape (2, 33) for images (2, 1, 28, 28)", _shape(z))
    _require(tuple(out.shape) == (2, 1, 28, 28) and tuple(full.shape) == (2, 1, 28, 28),
             "decode and forward to give (2, 1, 28, 28)", f"{_shape(out)} and {_shape(full)}")
    _require(bool(((full > 0) & (full < 1)).all()), "outputs strictly between 0 and 1",
             f"values in [{full.min().item():.3g}, {full.max().item():.3g}]", "The decoder ends with a Sigmoid.")
    _require(torch.allclose(full, out, atol=1e-6), "forward(x) == decode(encode(x))", "another result")
    _require(bool((z < 0).any()), "some negative code values (nothing follows the encoder's last Linear)",
             "all of them >= 0", "Do not put an activation after the last Linear.")
    _ok(f"{n:,} parameters, code (2, 33), reconstruction (2, 1, 28, 28) in (0, 1)")
    print("DenoisingAutoencoder: visible checks passed.")


@_visible
@_one_thread
def check_vae(VAE) -> None:  # noqa: N803 - the student's class
    print("Checking VAE:")
    model = _make(VAE, "VAE", 2)
    n = count_parameters(model)
    _require(n == VAE_PARAMETERS, f"{VAE_PARAMETERS:,} parameters for latent_dim=2 (the table's layers)", f"{n:,}",
             "The autoencoder's conv trunk, two heads Linear(288, 128), ReLU, Linear(128, 2), the autoencoder's decoder.")
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        encoded = _call("VAE.encode", model.encode, x)
        _require(isinstance(encoded, (tuple, list)) and len(encoded) == 2, "encode(x) to return a pair (mu, logvar)",
                 type(encoded).__name__)
        mu, logvar = encoded
        _require(tuple(mu.shape) == (3, 2) and tuple(logvar.shape) == (3, 2), "mu and logvar of shape (3, 2)",
                 f"{_shape(mu)} and {_shape(logvar)}")
        out = _call("VAE.decode", model.decode, mu)
        _require(tuple(out.shape) == (3, 1, 28, 28) and bool(((out > 0) & (out < 1)).all()),
                 "decode(z) of shape (3, 1, 28, 28) in (0, 1)", _shape(out), "The decoder ends with a Sigmoid.")
    _require(not torch.allclose(mu, logvar), "mu and logvar from two separate heads (different values)",
             "the same values for both", "mu = mu_head(h) and logvar = logvar_head(h), each head its own layers.")
    _ok(f"{n:,} parameters; mu, logvar (3, 2) from two heads; decode (3, 1, 28, 28) in (0, 1)")
    mu = torch.full((4000, 2), 1.0)
    logvar = torch.tensor([math.log(4.0), math.log(0.25)]).expand(4000, 2).clone()
    with torch.no_grad():
        z = _call("VAE.reparameterize", model.reparameterize, mu, logvar)
    _require(not torch.allclose(z, mu), "a random z around mu", "z == mu",
             "z = mu + eps * exp(logvar / 2) with eps = torch.randn_like(mu).")
    std = z.std(dim=0)
    _require(abs(float(std[0]) - 2) < 0.15 and abs(float(std[1]) - 0.5) < 0.04,
             "standard deviations 2 and 0.5 for logvar = log 4 and log 0.25 (sigma = exp(logvar / 2))",
             f"{float(std[0]):.2f} and {float(std[1]):.2f}",
             "exp(logvar) is the variance; its square root, exp(logvar / 2), is the standard deviation.")
    _require(abs(float(z.mean(0)[0]) - 1) < 0.15, "samples centred on mu = 1", f"a mean of {float(z.mean(0)[0]):.2f}")
    _ok("reparameterize: z ~ N(mu, exp(logvar)), standard deviations 2.0 and 0.5 as expected")
    small_mu, small_logvar = mu[:5].clone(), logvar[:5].clone()
    torch.manual_seed(3)
    first = _call("VAE.reparameterize", model.reparameterize, small_mu, small_logvar)
    torch.manual_seed(3)
    again = _call("VAE.reparameterize", model.reparameterize, small_mu, small_logvar)
    _require(torch.equal(first, again), "the same z after the same torch.manual_seed", "another z",
             "Draw eps with torch (torch.randn_like(mu)), not numpy.")
    m, lv = small_mu.clone().requires_grad_(True), small_logvar.clone().requires_grad_(True)
    z = _call("VAE.reparameterize", model.reparameterize, m, lv)
    _call("backward through reparameterize", z.sum().backward)
    _require(lv.grad is not None and torch.allclose(lv.grad, 0.5 * (z - m).detach(), atol=1e-5),
             "dz/dlogvar = (z - mu) / 2 (gradients flow through sigma)",
             "no gradient" if lv.grad is None else "another gradient",
             "Compute sigma from logvar with torch operations, without .detach().")
    _ok("reparameterize: repeatable with torch.manual_seed, gradients reach mu and logvar")
    with torch.no_grad():
        result = _call("VAE.forward", model, x)
    _require(isinstance(result, (tuple, list)) and len(result) == 3, "forward(x) to return (recon, mu, logvar)",
             type(result).__name__)
    _require(tuple(result[0].shape) == (3, 1, 28, 28), "recon of shape (3, 1, 28, 28)", _shape(result[0]))
    with torch.no_grad():
        mean_recon = model.decode(result[1])
    _require(not torch.allclose(result[0], mean_recon, atol=1e-6), "forward to decode a sample z, not mu",
             "decode(mu)", "recon = decode(reparameterize(mu, logvar)).")
    _ok("forward returns (recon, mu, logvar)")
    print("VAE: visible checks passed.")


@_visible
@_one_thread
def check_vae_loss(vae_loss) -> None:
    """Two tiny images and latents worked out on paper."""
    print("Checking vae_loss:")
    x = torch.tensor([[[[0.0, 1.0], [1.0, 0.0]]], [[[1.0, 1.0], [0.0, 0.2]]]])  # (2, 1, 2, 2)
    recon = torch.full((2, 1, 2, 2), 0.5, requires_grad=True)  # every pixel's BCE is ln 2
    mu = torch.tensor([[1.0, 0.0], [0.0, 0.0]], requires_grad=True)
    logvar = torch.tensor([[0.0, 0.0], [math.log(2.0), 0.0]], requires_grad=True)
    # KL per image: 0.5 * 1^2 = 0.5 and -0.5 * (1 + ln 2 - 2) = 0.1534; BCE per image: 4 ln 2 = 2.7726.
    value = _call("vae_loss", vae_loss, recon, x, mu, logvar)
    _require(torch.is_tensor(value) and value.ndim == 0, "a 0-d tensor (one number)",
             f"{type(value).__name__} {_shape(value) if torch.is_tensor(value) else ''}")
    got, want = float(value.detach()), 4 * math.log(2) + (0.5 + 0.5 * (1 - math.log(2))) / 2
    hints = {round(math.log(2) + (0.5 + 0.5 * (1 - math.log(2))) / 2, 4): "That is with the mean over the pixels: sum.",
             round(4 * math.log(2) - (0.5 + 0.5 * (1 - math.log(2))) / 2, 4): "The KL term has the wrong sign.",
             round(2 * want, 4): "That is the sum over the batch: divide by the batch size.",
             round(4 * math.log(2), 4): "The KL term is missing."}
    _require(abs(got - want) < 1e-4, f"(4 ln 2 + 0.5) / 2 + (4 ln 2 + 0.1534) / 2 = {want:.4f}", f"{got:.4f}",
             hints.get(round(got, 4), ""))
    _ok(f"two images, BCE 4 ln 2 each, KL 0.5 and 0.153: loss {want:.4f}")
    got2 = float(torch.as_tensor(_call("vae_loss", vae_loss, recon, x, mu, logvar, beta=2.0)).detach())
    want2 = 4 * math.log(2) + (0.5 + 0.5 * (1 - math.log(2)))
    _require(abs(got2 - want2) < 1e-4, f"{want2:.4f} with beta=2 (the KL term doubled)", f"{got2:.4f}",
             "Multiply the KL term by beta.")
    _ok(f"beta=2: loss {want2:.4f}")
    _require(value.requires_grad, "a loss that carries gradients", "a tensor without gradients",
             "Do not call .item() or .detach().")
    value.backward()
    _require(all(t.grad is not None and bool(torch.isfinite(t.grad).all()) for t in (recon, mu, logvar)),
             "finite gradients for recon, mu and logvar", "some missing or not finite")
    _ok("gradients reach recon, mu and logvar")
    print("vae_loss: visible checks passed.")
