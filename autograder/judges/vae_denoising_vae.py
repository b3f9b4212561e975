"""Problem set "vae_denoising": the check names and the judge of the VAE (encode, reparameterize, decode, forward).

The two dense heads of the VAE (mean and log-variance) have layers of the same shapes, so the grader's weights may
land in either head depending on the order a solution declares them: the judge accepts every way of pairing the
grader's head layers with the student's (a network whose heads are named the other way round computes the same
thing once trained). ``reparameterize`` is judged on its draws: (z - mu) / sigma must be standard normal, new for
every entry, repeatable with torch.manual_seed, and differentiable in mu and logvar.
"""
from __future__ import annotations

import itertools

import torch

from ..core import CheckNames, check, fmt_shape
from .common import layer_shapes, tensor_list
from .vae_denoising import VAE, dense_head, parameter_count


class VAEChecks(CheckNames):
    SHAPES = "VAE output shapes"
    PARAMS = "VAE parameter count"
    ENCODE = "VAE.encode gives (mu, logvar) of the specified layers"
    DECODE = "VAE.decode computes the specified layers, in (0, 1)"
    REPARAMETERIZE = "VAE.reparameterize draws mu + eps * exp(logvar / 2), eps ~ N(0, I)"
    GRADIENTS = "gradients flow through reparameterize to mu and logvar"
    FORWARD = "VAE.forward returns (decode(reparameterize(mu, logvar)), mu, logvar)"


def _head_outputs(ref: VAE, x: torch.Tensor, d: int) -> list:
    """(mu, logvar) of every pairing of the reference's head layers (first layer from one head, last from either)."""
    with torch.no_grad():
        h = ref.trunk(x)
        firsts, lasts = (ref.mu_head[0], ref.logvar_head[0]), (ref.mu_head[2], ref.logvar_head[2])
        out = []
        for i, j in itertools.product((0, 1), (0, 1)):
            a = lasts[j](torch.relu(firsts[i](h)))
            b = lasts[1 - j](torch.relu(firsts[1 - i](h)))
            out += [(a, b), (b, a)]
    return out


def _std_mistake(z, mu, logvar) -> str:
    """Names the classic mistake of a reparameterisation, from its draws."""
    if torch.allclose(z, mu, atol=1e-6):
        return "z equals mu: there is no random draw (z = mu + eps * sigma with eps = torch.randn_like(mu)). "
    candidates = {"you use exp(logvar) as the standard deviation (it is the variance: sigma = exp(logvar / 2))":
                  logvar.exp(),
                  "you use logvar itself as the standard deviation (sigma = exp(logvar / 2))": logvar,
                  "you use exp(-logvar / 2) (sigma = exp(+logvar / 2))": (-0.5 * logvar).exp(),
                  "you use sqrt(logvar)": logvar.abs().sqrt()}
    for mistake, std in candidates.items():
        if standard_normal(((z - mu) / std).double(), logvar):
            return f"It looks like {mistake}. "
    if standard_normal((z - mu).double(), logvar):
        return "It looks like sigma is left out: z = mu + eps * exp(logvar / 2). "
    return ""


def _spread(eps: torch.Tensor, logvar: torch.Tensor) -> str:
    """Mean and standard deviation where logvar is small and where it is large (a wrong sigma can look right
    over all entries together, so the overall figures would mislead)."""
    parts = []
    for name, g in (("logvar < -1.5", eps[logvar < -1.5]), ("logvar > 0.5", eps[logvar > 0.5])):
        if g.numel() > 1:
            parts.append(f"mean {float(g.mean()):.3f} and standard deviation {float(g.std()):.3f} where {name}")
    return "; ".join(parts) or "too few entries to tell"


def standard_normal(eps: torch.Tensor, logvar: torch.Tensor) -> bool:
    """Whether ``eps`` looks like N(0, 1) draws both where logvar is small and where it is large (a wrong sigma
    can give the right spread over all entries, not in both groups); > 2,000 draws per group, bounds ~5 errors."""
    groups = [eps[logvar < -1.5], eps[logvar > 0.5]]
    return all(g.numel() > 100 and abs(float(g.mean())) < 0.1 and abs(float(g.std()) - 1) < 0.07 for g in groups)


def judge_vae(obs: dict, inputs: dict) -> list:
    dims = obs.get("dims")
    if not isinstance(dims, dict):
        raise ValueError("no observations per latent size")
    msgs = {k: [] for k in ("shapes", "params", "encode", "decode", "reparam", "grads", "forward")}
    for d, x, z_in, weights in zip(inputs["dims"], inputs["x"], inputs["z"], inputs["weights"]):
        d = int(d)
        seen, where = dims.get(str(d)) or {}, f"VAE(latent_dim={d})"
        if "error" in seen:
            for lst in msgs.values():
                lst.append(str(seen["error"]))
            continue
        from course_utils.probes.common import load_by_shape

        ref = VAE(d)
        load_by_shape(ref, weights)
        ref.eval()
        mu, logvar, decoded = seen.get("mu"), seen.get("logvar"), seen.get("decoded")
        b = x.shape[0]
        if not (torch.is_tensor(mu) and torch.is_tensor(logvar) and tuple(mu.shape) == (b, d)
                and tuple(logvar.shape) == (b, d)):
            msgs["shapes"].append(f"{where}: encode gave {seen.get('encode_kind', 'nothing')} (expected a pair "
                                  f"(mu, logvar) of shape ({b}, {d}) each)")
        if not (torch.is_tensor(decoded) and tuple(decoded.shape) == (z_in.shape[0], 1, 28, 28)):
            msgs["shapes"].append(f"{where}: decode gave {fmt_shape(decoded.shape) if torch.is_tensor(decoded) else seen.get('decode_error', 'nothing')} "
                                  f"(expected ({z_in.shape[0]}, 1, 28, 28))")
        params = tensor_list(seen.get("params"), "the parameters")
        n, want_n = sum(p.numel() for p in params), parameter_count(VAE(d))
        if n != want_n:
            msgs["params"].append(f"{where}: {n:,} parameters (layers {layer_shapes(params)}), expected {want_n:,} "
                                  f"(layers {layer_shapes(list(VAE(d).parameters()))})")
        if seen.get("loaded") is not True:
            msg = f"{where}: layers of other shapes than those specified, so the grader could not load its weights"
            msgs["encode"].append(msg)
            msgs["decode"].append(msg)
        else:
            if torch.is_tensor(mu) and torch.is_tensor(logvar):
                pairs = _head_outputs(ref, x, d)
                if not any(mu.shape == a.shape and torch.allclose(mu, a, atol=1e-5, rtol=1e-4)
                           and torch.allclose(logvar, c, atol=1e-5, rtol=1e-4) for a, c in pairs):
                    msgs["encode"].append(f"{where}: (mu, logvar) differ from those of the specified layers")
            with torch.no_grad():
                want = ref.decode(z_in)
            if not (torch.is_tensor(decoded) and decoded.shape == want.shape
                    and torch.allclose(decoded, want, atol=1e-5, rtol=1e-4)):
                msgs["decode"].append(f"{where}: decode(z) differs from the specified layers' output")
        if torch.is_tensor(decoded) and decoded.numel() and not bool(((decoded > 0) & (decoded < 1)).all()):
            msgs["decode"].append(f"{where}: decoded values in [{decoded.min().item():.3g}, {decoded.max().item():.3g}]")
        _judge_draws(seen, inputs, where, msgs)
    return [
        check(VAEChecks.SHAPES, 0.1, not msgs["shapes"], expected="encode(x) -> (mu, logvar), each (B, latent_dim); "
              "decode(z) -> (B, 1, 28, 28)", obtained="; ".join(msgs["shapes"])),
        check(VAEChecks.PARAMS, 0.1, not msgs["params"], expected=f"{parameter_count(VAE(2)):,} parameters for "
              f"latent_dim=2 (the table's layers)", obtained="; ".join(msgs["params"]),
              hint="The conv trunk of the autoencoder, then two heads Linear(288, 128), ReLU, Linear(128, latent_dim) "
                   "(one for mu, one for logvar); the autoencoder's decoder."),
        check(VAEChecks.ENCODE, 0.15, not msgs["encode"], expected="the specified layers' (mu, logvar) (the grader "
              "loaded its own random weights into your layers)", obtained="; ".join(msgs["encode"]),
              hint="mu = mu_head(trunk(x)) and logvar = logvar_head(trunk(x)), nothing after either head's last Linear."),
        check(VAEChecks.DECODE, 0.15, not msgs["decode"], expected="the specified decoder's output, strictly between 0 "
              "and 1", obtained="; ".join(msgs["decode"]), hint="The same decoder as the autoencoder, Sigmoid at the end."),
        check(VAEChecks.REPARAMETERIZE, 0.2, not msgs["reparam"], expected="z = mu + eps * exp(logvar / 2) with eps "
              "drawn from N(0, I) by torch, new for every entry and every call", obtained=" ".join(msgs["reparam"])),
        check(VAEChecks.GRADIENTS, 0.15, not msgs["grads"], expected="dz/dmu = 1 and dz/dlogvar = (z - mu) / 2",
              obtained="; ".join(msgs["grads"]), hint="Compute z with torch operations on mu and logvar (no .detach(), "
              "no torch.no_grad(), no numpy)."),
        check(VAEChecks.FORWARD, 0.15, not msgs["forward"], expected="forward(x) == (decode(reparameterize(mu, logvar)), "
              "mu, logvar) with (mu, logvar) = encode(x)", obtained="; ".join(msgs["forward"]),
              hint="Decode a sample z, not mu, and return the three in this order."),
    ]


def _judge_draws(seen: dict, inputs: dict, where: str, msgs: dict) -> None:
    mu, logvar = inputs["reparam_mu"], inputs["reparam_logvar"]
    z = seen.get("z")
    if not (torch.is_tensor(z) and z.shape == mu.shape):
        msgs["reparam"].append(f"{where}: reparameterize(mu, logvar) gave "
                               f"{fmt_shape(z.shape) if torch.is_tensor(z) else seen.get('reparam_error', 'nothing')} "
                               f"for mu and logvar of shape {fmt_shape(mu.shape)}")
        msgs["grads"].append(f"{where}: no sample")
    else:
        eps = (z.double() - mu.double()) / (0.5 * logvar.double()).exp()
        if torch.allclose(z, mu, atol=1e-6):
            msgs["reparam"].append(f"{where}: " + _std_mistake(z, mu, logvar))
        elif torch.allclose(eps[0], eps[1]) or torch.allclose(eps[:, 0], eps[:, 1]):
            msgs["reparam"].append(f"{where}: two rows (or two columns) got the same eps: draw one per entry "
                                   f"(torch.randn_like(mu))")
        elif not standard_normal(eps, logvar.double()):
            msgs["reparam"].append(f"{where}: (z - mu) / exp(logvar / 2) should be N(0, 1) wherever logvar lies; it "
                                   f"has {_spread(eps, logvar.double())}. " + _std_mistake(z, mu, logvar))
        repeat = seen.get("z_repeat")
        if not (torch.is_tensor(repeat) and torch.equal(repeat, z)):
            msgs["reparam"].append(f"{where}: the same torch.manual_seed gave another z (draw eps with torch)")
        again = seen.get("z_again")
        if torch.is_tensor(again) and torch.equal(again, z) and not torch.allclose(z, mu):
            msgs["reparam"].append(f"{where}: a second call gave the same z (draw a new eps on every call)")
        grads = seen.get("grads")
        if not (isinstance(grads, (list, tuple)) and len(grads) == 2 and all(torch.is_tensor(g) for g in grads)):
            msgs["grads"].append(f"{where}: {seen.get('grad_error', 'no gradients')}")
        else:
            g_mu, g_logvar = grads
            zg = seen.get("z_grad_sample", z)
            if not torch.allclose(g_mu, torch.ones_like(g_mu), atol=1e-5):
                msgs["grads"].append(f"{where}: dz/dmu is not 1 everywhere")
            if not torch.allclose(g_logvar, 0.5 * (zg - mu), atol=1e-4, rtol=1e-3):
                msgs["grads"].append(f"{where}: dz/dlogvar differs from (z - mu) / 2")
    fwd, composed = seen.get("forward"), seen.get("composed")
    if not (isinstance(fwd, (list, tuple)) and len(fwd) == 3 and all(torch.is_tensor(t) for t in fwd)):
        msgs["forward"].append(f"{where}: forward gave {seen.get('forward_kind', 'nothing')}, not three tensors")
    elif isinstance(composed, (list, tuple)) and len(composed) == 3:
        recon, f_mu, f_logvar = fwd
        c_recon, c_mu, c_logvar = composed
        if recon.shape != c_recon.shape:
            msgs["forward"].append(f"{where}: the reconstruction has shape {fmt_shape(recon.shape)}, not "
                                   f"{fmt_shape(c_recon.shape)}")
        elif not (torch.allclose(f_mu, c_mu, atol=1e-5) and torch.allclose(f_logvar, c_logvar, atol=1e-5)):
            msgs["forward"].append(f"{where}: its mu and logvar are not encode(x)'s (in that order)")
        elif not torch.allclose(recon, c_recon, atol=1e-5, rtol=1e-4):
            mean_recon = seen.get("decoded_mu")
            hint = (" (it decodes mu: decode a sample)" if torch.is_tensor(mean_recon)
                    and torch.allclose(recon, mean_recon, atol=1e-5) else "")
            msgs["forward"].append(f"{where}: the reconstruction differs from decode(reparameterize(mu, logvar)) drawn "
                                   f"after the same torch.manual_seed{hint}")
    else:
        msgs["forward"].append(f"{where}: {seen.get('composed_error', 'encode, reparameterize or decode failed')}")


__all__ = ["VAEChecks", "judge_vae", "dense_head"]
