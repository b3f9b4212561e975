"""Problem set "vae_denoising": the check names and the judge of vae_loss.

The judge compares with an independent negative ELBO written with torch.distributions (a Bernoulli likelihood of
the pixels, the KL divergence between two Normal distributions), in float64, and names the classic mistake whose
value matches when it does not.
"""
from __future__ import annotations

import torch
from torch import distributions as D
from torch.nn import functional as F

from ..core import CheckNames, check, fmt_shape
from .common import tensor_list
from .vae_denoising import close

TOL = 1e-4  # relative tolerance on a loss value


def negative_elbo(recon, x, mu, logvar, beta=1.0) -> float:
    """Independent of the reference: -log p(x | z) under independent Bernoulli pixels plus beta * KL(q || N(0, I)),
    summed over each sample's pixels and latent dimensions, averaged over the batch."""
    recon, x, mu, logvar = (t.double() for t in (recon, x, mu, logvar))
    b = x.shape[0]
    likelihood = D.Bernoulli(probs=recon, validate_args=False).log_prob(x).reshape(b, -1).sum(1)  # (B,)
    q = D.Normal(mu, (0.5 * logvar).exp())
    kl = D.kl_divergence(q, D.Normal(torch.zeros_like(mu), torch.ones_like(mu))).reshape(b, -1).sum(1)  # (B,)
    return float((-likelihood + beta * kl).mean())


def _variants(recon, x, mu, logvar, beta) -> dict:
    b = x.shape[0]
    bce_sum = F.binary_cross_entropy(recon, x, reduction="sum")
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return {
        "the KL term has the wrong sign (KL = -0.5 * sum(1 + logvar - mu^2 - exp(logvar)), a positive number)":
            (bce_sum - beta * kl) / b,
        "you take the mean over the pixels instead of the sum (F.binary_cross_entropy(..., reduction='sum'))":
            F.binary_cross_entropy(recon, x) + beta * kl / b,
        "you take the mean over the pixels instead of the sum (F.binary_cross_entropy(..., reduction='sum')), "
        "then divide by the batch size": (F.binary_cross_entropy(recon, x) + beta * kl) / b,
        "the loss is summed over the batch, not averaged (divide by the batch size)": bce_sum + beta * kl,
        "the KL term is summed over the batch while the reconstruction term is averaged": bce_sum / b + beta * kl,
        "you use the squared error instead of the binary cross-entropy": (F.mse_loss(recon, x, reduction="sum") + beta * kl) / b,
        "beta is ignored": (bce_sum + kl) / b,
        "beta multiplies the reconstruction term instead of the KL term": (beta * bce_sum + kl) / b,
        "the KL term lacks its factor 1/2": (bce_sum - beta * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())) / b,
        "the KL term uses exp(logvar / 2) (sigma) where the variance exp(logvar) belongs":
            (bce_sum - beta * 0.5 * torch.sum(1 + logvar - mu.pow(2) - (0.5 * logvar).exp())) / b,
        "the KL term is averaged over the latent dimensions instead of summed":
            (bce_sum + beta * kl / mu.shape[1]) / b,
        "the arguments of the binary cross-entropy are swapped (it is F.binary_cross_entropy(recon, x))":
            (F.binary_cross_entropy(x, recon, reduction="sum") + beta * kl) / b,
        "the KL term is left out": bce_sum / b,
    }


def loss_mistake(value: float, case: list, beta: float) -> str:
    recon, x, mu, logvar = (t.double() for t in case)
    right = negative_elbo(*case, beta=beta)
    for mistake, v in _variants(recon, x, mu, logvar, beta).items():
        if close(value, float(v), 1e-4) and not close(value, right, 1e-4):
            return f"It looks like {mistake}. "
    return ""


class VAELossChecks(CheckNames):
    SCALAR = "vae_loss returns a scalar tensor"
    VALUE = "vae_loss is the negative ELBO: BCE summed over pixels + KL, averaged over the batch"
    BETA = "vae_loss weighs the KL term by beta"
    SHAPES = "vae_loss works for any image shape and batch size"
    GRADIENTS = "gradients flow through vae_loss to recon, mu and logvar"


def judge_vae_loss(obs: dict, inputs: dict) -> list:
    cases = inputs["cases"]
    values = tensor_list(obs.get("default"), "the losses")
    errors = obs.get("errors") or {}
    scalar = [ok or str(i) in errors for i, ok in enumerate(obs.get("scalar") or [])]  # an error is named elsewhere
    results = [check(VAELossChecks.SCALAR, 0.15, len(scalar) == len(cases) and all(scalar) and len(errors) < len(cases),
                     expected="a 0-d tensor (one number) for every batch",
                     obtained=f"{sum(1 for s in scalar if not s)} of {len(cases)} results were not 0-d tensors"
                     + (f" ({next(iter(errors.values()))})" if errors else ""),
                     hint="Reduce to one number; do not call .item() (the loss must carry gradients).")]

    def compare(indices, betas):
        for i, beta in zip(indices, betas):
            got = values[i] if beta is None else obs_beta[(i, beta)]
            beta = 1.0 if beta is None else beta
            want = negative_elbo(*cases[i], beta=beta)
            error = errors.get(str(int(i)))
            if error:
                return f"{error} (expected {want:.4f})"
            if got.numel() != 1:
                return f"a tensor of shape {fmt_shape(got.shape)}, not one number (expected {want:.4f})"
            if not close(float(got.reshape(-1)[0]), want, TOL):
                b, shape = cases[i][1].shape[0], fmt_shape(cases[i][1].shape[1:])
                return (f"{float(got.reshape(-1)[0]):.4f} instead of {want:.4f} for a batch of {b} images of shape "
                        f"{shape}" + (f" with beta={beta:g}" if beta != 1.0 else "") + ". "
                        + loss_mistake(float(got.reshape(-1)[0]), cases[i], beta))
        return ""

    obs_beta = {(int(i), float(beta)): t for (i, beta), t in zip(inputs["beta_cases"],
                                                                  tensor_list(obs.get("betas"), "the losses"))}
    main = compare(inputs["main"], [None] * len(inputs["main"]))
    other = compare(inputs["other_shapes"], [None] * len(inputs["other_shapes"]))
    betas = compare([i for i, _ in inputs["beta_cases"]], [float(b) for _, b in inputs["beta_cases"]])
    results += [
        check(VAELossChecks.VALUE, 0.35, not main and len(values) == len(cases),
              expected="mean over the batch of [sum over pixels of BCE(recon, x) + KL(N(mu, exp(logvar)) || N(0, I))] "
                       f"(relative tolerance {TOL:g})", obtained=main or "no values",
              hint="F.binary_cross_entropy(recon, x, reduction='sum') + KL with KL = -0.5 * sum(1 + logvar - mu^2 - "
                   "exp(logvar)), both divided by the batch size."),
        check(VAELossChecks.BETA, 0.2, not betas, expected="BCE + beta * KL for the beta given",
              obtained=betas, hint="Multiply the KL term (only) by beta."),
        check(VAELossChecks.SHAPES, 0.15, not other, expected="the same formula for a single image and for colour "
              "images (B, 3, H, W)", obtained=other,
              hint="Sum over every dimension but the batch; divide by x.shape[0]."),
    ]
    if "grads" in obs:
        grads = tensor_list(obs["grads"], "the gradients")
        recon, x, mu, logvar = (t.clone() for t in cases[inputs["grad_case"]])
        recon.requires_grad_(True), mu.requires_grad_(True), logvar.requires_grad_(True)
        b = x.shape[0]
        bce = F.binary_cross_entropy(recon, x, reduction="sum")
        ((bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())) / b).backward()
        want = [recon.grad, mu.grad, logvar.grad]
        finite = all(bool(torch.isfinite(g).all()) for g in grads)
        missing = [n for n, g in zip(("recon", "mu", "logvar"), grads) if g.abs().max() == 0]
        same = len(grads) == 3 and all(g.shape == w.shape and torch.allclose(g, w, atol=1e-5, rtol=1e-3)
                                       for g, w in zip(grads, want))
        ok = finite and not missing and (same or bool(main))
        obtained = ("gradients that are not finite" if not finite else f"no gradient for {', '.join(missing)}"
                    if missing else "gradients that differ from those of the loss it computes (is part of it "
                    "detached or computed outside torch?)")
    else:
        ok, obtained = False, str(obs.get("grad_error", "no gradients"))
    results.append(check(VAELossChecks.GRADIENTS, 0.15, ok, expected="loss.backward() to give the loss's gradients "
                         "with respect to recon, mu and logvar", obtained=obtained,
                         hint="Use torch operations on the tensors themselves (no .item(), .detach() or numpy)."))
    return results
