"""The ungraded parts of problem set "vae_denoising": an Optuna search of the autoencoder's hyperparameters, transfer
to classification (frozen encoder + Linear 128 + Linear 10), and the comparison of three convolutional VAEs on digits
and on colour images (MNIST vs CIFAR-10 in full mode, digits vs the kit's shapes in quick mode).

The three VAEs follow *Latent Space Representations for More Complex CIFAR-10 Images* (Yuhas): conv 32 and 64
filters of 3x3 (no padding), each followed by a 2x2 max-pool, dense 256 and 64, a 2-D latent ("simple"); the same
with a 16-D latent ("latent 16"); conv 32 and 128, dense 1024, 256 and 32, KL weight 0.5 ("deeper").
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .training import fit, progress
from .vae import Batches, make_optimizer, negative_elbo, reconstruction_mse, train_autoencoder, train_vae

VARIANTS = {  # name: (conv filters, dense layers, latent size, KL weight beta)
    "simple (latent 2)": ((32, 64), (256, 64), 2, 1.0),
    "latent 16": ((32, 64), (256, 64), 16, 1.0),
    "deeper (KL weight 0.5)": ((32, 128), (1024, 256, 32), 2, 0.5),
}


class ConvVAE(nn.Module):
    """A convolutional VAE of the CIFAR-10 report for images (C, S, S), S = 28 or 32."""

    def __init__(self, channels: int = 1, size: int = 28, filters: Sequence[int] = (32, 64),
                 dense: Sequence[int] = (256, 64), latent_dim: int = 2):
        super().__init__()
        side = ((size - 2) // 2 - 2) // 2  # two (conv 3x3, no padding; max-pool 2x2): 28 -> 5, 32 -> 6
        convs = [nn.Conv2d(channels, filters[0], 3), nn.ReLU(), nn.MaxPool2d(2),
                 nn.Conv2d(filters[0], filters[1], 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()]
        widths = [filters[1] * side * side, *dense]
        fcs = [layer for a, b in zip(widths[:-1], widths[1:]) for layer in (nn.Linear(a, b), nn.ReLU())]
        self.encoder = nn.Sequential(*convs, *fcs)
        self.mu, self.logvar = nn.Linear(widths[-1], latent_dim), nn.Linear(widths[-1], latent_dim)
        self.start = size // 4  # the decoder grows (F, S/4, S/4) to (C, S, S) with two stride-2 transposed convs
        back = [latent_dim, *dense[::-1], filters[1] * self.start ** 2]
        self.decoder_fc = nn.Sequential(*[layer for a, b in zip(back[:-1], back[1:]) for layer in (nn.Linear(a, b), nn.ReLU())])
        self.decoder_conv = nn.Sequential(
            nn.ConvTranspose2d(filters[1], filters[0], 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(filters[0], channels, 4, stride=2, padding=1), nn.Sigmoid())
        self.filters = filters[1]

    def encode(self, x):
        h = self.encoder(x)
        return self.mu(h), self.logvar(h)

    def reparameterize(self, mu, logvar):
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def decode(self, z):
        h = self.decoder_fc(z).view(len(z), self.filters, self.start, self.start)
        return self.decoder_conv(h)

    def forward(self, x):
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar


def compare_vaes(vae_loss: Callable, datasets: dict, epochs: int, lr: float, batch_size: int, width: float = 1.0,
                 seed: int = 0, device=None) -> dict:
    """Train each variant on each dataset ``{name: (train, test)}`` with the student's ``vae_loss`` (``width`` scales
    every variant's filters and dense layers: 1 is the report's, quick mode narrows them to train on a CPU); returns
    ``{(dataset, variant): {"mse": per-pixel MSE of test reconstructions, "elbo": negative ELBO per image,
    "per_pixel": negative ELBO per pixel value, "model": the VAE}}``."""
    results = {}
    for dname, (train, test) in datasets.items():
        c, s = train.shape[1], train.shape[-1]
        for vname, (filters, dense, latent, beta) in VARIANTS.items():
            filters, dense = [max(4, round(f * width)) for f in filters], [max(4, round(n * width)) for n in dense]
            torch.manual_seed(seed)
            model = ConvVAE(c, s, filters, dense, latent).to(device or "cpu")  # trained on the GPU when there is one
            train_vae(model, vae_loss, train.to(device or "cpu"), epochs, lr=lr, batch_size=batch_size, beta=beta,
                      seed=seed, desc=f"{dname}, {vname}")
            model = model.cpu().eval()
            with torch.no_grad(), torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                mse = F.mse_loss(model.decode(model.encode(test)[0]), test).item()  # decode mu
            elbo = negative_elbo(model, test, seed)
            results[(dname, vname)] = {"mse": mse, "elbo": elbo, "per_pixel": elbo / test[0].numel(), "model": model,
                                       "baseline": F.mse_loss(train.mean(0, keepdim=True).expand_as(test), test).item()}
    return results


def print_comparison(results: dict) -> None:
    """One line per (data, VAE): test MSE of the reconstructions (decoding mu), that of the mean training image
    (a VAE that learned nothing from its latent matches it), the share of it the VAE removes, the negative ELBO."""
    print(f"{'data':<7} {'VAE':<23} {'test MSE':>8} {'mean image':>10} {'removed':>8} {'-ELBO/image':>12} "
          f"{'-ELBO/value':>12}")
    for (dname, vname), r in results.items():
        removed = 100 * (1 - r["mse"] / r["baseline"])
        print(f"{dname:<7} {vname:<23} {r['mse']:>8.4f} {r['baseline']:>10.4f} {removed:>7.0f}% {r['elbo']:>12.1f} "
              f"{r['per_pixel']:>12.3f}")


# ---- transfer ------------------------------------------------------------------------------------------------

@torch.no_grad()
def encode_all(encode: Callable, images) -> torch.Tensor:
    return torch.cat([encode(images[i:i + 512]).cpu() for i in range(0, len(images), 512)])


def transfer_accuracy(encode: Callable, train: tuple, test: tuple, epochs: int, lr: float = 5e-3,
                      batch_size: int = 64, seed: int = 0) -> tuple:
    """Frozen ``encode`` + Linear(d, 128) + ReLU + Linear(128, 10), trained with Adam on the train digits (features
    computed once: the encoder is frozen). Returns (train accuracy %, test accuracy %)."""
    train_x, test_x = encode_all(encode, train[0]), encode_all(encode, test[0])
    torch.manual_seed(seed)
    head = nn.Sequential(nn.Linear(train_x.shape[1], 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.Adam(head.parameters(), lr=lr)

    def step(batch):
        loss = F.cross_entropy(head(batch[0]), batch[1])
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    fit(step, Batches(train_x, train[1], batch_size=batch_size, seed=seed), epochs, desc="transfer head")
    with torch.no_grad():
        acc = [float((head(x).argmax(1) == y).float().mean() * 100) for x, y in ((train_x, train[1]), (test_x, test[1]))]
    return acc[0], acc[1]


# ---- Optuna ----------------------------------------------------------------------------------------------------

def optuna_search(make_model: Callable, train, val, trials: int, epochs: int,
                  seed: int = 0):
    """An Optuna study of the autoencoder (clean -> clean, validation MSE): latent size, optimiser, learning rate and
    batch size in the report's ranges (latent 2-50, Adam or SGD, lr 1e-5..1e-2 log-uniform, batch 64 / 128 / 256);
    a median pruner stops trials that trail the others after an epoch. Returns the study."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # a failing trial raises in the cell, not a logged traceback

    bar = progress(total=trials, desc="Optuna trials", unit="trial")

    def objective(trial):
        latent = trial.suggest_int("latent_dim", 2, 50)
        name = trial.suggest_categorical("optimizer", ["Adam", "SGD"])
        lr = trial.suggest_float("lr", 1e-5, 1e-2, log=True)
        batch = trial.suggest_categorical("batch_size", [64, 128, 256])
        torch.manual_seed(seed + trial.number)
        model = make_model(latent)
        mse = float("inf")

        def report(epoch, _history):
            nonlocal mse
            mse = reconstruction_mse(model, val)
            trial.report(mse, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        try:
            train_autoencoder(model, train, epochs, lr=lr, batch_size=batch, optimizer=name, seed=seed,
                              desc=f"trial {trial.number}", on_epoch_end=report)
        finally:
            bar.update(1)
        return mse

    sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(direction="minimize", sampler=sampler,
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0))
    study.optimize(objective, n_trials=trials)
    bar.close()
    return study


def print_study(study) -> None:
    import optuna

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    print(f"{len(study.trials)} trials: {len(done)} complete, {len(pruned)} pruned")
    for t in study.trials:
        p = t.params
        value = f"{t.value:.4f}" if t.value is not None else "-"
        print(f"  trial {t.number}: latent {p['latent_dim']:>2}, {p['optimizer']:<4} lr {p['lr']:.1e}, batch "
              f"{p['batch_size']:>3} -> validation MSE {value} ({t.state.name.lower()})")
    print(f"best: {study.best_params} (validation MSE {study.best_value:.4f})")


def colour_images(mode: Optional[str] = None) -> tuple:
    """(train, test) colour images for the comparison: CIFAR-10 (full) or the kit's shapes at 32x32 (quick)."""
    from .configs import run_config

    run = run_config("vae_denoising", mode)
    n_train, n_test = run.colour_splits
    if run.colour == "cifar10":
        from .data.cifar10 import load_cifar10

        data = load_cifar10(splits=(n_train, n_test))
        return data["train"][0], data["test"][0]
    from .data.shapes import generate_shapes

    make = lambda n, seed: generate_shapes(n, image_size=32, seed=seed).images.float() / 255  # noqa: E731
    return make(n_train, 21), make(n_test, 22)
