"""The harness of problem set "vae_denoising": denoising autoencoders and a VAE on handwritten digits.

Everything around the students' code: the data of each run mode (MNIST or scikit-learn's digits; CIFAR-10 or the
kit's shapes for the comparison), training loops for an autoencoder (noisy -> clean) and a VAE (the student's
``vae_loss``), the per-noise MSE table, the negative ELBO per image, and the figures (clean / noisy / denoised rows,
latent scatter, interpolation, PCA / t-SNE maps). The Optuna search, the transfer classifier and the MNIST vs
CIFAR-10 comparison are in :mod:`course_utils.vae_compare`.

    data = load_vae_data()                                    # MNIST in full mode, digits in quick mode
    history = train_autoencoder(model, data.train[0], epochs=10, add_noise=add_noise, kind="gaussian")
    table = noise_table(models, add_noise, data.test[0])      # {kind: {"noisy": mse, "denoised": mse}}
"""
from __future__ import annotations

from typing import Callable, Mapping, Optional

import numpy as np
import torch
from torch.nn import functional as F

from .training import History, fit

PROBLEM_SET = "vae_denoising"
NOISE_KINDS = ("gaussian", "salt_pepper", "speckle")


def load_vae_data(mode: Optional[str] = None, download: bool = True):
    """The digits of run mode ``mode``: MNIST (report's split) or scikit-learn's digits, as ``DigitSplits``."""
    from .configs import run_config

    run = run_config(PROBLEM_SET, mode)
    if run.digits == "mnist":
        from .data.mnist import load_mnist

        return load_mnist(download=download, splits=run.digit_splits)
    from .data.digits import load_digits_28

    return load_digits_28(run.digit_splits)


class Batches:
    """Shuffled (seeded) mini-batches ``(images, labels)`` of tensors held in memory; ``len`` is batches per epoch."""

    def __init__(self, images, labels=None, batch_size: int = 64, shuffle: bool = True, seed: int = 0, device=None):
        self.images, self.labels = images, labels if labels is not None else torch.zeros(len(images), dtype=torch.long)
        self.batch_size, self.shuffle, self.device = int(batch_size), shuffle, device
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return (len(self.images) + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        order = torch.randperm(len(self.images), generator=self.generator) if self.shuffle else torch.arange(len(self.images))
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            yield self.images[idx].to(self.device or "cpu"), self.labels[idx].to(self.device or "cpu")


def make_optimizer(params, name: str = "Adam", lr: float = 1e-3):
    if name == "Adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "SGD":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    raise ValueError(f"unknown optimiser {name!r}: use 'Adam' or 'SGD'")


def train_autoencoder(model, images, epochs: int, lr: float = 1e-3, batch_size: int = 64, add_noise: Callable = None,
                      kind: Optional[str] = None, optimizer: str = "Adam", seed: int = 0, desc: str = "autoencoder",
                      on_epoch_end=None) -> History:
    """Adam (or SGD) on the MSE between ``model(noisy)`` and the clean images; without ``kind``, clean -> clean."""
    device = next(model.parameters()).device
    opt = make_optimizer(model.parameters(), optimizer, lr)
    model.train()

    def step(batch):
        clean = batch[0]
        noisy = add_noise(clean, kind) if kind else clean
        loss = F.mse_loss(model(noisy), clean)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return fit(step, Batches(images, batch_size=batch_size, seed=seed, device=device), epochs, desc=desc,
               on_epoch_end=on_epoch_end)


@torch.no_grad()
def reconstruction_mse(model, images, add_noise: Callable = None, kind: Optional[str] = None, seed: int = 0) -> float:
    """Mean squared error per pixel between ``model``'s output for the (noisy) images and the clean images."""
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        total = 0.0
        for start in range(0, len(images), 512):
            clean = images[start:start + 512].to(device)
            noisy = add_noise(clean, kind) if kind else clean
            total += F.mse_loss(model(noisy), clean, reduction="sum").item()
    model.train(was)
    return total / images.numel()


@torch.no_grad()
def noise_table(models: Mapping[str, torch.nn.Module], add_noise: Callable, images, seed: int = 0) -> dict:
    """``{kind: {"noisy": MSE of the noisy input, "denoised": MSE of the denoised output}}`` on ``images``; both
    against the clean images, with the same noise (seeded) for both."""
    table = {}
    for kind, model in models.items():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            noisy = add_noise(images, kind)
        table[kind] = {"noisy": F.mse_loss(noisy, images).item()}
        model.eval()
        denoised = torch.cat([model(noisy[i:i + 512].to(next(model.parameters()).device)).cpu()
                              for i in range(0, len(noisy), 512)])
        table[kind]["denoised"] = F.mse_loss(denoised, images).item()
    return table


def print_noise_table(table: Mapping[str, Mapping[str, float]]) -> None:
    """One line per kind: ``<kind> noisy MSE <x> denoised MSE <y>`` (and the ratio)."""
    width = max(len(k) for k in table)
    print(f"{'noise':<{width}}  MSE to the clean images: noisy input   denoised output")
    for kind, row in table.items():
        print(f"{kind:<{width}}  noisy MSE {row['noisy']:.4f}   denoised MSE {row['denoised']:.4f}   "
              f"({row['noisy'] / max(row['denoised'], 1e-12):.1f}x lower)")


def show_denoising(clean, noisy: Mapping[str, torch.Tensor], denoised: Mapping[str, torch.Tensor], n: int = 8,
                   title: str = "Denoising: clean, noisy and denoised digits", save_path=None):
    """One block of three rows per kind of noise: the clean digits, the noisy input, the denoised output."""
    from .plots import _finish, _imshow, _plt, _to_numpy

    plt = _plt()
    rows = [("clean", clean)] + [(f"{k}\n{what}", imgs) for k in noisy for what, imgs in
                                 (("noisy", noisy[k]), ("denoised", denoised[k]))]
    n = min(n, len(clean))
    fig, axes = plt.subplots(len(rows), n, figsize=(1.1 * n, 1.2 * len(rows)), squeeze=False)
    for r, (name, imgs) in enumerate(rows):
        arr = _to_numpy(imgs[:n])
        for i in range(n):
            _imshow(axes[r, i], arr[i])
        axes[r, 0].set_ylabel(name, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return _finish(fig, save_path)


# ---- VAE ------------------------------------------------------------------------------------------------------

def train_vae(model, vae_loss: Callable, images, epochs: int, lr: float = 1e-3, batch_size: int = 64,
              beta: float = 1.0, seed: int = 0, desc: str = "VAE") -> History:
    """Adam on ``vae_loss(recon, x, mu, logvar, beta)`` with ``recon, mu, logvar = model(x)``."""
    device = next(model.parameters()).device
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()

    def step(batch):
        x = batch[0]
        recon, mu, logvar = model(x)
        loss = vae_loss(recon, x, mu, logvar, beta=beta)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return fit(step, Batches(images, batch_size=batch_size, seed=seed, device=device), epochs, desc=desc)


@torch.no_grad()
def negative_elbo(model, images, seed: int = 0) -> float:
    """The per-image negative ELBO in nats (BCE summed over pixels + KL to N(0, I), one z drawn per image), computed
    here, independently of the notebook's vae_loss."""
    model.eval()
    device = next(model.parameters()).device
    total = 0.0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for start in range(0, len(images), 512):
            x = images[start:start + 512].to(device)
            recon, mu, logvar = model(x)
            total += F.binary_cross_entropy(recon, x, reduction="sum").item()
            total += (-0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())).item()
    return total / len(images)


@torch.no_grad()
def latent_means(model, images) -> torch.Tensor:
    """``mu`` of every image (eval mode, batches): (N, d) on the CPU."""
    model.eval()
    device = next(model.parameters()).device
    return torch.cat([model.encode(images[i:i + 512].to(device))[0].cpu() for i in range(0, len(images), 512)])


def plot_latent_scatter(points, labels, title: str = "2-D latent space (mu of each test digit)", save_path=None):
    """A 2-D scatter, one colour per digit (legend)."""
    from .plots import _finish, _plt

    plt = _plt()
    points, labels = np.asarray(points), np.asarray(labels)
    fig, ax = plt.subplots(figsize=(5.5, 4.8))
    for digit in range(10):
        mask = labels == digit
        ax.scatter(points[mask, 0], points[mask, 1], s=8, color=plt.cm.tab10(digit), label=str(digit))
    ax.legend(title="digit", fontsize=7, markerscale=2, loc="best")
    ax.set_title(title)
    fig.tight_layout()
    return _finish(fig, save_path)


@torch.no_grad()
def interpolate(model, first, second, steps: int = 9) -> torch.Tensor:
    """Decoded points on the line from ``mu(first)`` to ``mu(second)``: (steps, C, H, W)."""
    model.eval()
    device = next(model.parameters()).device
    mu = model.encode(torch.stack([first, second]).to(device))[0]  # (2, d)
    t = torch.linspace(0, 1, steps, device=device)[:, None]  # (steps, 1)
    return model.decode((1 - t) * mu[0] + t * mu[1]).cpu()


def project_2d(points, method: str = "pca", seed: int = 0) -> np.ndarray:
    """(N, d) -> (N, 2) by PCA or t-SNE (scikit-learn); a 2-D latent is returned as it is."""
    x = np.asarray(torch.as_tensor(points).float())
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(x)
    if method == "tsne":
        from sklearn.manifold import TSNE

        return TSNE(n_components=2, perplexity=float(min(30, max(2, (len(x) - 1) // 4))), init="pca",
                    random_state=seed).fit_transform(x)
    raise ValueError(f"unknown method {method!r}; use 'pca' or 'tsne'")


def plot_maps(maps: Mapping[str, np.ndarray], labels, save_path=None):
    """Side by side 2-D maps ``{title: (N, 2)}``, points coloured by digit."""
    from .plots import _finish, _plt

    plt = _plt()
    labels = np.asarray(labels)
    fig, axes = plt.subplots(1, len(maps), figsize=(4.6 * len(maps), 4.2), squeeze=False)
    for ax, (name, xy) in zip(axes[0], maps.items()):
        sc = ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap="tab10", s=7, vmin=-0.5, vmax=9.5)
        ax.set_title(name)
    fig.colorbar(sc, ax=list(axes[0]), ticks=range(10), label="digit")
    return _finish(fig, save_path)
