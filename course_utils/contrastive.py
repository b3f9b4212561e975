"""The harness of problem set "contrastive_shapes": what an augmentation teaches an embedding.

Everything around the students' code: the shapes data of the problem set, the hue colours a recolouring
draws, contrastive training of an encoder on two views of every image (the views and the loss are the
student's), embeddings of a whole set, nearest-neighbour purity by colour and by shape, 2-D maps of an
embedding (PCA and t-SNE, from scikit-learn) and the figures that show them.

    data = load_contrastive_shapes()                    # train / test ShapesDataset, 64x64 in quick mode
    history = train_contrastive(model, loader, make_views, "crop", objective, epochs=8)
    emb = embed_images(model, data.test.images)         # (N, 128)
    table = neighbour_table(nearest_neighbours, emb)    # (N, 5): each image's five nearest others
    purity(table, data.test.colours)                    # % of neighbours with the query's colour

The images of the problem set show one shape (ten kinds) in one of nine colours (``COLOUR_NAMES`` without
black) on a plain black background, at a random size, position and rotation: both labels, shape and
colour, are things an embedding may or may not keep.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from .data.loaders import TensorLoader
from .data.shapes import COLOUR_NAMES, COLOUR_RGB, SHAPE_NAMES, ShapesDataset, generate_shapes
from .training import History, fit, progress

# Drawing options of the problem set's shapes (see course_utils.data.shapes.generate_shapes): a plain black
# background (so that a recolouring changes the shape's colour only), nine colours (black would not show),
# no texture or distractor strokes, a little pixel noise.
SHAPES_OPTIONS = {"background": 0.0, "colours": 9, "texture": 0.0, "distractor": 0.0, "noise": 0.02,
                  "spread": 0.5, "min_size": 0.2, "max_size": 0.4, "rotation": 90.0}
SEEDS = {"train": 11, "test": 12}  # independent draws per split
NUM_COLOURS = int(SHAPES_OPTIONS["colours"])
PROBLEM_SET = "contrastive_shapes"


@dataclass
class ContrastiveShapesData:
    """The two splits of the problem set (labels: ``.labels`` = shape, ``.colours`` = colour)."""

    train: ShapesDataset
    test: ShapesDataset
    image_size: int
    shape_names: list = field(default_factory=lambda: list(SHAPE_NAMES))
    colour_names: list = field(default_factory=lambda: list(COLOUR_NAMES[:NUM_COLOURS]))

    def loader(self, split: str = "train", batch_size: int = 32, shuffle: Optional[bool] = None, device=None,
               seed: Optional[int] = None) -> TensorLoader:
        """Batches ``(images, shape labels)``: float32 (B, 3, S, S) in [0, 1]; the train split is shuffled."""
        dataset = {"train": self.train, "test": self.test}[split]
        return TensorLoader(dataset, batch_size, shuffle=(split == "train") if shuffle is None else shuffle,
                            device=device, seed=seed)

    def __repr__(self) -> str:
        return (f"ContrastiveShapesData({len(self.train)} train and {len(self.test)} held-out images of "
                f"{self.image_size}x{self.image_size}: {len(self.shape_names)} shapes x {len(self.colour_names)} colours)")


def load_contrastive_shapes(mode: Optional[str] = None, image_size: Optional[int] = None,
                            sizes: Optional[Sequence[int]] = None) -> ContrastiveShapesData:
    """The problem set's shapes for run mode ``mode`` (default: the current one); sizes from its run configuration."""
    from .configs import run_config

    run = run_config(PROBLEM_SET, mode)
    image_size = int(image_size or run.image_size)
    n_train, n_test = sizes or run.shapes_splits
    train = generate_shapes(int(n_train), image_size=image_size, seed=SEEDS["train"], **SHAPES_OPTIONS)
    test = generate_shapes(int(n_test), image_size=image_size, seed=SEEDS["test"], **SHAPES_OPTIONS)
    return ContrastiveShapesData(train, test, image_size)


def hue_colours(hues: torch.Tensor) -> torch.Tensor:
    """The fully saturated, fully bright colour of each hue: (B,) hues in [0, 1) -> (B, 3) RGB in [0, 1].

    Hue 0 is red, 1/3 green, 2/3 blue (the HSV colour wheel); every colour has its largest channel at 1 and its
    smallest at 0."""
    hues = torch.as_tensor(hues, dtype=torch.float32)
    offsets = torch.tensor([5.0, 3.0, 1.0], device=hues.device)  # R, G, B
    k = (offsets + 6 * hues[..., None]) % 6  # (B, 3)
    return 1 - torch.clamp(torch.minimum(k, 4 - k), 0, 1)  # (B, 3)


def colour_rgb(colours) -> np.ndarray:
    """The RGB of colour labels (indices into ``COLOUR_NAMES``), (N,) -> (N, 3), for plotting."""
    return COLOUR_RGB[np.asarray(colours, dtype=np.int64)]


# ---- training and embeddings -------------------------------------------------------------------------

def embed_views(model, views: torch.Tensor) -> torch.Tensor:
    """``model.encode(views)`` with every row L2-normalised: (B, 3, S, S) -> (B, D) unit rows."""
    return F.normalize(model.encode(views), dim=-1)


def train_contrastive(model, loader, make_views: Callable, kind: str, objective: Callable, epochs: int,
                      lr: float = 1e-3, desc: Optional[str] = None) -> History:
    """Train ``model.encode`` so that two views of an image land close together.

    For every batch of images: two views ``make_views(images, kind)`` (drawn independently), their unit-norm
    embeddings ``anchor`` and ``positive`` (:func:`embed_views`), and one Adam step (lr ``lr``) on
    ``objective(anchor, positive)``. Returns the :class:`History` (mean loss of every epoch)."""
    device = next(model.parameters()).device
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()

    def step(batch):
        images = batch[0].to(device)  # (B, 3, S, S)
        anchor = embed_views(model, make_views(images, kind))  # (B, D)
        positive = embed_views(model, make_views(images, kind))  # (B, D)
        loss = objective(anchor, positive)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    return fit(step, loader, epochs, desc=desc or f"{kind} views")


@torch.no_grad()
def embed_images(model, images: torch.Tensor, batch_size: int = 256, device=None) -> torch.Tensor:
    """``model.encode`` of every image (uint8 or float in [0, 1]), in eval mode, in batches: (N, D) on the CPU."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].to(device)
        batch = batch.float() / 255 if batch.dtype == torch.uint8 else batch.float()
        out.append(model.encode(batch).detach().cpu())
    model.train(was_training)
    return torch.cat(out)


# ---- nearest neighbours ---------------------------------------------------------------------------------

def neighbour_table(nearest_neighbours: Callable, embeddings: torch.Tensor, k: int = 5,
                    desc: str = "nearest neighbours") -> torch.Tensor:
    """(N, k): row i holds ``nearest_neighbours(embeddings, i, k=k)``, the k nearest other images of image i."""
    rows = []
    for i in progress(range(len(embeddings)), desc=desc, unit="query", leave=False):
        rows.append(torch.as_tensor(nearest_neighbours(embeddings, i, k=k)).reshape(-1).long().cpu())
    return torch.stack(rows)


def purity(neighbours: torch.Tensor, labels) -> float:
    """k-NN purity in percent: the share of all neighbours that have their query's label."""
    labels = torch.as_tensor(labels).long()
    return float((labels[neighbours] == labels[:, None]).float().mean() * 100)


def chance_purity(labels) -> float:
    """The purity of neighbours drawn at random, in percent: the sum over labels of their squared share."""
    counts = torch.bincount(torch.as_tensor(labels).long()).float()
    share = counts / counts.sum()
    return float((share * share).sum() * 100)


def print_purity_table(results: Mapping[str, Mapping[str, float]], chance: Optional[Mapping[str, float]] = None,
                       k: int = 5) -> None:
    """Print ``{embedding: {"colour": %, "shape": %}}`` as a table."""
    width = max(len(name) for name in list(results) + ["embedding"])
    print(f"{'embedding':<{width}}  {k}-NN purity by colour  by shape")
    for name, row in results.items():
        print(f"{name:<{width}}  {row['colour']:>19.1f}%  {row['shape']:>7.1f}%")
    if chance:
        print(f"{'chance':<{width}}  {chance['colour']:>19.1f}%  {chance['shape']:>7.1f}%")


# ---- 2-D maps ---------------------------------------------------------------------------------------------

def project_2d(embeddings: torch.Tensor, method: str = "pca", seed: int = 0) -> np.ndarray:
    """A 2-D map of an embedding (N, D) -> (N, 2): ``"pca"`` or ``"tsne"`` (scikit-learn), rows L2-normalised
    first (the problem set compares embeddings by cosine similarity)."""
    x = F.normalize(torch.as_tensor(embeddings).float(), dim=-1).numpy()
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(x)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30, max(2, (len(x) - 1) // 4)))  # t-SNE needs perplexity < number of points
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    raise ValueError(f"unknown method {method!r}; use 'pca' or 'tsne'")


_MARKERS = ("o", "s", "^", "p", "h", "*", "P", "D", "<", "X")  # one per shape, in SHAPE_NAMES order


def plot_embedding_maps(maps: Mapping[str, np.ndarray], colours, shapes, title: Optional[str] = None,
                        save_path=None):
    """One row per embedding, two panels each: the 2-D map with every point painted in its shape's real colour
    (left), and the same map with one colour per shape (right, legend). ``maps``: ``{name: (N, 2)}``;
    ``colours``, ``shapes``: the N colour and shape labels."""
    from .plots import _finish, _plt

    plt = _plt()
    colours, shapes = np.asarray(colours), np.asarray(shapes)
    rgb = colour_rgb(colours)
    fig, axes = plt.subplots(len(maps), 2, figsize=(10, 4.4 * len(maps)), squeeze=False)
    for row, (name, points) in zip(axes, maps.items()):
        points = np.asarray(points)
        row[0].set_facecolor("#3a3a3a")  # white shapes show on grey
        row[0].scatter(points[:, 0], points[:, 1], c=rgb, s=9, linewidths=0)
        row[0].set_title(f"{name}: painted by the shape's colour", fontsize=10)
        cmap = plt.get_cmap("tab10")
        for s, shape in enumerate(SHAPE_NAMES):
            keep = shapes == s
            if keep.any():
                row[1].scatter(points[keep, 0], points[keep, 1], color=cmap(s), marker=_MARKERS[s], s=11,
                               linewidths=0, label=shape)
        row[1].set_title(f"{name}: one colour per shape", fontsize=10)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, markerscale=1.5, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _finish(fig, save_path)


def show_neighbours(images, queries: Sequence[int], neighbours, shapes=None, colours=None,
                    title: Optional[str] = None, save_path=None):
    """One row per query: the query image (framed), then its neighbours, nearest first, each captioned with its
    colour and shape when ``colours`` and ``shapes`` are given. ``neighbours``: (Q, k) indices into ``images``."""
    from .plots import _finish, _imshow, _plt, _to_numpy

    plt = _plt()
    neighbours = torch.as_tensor(neighbours).long().reshape(len(queries), -1)
    k = neighbours.shape[1]
    fig, axes = plt.subplots(len(queries), k + 1, figsize=(1.45 * (k + 1), 1.6 * len(queries)), squeeze=False)

    def caption(i):
        if shapes is None or colours is None:
            return str(i)
        return f"{COLOUR_NAMES[int(colours[i])]}\n{SHAPE_NAMES[int(shapes[i])]}"

    for row, q, near in zip(axes, queries, neighbours.tolist()):
        for col, (ax, index) in enumerate(zip(row, [int(q)] + near)):
            _imshow(ax, _to_numpy(images[index:index + 1])[0], caption(index), fontsize=7)
            if col == 0:
                for spine in ax.spines.values():
                    spine.set_edgecolor("gold")
                    spine.set_linewidth(3)
    axes[0, 0].set_title("query\n" + axes[0, 0].get_title(), fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _finish(fig, save_path)


def plot_purity(results: Mapping[str, Mapping[str, float]], chance: Optional[Mapping[str, float]] = None,
                k: int = 5, title: Optional[str] = None, save_path=None):
    """Grouped bars: the k-NN purity by colour and by shape of every embedding, chance levels dashed."""
    from .plots import _finish, _plt

    plt = _plt()
    names = list(results)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(2.2 * len(names) + 2, 4))
    for offset, (key, colour) in zip((-0.18, 0.18), (("colour", "C1"), ("shape", "C0"))):
        values = [float(results[n][key]) for n in names]
        bars = ax.bar(x + offset, values, width=0.34, color=colour, label=f"by {key}")
        for bar, value in zip(bars, values):
            ax.text(bar.get_x() + bar.get_width() / 2, value + 1, f"{value:.0f}%", ha="center", va="bottom",
                    fontsize=8)
        if chance:
            ax.axhline(chance[key], color=colour, linestyle="--", linewidth=1, label=f"chance by {key}")
    ax.set_xticks(x)
    ax.set_xticklabels(names, fontsize=9)
    ax.set_ylim(0, 110)
    ax.set_ylabel(f"{k}-NN purity (%)")
    ax.set_title(title or f"Do an image's {k} nearest neighbours share its colour, or its shape?")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    return _finish(fig, save_path)


__all__ = [
    "SHAPES_OPTIONS", "ContrastiveShapesData", "load_contrastive_shapes", "hue_colours", "colour_rgb",
    "embed_views", "train_contrastive", "embed_images", "neighbour_table", "purity", "chance_purity",
    "print_purity_table", "project_2d", "plot_embedding_maps", "show_neighbours", "plot_purity",
]
