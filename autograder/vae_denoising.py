"""Problem set "vae_denoising": grader inputs, units, hidden-test entry points.

The fourth problem set of the unit, after two reports: *Unsupervised Deep Learning* (Manzali, 2021: a
convolutional autoencoder tuned with Optuna, denoising three kinds of noise, a variational autoencoder with latent
interpolation, PCA / t-SNE, transfer to classification) and *Latent Space Representations for More Complex CIFAR-10
Images* (Yuhas: convolutional VAEs on MNIST and CIFAR-10). Points: add_noise 1, DenoisingAutoencoder 1, VAE 1,
vae_loss 1, written report 1 (manual).

The probes that run inside the student's kernel are in ``course_utils/probes/vae_denoising.py``; the reference
implementation, the check names and the judges, which decide a grade in the grader's process, are in
``autograder/judges/vae_denoising*.py`` and imported here, so that this module is the problem set's one front:
``PROBLEM_SET``, the entry points, ``SAMPLE_MUTATIONS`` and the reference.
"""
from __future__ import annotations

import torch

from course_utils.probes.common import weight_groups

from .core import ManualUnit, ProblemSet, Unit, begin_test_cell, hidden_tests  # noqa: F401
from .judges.common import generator
from .judges.vae_denoising import (  # noqa: F401 - the reference, imported from here by tests and tools
    GAUSSIAN_MEAN, GAUSSIAN_STD, NOISE_KINDS, SALT_PEPPER_AMOUNT, SPECKLE_STD, AddNoiseChecks, DenoisingAutoencoder,
    DenoisingAutoencoderChecks, VAE, add_noise, judge_add_noise, judge_denoising_autoencoder, parameter_count,
    vae_loss)
from .judges.vae_denoising_vae import VAEChecks, judge_vae  # noqa: F401
from .judges.vae_denoising_vae_loss import VAELossChecks, judge_vae_loss, negative_elbo  # noqa: F401

PSET_ID = "vae_denoising"


# ---- grader inputs ------------------------------------------------------------------------------

NOISE_LEVELS = (0.4, 0.0, 0.9)  # constant images: grey, black, almost white


def inputs_add_noise(seed: int) -> dict:
    # 32 images of 28x28 per level: 25,088 draws, enough to tell the stated distributions from the classic mistakes.
    return {"seed": seed, "levels": list(NOISE_LEVELS),
            "constant": [torch.full((32, 1, 28, 28), level) for level in NOISE_LEVELS]}


def random_weights(cls, latent_dim: int, seed: int) -> list:
    """Grader-chosen weights for the student's layers: a freshly initialised reference (PyTorch's default init,
    drawn from ``seed``, biases redrawn so that none is left near 0), one list [weight, bias] per layer."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed) + 7919)
        groups = weight_groups(cls(latent_dim))
        return [[p.detach().clone() for p in group] for group in groups]


LATENT_DIMS = (33, 5)


def _images(g, n: int) -> torch.Tensor:
    """(n, 1, 28, 28) grey-level images in [0, 1], a third of the pixels black (like digits)."""
    x = torch.rand(n, 1, 28, 28, generator=g)
    return torch.where(torch.rand(n, 1, 28, 28, generator=g) < 0.33, torch.zeros_like(x), x)


def inputs_denoising_autoencoder(seed: int) -> dict:
    g = generator(seed)
    return {"seed": seed, "dims": list(LATENT_DIMS), "x": [_images(g, 3) for _ in LATENT_DIMS],
            "z": [torch.randn(3, d, generator=g) for d in LATENT_DIMS],
            "weights": [random_weights(DenoisingAutoencoder, d, seed + i) for i, d in enumerate(LATENT_DIMS)]}


VAE_DIMS = (2, 7)


def inputs_vae(seed: int) -> dict:
    g = generator(seed)
    n = 2048  # draws of reparameterize: 2048 x 4 entries
    return {"seed": seed, "dims": list(VAE_DIMS), "x": [_images(g, 3) for _ in VAE_DIMS],
            "z": [torch.randn(4, d, generator=g) for d in VAE_DIMS],
            "weights": [random_weights(VAE, d, seed + i) for i, d in enumerate(VAE_DIMS)],
            "reparam_mu": 2 * torch.randn(n, 4, generator=g),
            "reparam_logvar": torch.empty(n, 4).uniform_(-3, 1.5, generator=g),
            "x_forward": _images(g, 4)}


def _loss_case(g, b: int, shape: tuple, d: int) -> list:
    recon = 0.05 + 0.9 * torch.rand(b, *shape, generator=g)  # away from 0 and 1, where BCE clamps its logs
    x = torch.rand(b, *shape, generator=g)
    x = torch.where(x < 0.3, torch.zeros_like(x), torch.where(x > 0.8, torch.ones_like(x), x))  # digits: many 0s, 1s
    mu = torch.randn(b, d, generator=g)
    logvar = torch.empty(b, d).uniform_(-2.5, 1.0, generator=g)
    return [recon, x, mu, logvar]


def inputs_vae_loss(seed: int) -> dict:
    g = generator(seed)
    cases = [_loss_case(g, 5, (1, 28, 28), 4), _loss_case(g, 3, (1, 28, 28), 2),  # main: digits
             _loss_case(g, 1, (1, 28, 28), 3), _loss_case(g, 4, (3, 8, 8), 6)]  # one image; colour images
    return {"seed": seed, "cases": cases, "main": [0, 1], "other_shapes": [2, 3],
            "beta_cases": [[0, 0.5], [1, 2.0], [2, 0.0]], "grad_case": 1}


PROBE_MODULE = "course_utils.probes.vae_denoising"

UNITS = [
    Unit(grade_id="test_add_noise", title="add_noise", points=1.0, names=("add_noise",),
         probe=f"{PROBE_MODULE}:probe_add_noise", judge=judge_add_noise, make_inputs=inputs_add_noise,
         check_names=AddNoiseChecks.names),
    Unit(grade_id="test_denoising_autoencoder", title="DenoisingAutoencoder", points=1.0,
         names=("DenoisingAutoencoder",), probe=f"{PROBE_MODULE}:probe_denoising_autoencoder",
         judge=judge_denoising_autoencoder, make_inputs=inputs_denoising_autoencoder,
         check_names=DenoisingAutoencoderChecks.names),
    Unit(grade_id="test_vae", title="VAE", points=1.0, names=("VAE",), probe=f"{PROBE_MODULE}:probe_vae",
         judge=judge_vae, make_inputs=inputs_vae, check_names=VAEChecks.names),
    Unit(grade_id="test_vae_loss", title="vae_loss", points=1.0, names=("vae_loss",),
         probe=f"{PROBE_MODULE}:probe_vae_loss", judge=judge_vae_loss, make_inputs=inputs_vae_loss,
         check_names=VAELossChecks.names),
]

PROBLEM_SET = ProblemSet(
    id=PSET_ID,
    notebook="vae_denoising.ipynb",
    units=UNITS,
    manual=[ManualUnit("report", "Report: what the KL term does to the latent space, and why CIFAR-10 is harder", 1.0)],
    preload=("scipy", "sklearn", "optuna"),
)


# ---- entry points of the source notebook's hidden test regions ----------------------------------------------
# test_<unit>(*unit.names) -> the unit's points as a float (core.score_unit), e.g. test_vae_loss(vae_loss).
test_add_noise, test_denoising_autoencoder, test_vae, test_vae_loss = hidden_tests(PROBLEM_SET)

# Sample submissions of the main job: {student: (grade_id of the cell, text, replacement)}.
SAMPLE_MUTATIONS = {
    # The KL term with the wrong sign: a scalar, differentiable, uses beta, but rewards spreading the latents.
    "kl_wrong_sign": ("vae_loss", "kl = -0.5 * torch.sum(", "kl = 0.5 * torch.sum("),
}
