"""Kernel-side probes of problem set "vae_denoising".

A probe runs the student's objects on inputs the grader chose and returns plain observations (tensors,
numbers, strings). It judges nothing and holds no solution: the verdict is computed by the grader in its own
process. Random functions (``add_noise``, ``reparameterize``) are observed on many draws, after
``torch.manual_seed``, so that the grader can compare their distributions with the ones stated.
"""
from __future__ import annotations


import torch
from torch import nn

from .common import (load_by_shape, as_tensor as _tensor, describe_value as _kind, error_text as _error,
                    parameters_of as _params)

NOISE_KINDS = ("gaussian", "salt_pepper", "speckle")


def probe_add_noise(objects: dict, inputs: dict) -> dict:
    """For every kind: the noisy versions of the grader's constant images (after torch.manual_seed), whether the
    inputs stayed unchanged, a repeat after the same seed and a second call; and what an unknown kind raises."""
    add_noise = objects["add_noise"]
    seed = int(inputs["seed"])
    out = {"kinds": {}}
    for kind in NOISE_KINDS:
        seen = {}
        try:
            torch.manual_seed(seed)
            given = [x.clone() for x in inputs["constant"]]
            seen["outputs"] = [_tensor(add_noise(x, kind)) for x in given]
            seen["unchanged"] = all(torch.equal(a, b) for a, b in zip(given, inputs["constant"]))
            seen["other_call"] = _tensor(add_noise(inputs["constant"][0].clone(), kind))
            torch.manual_seed(seed)
            seen["repeat"] = _tensor(add_noise(inputs["constant"][0].clone(), kind))  # the first call, repeated
            if any(t is None for t in seen["outputs"]):
                seen = {"error": f"add_noise(images, {kind!r}) returned no tensor"}
        except Exception as exc:
            seen = {"error": _error(exc, f"add_noise(images, {kind!r})")}
        out["kinds"][kind] = seen
    try:
        add_noise(inputs["constant"][0][:2].clone(), "blur")
        out["unknown_kind"] = ""
    except Exception as exc:  # a subclass of ValueError is a ValueError
        out["unknown_kind"] = "ValueError" if isinstance(exc, ValueError) else type(exc).__name__
    return out


def _build(cls, d: int, seed: int, name: str):
    torch.manual_seed(seed)
    model = cls(latent_dim=d)
    if not isinstance(model, nn.Module):
        raise TypeError(f"{name}(...) should create a torch.nn.Module, obtained a {type(model).__name__}")
    return model.cpu().float().eval()


def probe_denoising_autoencoder(objects: dict, inputs: dict) -> dict:
    """For every latent size: parameters, then with the grader's weights loaded (by shape) encode, decode, forward."""
    cls = objects["DenoisingAutoencoder"]
    out = {"dims": {}}
    for d, x, z, weights in zip(inputs["dims"], inputs["x"], inputs["z"], inputs["weights"]):
        key = str(int(d))
        try:
            model = _build(cls, int(d), int(inputs["seed"]), "DenoisingAutoencoder")
        except Exception as exc:
            out["dims"][key] = {"error": _error(exc, f"DenoisingAutoencoder(latent_dim={int(d)})")}
            continue
        seen = {"params": _params(model), "loaded": load_by_shape(model, weights)}
        for name, fn, arg in (("encoded", "encode", x), ("decoded", "decode", z), ("forward", "__call__", x)):
            try:
                with torch.no_grad():
                    seen[name] = _tensor(getattr(model, fn)(arg.clone()))
            except Exception as exc:
                seen[name + "_error"] = _error(exc, f"DenoisingAutoencoder.{fn.strip('_')}")
        out["dims"][key] = seen
    return out


def _vae_draws(model, inputs: dict, seed: int) -> dict:
    seen = {}
    mu, logvar = inputs["reparam_mu"], inputs["reparam_logvar"]
    try:
        with torch.no_grad():
            torch.manual_seed(seed)
            seen["z"] = _tensor(model.reparameterize(mu.clone(), logvar.clone()))
            seen["z_again"] = _tensor(model.reparameterize(mu.clone(), logvar.clone()))
            torch.manual_seed(seed)
            seen["z_repeat"] = _tensor(model.reparameterize(mu.clone(), logvar.clone()))
    except Exception as exc:
        seen["reparam_error"] = _error(exc, "VAE.reparameterize")
    try:
        m, lv = mu.clone().requires_grad_(True), logvar.clone().requires_grad_(True)
        torch.manual_seed(seed)
        z = model.reparameterize(m, lv)
        z.sum().backward()
        seen["z_grad_sample"] = _tensor(z)
        seen["grads"] = [_tensor(m.grad) if m.grad is not None else torch.zeros_like(mu),
                         _tensor(lv.grad) if lv.grad is not None else torch.zeros_like(logvar)]
    except Exception as exc:
        seen["grad_error"] = _error(exc, "backward through VAE.reparameterize")
    x = inputs["x_forward"]
    try:
        with torch.no_grad():
            torch.manual_seed(seed + 1)
            fwd = model(x.clone())
        seen["forward_kind"] = _kind(fwd)
        if isinstance(fwd, (tuple, list)):
            seen["forward"] = [_tensor(t) for t in fwd]
    except Exception as exc:
        seen["forward_kind"] = _error(exc, "VAE.forward")
    try:
        with torch.no_grad():
            torch.manual_seed(seed + 1)
            m, lv = model.encode(x.clone())
            seen["composed"] = [_tensor(model.decode(model.reparameterize(m, lv))), _tensor(m), _tensor(lv)]
            seen["decoded_mu"] = _tensor(model.decode(m))
    except Exception as exc:
        seen["composed_error"] = _error(exc, "decode(reparameterize(*encode(x)))")
    return seen


def probe_vae(objects: dict, inputs: dict) -> dict:
    """For every latent size: parameters; with the grader's weights loaded (by shape) encode and decode; draws of
    reparameterize (repeated after the same seed, a second call, gradients); forward against its parts."""
    cls = objects["VAE"]
    out = {"dims": {}}
    seed = int(inputs["seed"])
    for d, x, z, weights in zip(inputs["dims"], inputs["x"], inputs["z"], inputs["weights"]):
        key = str(int(d))
        try:
            model = _build(cls, int(d), seed, "VAE")
        except Exception as exc:
            out["dims"][key] = {"error": _error(exc, f"VAE(latent_dim={int(d)})")}
            continue
        seen = {"params": _params(model), "loaded": load_by_shape(model, weights)}
        try:
            with torch.no_grad():
                encoded = model.encode(x.clone())
            seen["encode_kind"] = _kind(encoded)
            if isinstance(encoded, (tuple, list)) and len(encoded) == 2:
                seen["mu"], seen["logvar"] = _tensor(encoded[0]), _tensor(encoded[1])
        except Exception as exc:
            seen["encode_kind"] = _error(exc, "VAE.encode")
        try:
            with torch.no_grad():
                seen["decoded"] = _tensor(model.decode(z.clone()))
        except Exception as exc:
            seen["decode_error"] = _error(exc, "VAE.decode")
        seen.update(_vae_draws(model, inputs, seed))
        out["dims"][key] = seen
    return out


def probe_vae_loss(objects: dict, inputs: dict) -> dict:
    """The loss of every grader case (default beta), with the betas the grader names, and its gradients."""
    vae_loss = objects["vae_loss"]
    out = {"default": [], "scalar": [], "betas": [], "errors": {}}

    def call(i, **kwargs):
        """The loss of case ``i`` (NaN, with the error kept, when the student's code raises on it)."""
        recon, x, mu, logvar = (t.clone() for t in inputs["cases"][int(i)])
        try:
            value = vae_loss(recon, x, mu, logvar, **kwargs)
        except Exception as exc:
            out["errors"].setdefault(str(int(i)), _error(exc, f"vae_loss on images of shape {tuple(x.shape)}"))
            return None, torch.tensor(float("nan"))
        t = _tensor(value)
        return value, (t if t is not None else torch.tensor(float("nan")))

    for i in range(len(inputs["cases"])):
        value, t = call(i)
        out["scalar"].append(bool(torch.is_tensor(value) and value.ndim == 0))
        out["default"].append(t)
    for i, beta in inputs["beta_cases"]:
        out["betas"].append(call(i, beta=float(beta))[1])
    try:
        recon, x, mu, logvar = (t.clone() for t in inputs["cases"][int(inputs["grad_case"])])
        for t in (recon, mu, logvar):
            t.requires_grad_(True)
        loss = vae_loss(recon, x, mu, logvar)
        loss.reshape(-1)[0].backward()
        out["grads"] = [t.grad.detach().cpu().clone() if t.grad is not None else torch.zeros_like(t)
                        for t in (recon, mu, logvar)]
    except Exception as exc:
        out["grad_error"] = _error(exc, "backward through vae_loss")
    return out
