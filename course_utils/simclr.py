"""The library side of problem set "simclr": data, training loops, metrics and plots around the student's
``augment``, ``nt_xent_loss``, ``SimCLR`` and ``dunn_index``.

``full`` mode reads STL-10 at 96x96 (the unlabelled split for pretraining, train and test for the supervised
baseline and the probes); ``quick`` and ``grading`` modes draw the kit's coloured shapes (label: the shape).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .training import progress

PROBLEM_SET = "simclr"
SHAPES_OPTIONS = {"background": 0.0, "colours": 9, "texture": 0.0, "distractor": 0.0, "noise": 0.02,
                  "spread": 0.5, "min_size": 0.25, "max_size": 0.45, "rotation": 90.0}
SEEDS = {"unlabeled": 21, "train": 22, "test": 23}


@dataclass
class SimCLRData:
    """Images as float32 (N, 3, S, S) in [0, 1]; labels long (N,)."""

    unlabeled: torch.Tensor
    train: tuple
    test: tuple
    classes: list = field(default_factory=list)
    source: str = ""

    def __repr__(self) -> str:
        s = self.unlabeled.shape[-1]
        return (f"SimCLRData({self.source}: {len(self.unlabeled):,} unlabelled, {len(self.train[0]):,} labelled "
                f"training and {len(self.test[0]):,} test images of {s}x{s}, {len(self.classes)} classes)")


def load_simclr_data(mode: Optional[str] = None, root=None, download: bool = True) -> SimCLRData:
    """The problem set's data for run mode ``mode`` (sizes from its run configuration)."""
    from .configs import run_config

    run = run_config(PROBLEM_SET, mode)
    if run.data == "stl10":
        from .data.stl10 import load_stl10

        splits = load_stl10(root, download=download, unlabeled_size=run.unlabeled_size)
        as_float = lambda d, n: d.images[:n].float() / 255  # noqa: E731
        return SimCLRData(as_float(splits["unlabeled"], run.unlabeled_size),
                          (as_float(splits["train"], run.train_size), splits["train"].labels[:run.train_size]),
                          (as_float(splits["test"], run.test_size), splits["test"].labels[:run.test_size]),
                          list(splits["train"].classes or []), "STL-10")
    from .data.shapes import SHAPE_NAMES, generate_shapes

    def draw(split, n):
        d = generate_shapes(int(n), image_size=int(run.image_size), seed=SEEDS[split], **SHAPES_OPTIONS)
        return d.images.float() / 255 if d.images.dtype == torch.uint8 else d.images.float(), d.labels.long()
    return SimCLRData(draw("unlabeled", run.unlabeled_size)[0], draw("train", run.train_size),
                      draw("test", run.test_size), list(SHAPE_NAMES), "shapes")


def nt_xent_loop(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """NT-Xent written with loops, to read (and to compare a vectorised version with): for every one of the 2N
    vectors, -log of the softmax of its positive's similarity among the 2N - 1 others, averaged."""
    z = torch.cat([z1, z2])
    n2, n = len(z), len(z1)
    total = 0.0
    for i in range(n2):
        j = (i + n) % n2  # the other view of the same image
        sims = [F.cosine_similarity(z[i], z[k], dim=0) / temperature for k in range(n2) if k != i]
        positive = F.cosine_similarity(z[i], z[j], dim=0) / temperature
        total = total - (positive - torch.logsumexp(torch.stack(sims), dim=0))
    return total / n2


def resnet18_encoder() -> nn.Module:
    """timm's ResNet-18 (random weights) as an encoder of 512 features, for ``SimCLR(width=512, encoder=...)``."""
    import timm

    return timm.create_model("resnet18", pretrained=False, num_classes=0)


def _batches(n: int, batch_size: int, shuffle: bool, generator=None):
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def pretrain(model: nn.Module, augment: Callable, loss_fn: Callable, images: torch.Tensor, epochs: int,
             batch_size: int = 256, lr: float = 1e-3, temperature: float = 0.1, device=None,
             desc: str = "SimCLR pretraining") -> list:
    """SimCLR: two strong views of every batch, ``loss_fn(*model(v1, v2), temperature)``, Adam. Returns the mean
    loss of every epoch."""
    device = device or next(model.parameters()).device
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    g = torch.Generator().manual_seed(0)
    for _ in progress(range(epochs), desc=desc, unit="epoch"):
        total, count = 0.0, 0
        for idx in _batches(len(images), batch_size, True, g):
            if len(idx) < 2:
                continue
            x = images[idx].to(device)
            z1, z2 = model(augment(x, "strong"), augment(x, "strong"))
            loss = loss_fn(z1, z2, temperature)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, count = total + loss.item() * len(idx), count + len(idx)
        losses.append(total / max(count, 1))
    return losses


class Classifier(nn.Module):
    """An encoder (frozen or not) and a linear layer on its features."""

    def __init__(self, encoder: nn.Module, features: int, classes: int, freeze: bool = False):
        super().__init__()
        self.encoder, self.freeze = encoder, freeze
        self.linear = nn.Linear(features, classes)
        for p in self.encoder.parameters():
            p.requires_grad_(not freeze)

    def forward(self, x):
        if self.freeze:
            self.encoder.eval()
            with torch.no_grad():
                h = self.encoder(x)
            return self.linear(h)
        return self.linear(self.encoder(x))


def train_classifier(classifier: nn.Module, augment: Optional[Callable], images, labels, epochs: int,
                     batch_size: int = 256, lr: float = 1e-3, device=None, desc: str = "classifier") -> list:
    """Cross-entropy with Adam on weakly augmented batches (``augment(x, "weak")``; None: no augmentation)."""
    device = device or next(classifier.parameters()).device
    classifier.to(device).train()
    opt = torch.optim.Adam([p for p in classifier.parameters() if p.requires_grad], lr=lr)
    g = torch.Generator().manual_seed(1)
    losses = []
    for _ in progress(range(epochs), desc=desc, unit="epoch"):
        total = 0.0
        for idx in _batches(len(images), batch_size, True, g):
            x, y = images[idx].to(device), labels[idx].to(device)
            if augment is not None:
                x = augment(x, "weak")
            loss = F.cross_entropy(classifier(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        losses.append(total / len(images))
    return losses


@torch.no_grad()
def predict(model: nn.Module, images, batch_size: int = 512, device=None) -> torch.Tensor:
    """Outputs of ``model`` in eval mode, batch by batch, on the CPU."""
    device = device or next(model.parameters()).device
    was = model.training
    model.eval()
    out = torch.cat([model(images[i:i + batch_size].to(device)).cpu() for i in range(0, len(images), batch_size)])
    model.train(was)
    return out


def metric_row(classifier: Classifier, dunn_index: Callable, images, labels, points: int = 1000) -> dict:
    """Accuracy, macro precision, recall and F1 (scikit-learn) of the classifier's predictions, and the silhouette
    (scikit-learn) and Dunn's index (``dunn_index``) of its encoder's features with the true labels as clusters,
    on the first ``points`` images."""
    from sklearn.metrics import precision_recall_fscore_support, silhouette_score

    pred = predict(classifier, images).argmax(1)
    y = labels.cpu()
    precision, recall, f1, _ = precision_recall_fscore_support(y.numpy(), pred.numpy(), average="macro",
                                                               zero_division=0)
    feats = predict(classifier.encoder, images[:points]).float()
    sub = y[:points]
    return {"accuracy": 100 * float((pred == y).float().mean()), "precision": 100 * float(precision),
            "recall": 100 * float(recall), "F1": 100 * float(f1),
            "silhouette": float(silhouette_score(feats.numpy(), sub.numpy())),
            "Dunn": float(dunn_index(feats, sub))}


def print_metric_table(rows: Mapping[str, Mapping[str, float]]) -> None:
    """One line per method: accuracy, precision, recall, F1 (in percent), silhouette, Dunn's index."""
    print(f"{'method':<28}{'accuracy':>10}{'precision':>11}{'recall':>9}{'F1':>8}{'silhouette':>12}{'Dunn':>8}")
    for name, r in rows.items():
        print(f"{name:<28}{r['accuracy']:>9.1f}%{r['precision']:>10.1f}%{r['recall']:>8.1f}%{r['F1']:>7.1f}%"
              f"{r['silhouette']:>12.3f}{r['Dunn']:>8.3f}")


def plot_metrics(rows: Mapping[str, Mapping[str, float]], title: str = "Test metrics per method"):
    """Bars of accuracy, precision, recall and F1 (left) and of the silhouette and Dunn's index (right)."""
    import matplotlib.pyplot as plt

    names = list(rows)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [2, 1]})
    for ax, keys, unit in ((axes[0], ("accuracy", "precision", "recall", "F1"), "%"),
                           (axes[1], ("silhouette", "Dunn"), "")):
        width = 0.8 / len(names)
        for i, name in enumerate(names):
            xs = np.arange(len(keys)) + i * width
            ax.bar(xs, [rows[name][k] for k in keys], width, label=name)
        ax.set_xticks(np.arange(len(keys)) + width * (len(names) - 1) / 2, keys)
        ax.set_ylabel(unit or "value")
        ax.grid(alpha=0.3, axis="y")
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    plt.show()
    return fig


def show_views(images, views1, views2, n: int = 8, title: str = "Two augmented views of each image"):
    """Rows: the images, their first views, their second views."""
    from .plots import show_images

    return show_images(torch.cat([images[:n].cpu(), views1[:n].cpu(), views2[:n].cpu()]), nrow=n, title=title)
