"""Figures of the problem sets: reconstructions, loss curves, probe accuracies, image grids, retrieval.

Every function returns the matplotlib ``Figure`` (so a notebook shows it and a test can inspect
it), accepts ``save_path`` to write it to a file (PNG, PDF, ...), and works with any backend,
including the non-interactive ``Agg`` used by tests and the grader. Functions that draw a single
panel also accept ``ax`` to draw into an existing figure; grid functions given an ``ax`` draw the
whole grid as one image in it.

Images may be torch tensors or numpy arrays, shaped (N, 3, H, W), (N, 1, H, W) or (N, H, W),
with float values in [0, 1] or uint8 values in 0..255.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

import numpy as np


def _plt():
    import matplotlib.pyplot as plt  # matplotlib falls back to Agg by itself when there is no display

    return plt


def _finish(fig, save_path):
    if save_path is not None:
        path = Path(save_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    return fig


def _to_numpy(images, what: str = "images") -> np.ndarray:
    """Images in any accepted form -> float array (N, H, W, C) in [0, 1], C = 1 or 3."""
    if isinstance(images, (list, tuple)):
        if len(images) == 0:
            raise ValueError(f"expected at least one image in {what}, obtained an empty list")
        images = [_as_array(image) for image in images]
        shapes = {image.shape for image in images}
        if len(shapes) > 1:
            raise ValueError(f"expected {what} of one common shape, obtained shapes {sorted(shapes)}")
        array = np.stack(images)
    else:
        array = _as_array(images)
    if array.ndim == 3:  # (N, H, W): grey
        array = array[:, None]
    if array.ndim != 4 or array.shape[1] not in (1, 3):
        raise ValueError(
            f"expected {what} of shape (N, 3, H, W), (N, 1, H, W) or (N, H, W), obtained {tuple(array.shape)}"
            + ("; for channels-last arrays use images.permute(0, 3, 1, 2)" if array.ndim == 4 and array.shape[-1] in (1, 3) else "")
        )
    if array.shape[0] == 0:
        raise ValueError(f"expected at least one image in {what}, obtained shape {tuple(array.shape)}")
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    else:
        array = np.clip(array.astype(np.float32), 0.0, 1.0)
    return array.transpose(0, 2, 3, 1)  # (N, H, W, C)


def _as_array(x) -> np.ndarray:
    try:
        import torch

        if isinstance(x, torch.Tensor):
            return x.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    return np.asarray(x)


def _imshow(ax, image: np.ndarray, title: Optional[str] = None, fontsize: int = 9):
    """Show one (H, W, C) image without ticks."""
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(image)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=fontsize)


def _grid(images: np.ndarray, nrow: int, pad: int = 2) -> np.ndarray:
    """(N, H, W, C) -> one (rows*(H+pad), nrow*(W+pad), C) mosaic, white between images."""
    n, h, w, c = images.shape
    rows = math.ceil(n / nrow)
    out = np.ones((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), dtype=np.float32)
    for i in range(n):
        r, col = divmod(i, nrow)
        out[pad + r * (h + pad): pad + r * (h + pad) + h, pad + col * (w + pad): pad + col * (w + pad) + w] = images[i]
    return out


def show_images(images, titles: Optional[Sequence[str]] = None, nrow: int = 8, title: Optional[str] = None,
                ax=None, save_path=None, figsize=None):
    """A grid of images, ``nrow`` per row, with optional per-image titles.

    Args:
        images: (N, 3, H, W), (N, 1, H, W) or (N, H, W); float in [0, 1] or uint8.
        titles: N strings (or ``None``).
        nrow: images per row.
        title: a title over the whole figure.
    """
    array = _to_numpy(images)  # (N, H, W, C)
    n = array.shape[0]
    if titles is not None and len(titles) != n:
        raise ValueError(f"expected {n} titles (one per image), obtained {len(titles)}")
    if int(nrow) < 1:
        raise ValueError(f"nrow must be at least 1, obtained {nrow}")
    nrow = min(int(nrow), n)
    plt = _plt()
    if ax is not None:
        _imshow(ax, _grid(array, nrow), title)
        return _finish(ax.figure, save_path)
    rows = math.ceil(n / nrow)
    fig, axes = plt.subplots(rows, nrow, figsize=figsize or (1.5 * nrow, 1.5 * rows + (0.3 if titles else 0)),
                             squeeze=False)
    for i, axis in enumerate(axes.flat):
        if i < n:
            _imshow(axis, array[i], titles[i] if titles is not None else None, fontsize=8)
        else:
            axis.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _finish(fig, save_path)


def show_reconstructions(originals, reconstructions, n: int = 8, title: str = "Autoencoder reconstructions",
                         ax=None, save_path=None):
    """Originals in the top row, their reconstructions below.

    Args:
        originals: (N, 3, H, W) images (float in [0, 1] or uint8).
        reconstructions: the autoencoder's outputs for them, same shape.
        n: number of pairs to show (at most N).
    """
    top = _to_numpy(originals, "originals")
    bottom = _to_numpy(reconstructions, "reconstructions")
    if top.shape != bottom.shape:
        raise ValueError(
            "expected reconstructions of the same shape as the originals "
            f"(N, C, H, W) = {_nchw(top)}, obtained {_nchw(bottom)}; did the decoder return 64x64 images?"
        )
    n = min(int(n), top.shape[0])
    if n < 1:
        raise ValueError(f"n must be at least 1, obtained {n}")
    plt = _plt()
    if ax is not None:
        _imshow(ax, _grid(np.concatenate([top[:n], bottom[:n]]), n), title)
        return _finish(ax.figure, save_path)
    fig, axes = plt.subplots(2, n, figsize=(1.5 * n, 3.4), squeeze=False)
    for i in range(n):
        _imshow(axes[0, i], top[i])
        _imshow(axes[1, i], bottom[i])
    axes[0, 0].set_ylabel("original")
    axes[1, 0].set_ylabel("reconstruction")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _finish(fig, save_path)


def _nchw(array: np.ndarray) -> tuple:
    n, h, w, c = array.shape
    return (n, c, h, w)


def _curve(name: str, value) -> list:
    """A per-epoch loss list from a list/array/tensor or a ``course_utils.training.History``."""
    if hasattr(value, "epoch_loss"):
        value = value.epoch_loss
    array = _as_array(value)
    if array.dtype == object or array.ndim != 1:
        raise ValueError(
            f"expected {name!r} to be a list of per-epoch losses (1-D) or a History, obtained shape {array.shape}"
        )
    try:
        return [float(v) for v in array]
    except (TypeError, ValueError):
        raise ValueError(f"expected numbers in the losses of {name!r}, obtained {list(array)[:3]}...") from None


def plot_loss_curves(histories: Union[Mapping, Sequence, object], title: str = "Training loss", ylabel: str = "loss",
                     xlabel: str = "epoch", log_scale: bool = False, ax=None, save_path=None):
    """Loss per epoch of one or more runs.

    Args:
        histories: ``{name: per-epoch losses or History}``; a single list or History also works.
        title, ylabel, xlabel: labels.
        log_scale: a logarithmic y axis (useful for reconstruction losses).
    """
    if not isinstance(histories, Mapping):
        histories = {"loss": histories}
    if len(histories) == 0:
        raise ValueError("expected at least one loss curve, obtained an empty dict")
    curves = {str(name): _curve(str(name), value) for name, value in histories.items()}
    plt = _plt()
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 4))
    for name, losses in curves.items():
        ax.plot(range(1, len(losses) + 1), losses, marker="o" if len(losses) <= 20 else None, markersize=3, label=name)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs only: no "epoch 1.5"
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if log_scale:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return _finish(fig, save_path)


def plot_probe_accuracies(results: Mapping[str, float], expected: Optional[Mapping[str, object]] = None,
                          title: str = "Linear probe accuracy (test)", ylabel: str = "accuracy (%)",
                          ax=None, save_path=None):
    """Bar chart of probe accuracies (in percent), each value written on its bar.

    Args:
        results: ``{method: accuracy in percent}``, e.g. ``{"I: pretrained, frozen": 31.9, ...}``.
        expected: optional ``{method: value}`` markers (a number, or a ``(low, high)`` range),
            e.g. ``{"I: pretrained, frozen": 30, "II: trained with classifier": (40, 100)}``.
    """
    if not isinstance(results, Mapping) or len(results) == 0:
        raise ValueError(f"expected a dict {{method name: accuracy in percent}}, obtained {results!r}")
    names, values = list(results), []
    for name in names:
        try:
            value = float(results[name])
        except (TypeError, ValueError):
            raise ValueError(f"expected a number for {name!r}, obtained {results[name]!r}") from None
        if not 0.0 <= value <= 100.0:
            raise ValueError(f"expected accuracies in percent (0..100), obtained {value} for {name!r}")
        values.append(value)
    expected = dict(expected or {})
    unknown = [k for k in expected if k not in results]
    if unknown:
        raise ValueError(f"expected markers for methods in results {names}, obtained unknown {unknown}")
    plt = _plt()
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(1.6 * len(names) + 2, 4))
    x = np.arange(len(names))
    bars = ax.bar(x, values, color=[f"C{i}" for i in range(len(names))], width=0.6)
    for bar, value in zip(bars, values):
        ax.text(bar.get_x() + bar.get_width() / 2, value + 1, f"{value:.1f}%", ha="center", va="bottom", fontsize=9)
    labelled = False
    for i, name in enumerate(names):
        if name not in expected:
            continue
        mark = expected[name]
        label = None if labelled else "expected"
        if isinstance(mark, (tuple, list)):
            low, high = float(mark[0]), float(mark[1])
            ax.fill_between([i - 0.35, i + 0.35], low, high, color="grey", alpha=0.2, label=label)
        else:
            ax.hlines(float(mark), i - 0.35, i + 0.35, colors="black", linestyles="--", label=label)
        labelled = True
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=15 if max(len(n) for n in names) > 12 else 0, ha="right" if max(len(n) for n in names) > 12 else "center")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, min(100, max(values + [0]) + 15) if max(values) < 85 else 105)
    ax.set_title(title)
    if labelled:
        ax.legend(loc="upper left")
    fig.tight_layout()
    return _finish(fig, save_path)


def _load_paths(paths: Sequence, size: Optional[int] = None) -> np.ndarray:
    from PIL import Image

    out = []
    for path in paths:
        with Image.open(path) as image:
            image = image.convert("RGB")
            if size is not None:
                image = image.resize((size, size))
            out.append(np.asarray(image).transpose(2, 0, 1))  # (3, H, W) uint8
    return np.stack(out)


def _short_name(name, width: int = 28) -> str:
    """A file name for a tile's caption: the last path part, shortened in the middle when too long."""
    text = Path(str(name)).name
    return text if len(text) <= width else text[: width // 2 - 1] + "…" + text[-(width - width // 2):]


def show_retrieval(images, query: str, scores: Optional[Sequence[float]] = None, ncols: int = 3,
                   ax=None, save_path=None, names: Optional[Sequence[str]] = None):
    """The top retrieved images for a text query, in a 3x3 grid (best first), each tile captioned
    with its rank, its score when given and its file name when known.

    Args:
        images: the top-k images, (k, 3, H, W) float in [0, 1] or uint8, or a list of k image
            file paths (read with PIL and resized to a common size; their file names caption the tiles).
        query: the text query, shown as the title.
        scores: optional k similarity scores (shown on each tile).
        ncols: images per row (3 gives the problem set's 3x3 grid for k = 9).
        names: optional k names (e.g. the file names ``retrieve_images`` returned) shown on each tile.
    """
    if isinstance(images, (list, tuple)) and images and isinstance(images[0], (str, Path)):
        if names is None:
            names = [str(p) for p in images]
        images = _load_paths(images, size=128)
    array = _to_numpy(images)  # (k, H, W, C)
    k = array.shape[0]
    if scores is not None:
        scores = [float(s) for s in _as_array(scores).reshape(-1)]
        if len(scores) != k:
            raise ValueError(f"expected {k} scores (one per image), obtained {len(scores)}")
    if names is not None:
        names = list(names)
        if len(names) != k:
            raise ValueError(f"expected {k} names (one per image), obtained {len(names)}")
    titles = [f"#{i + 1}" + (f"  {scores[i]:.3f}" if scores is not None else "")
              + (f"\n{_short_name(names[i])}" if names is not None else "") for i in range(k)]
    plt = _plt()
    if ax is not None:
        ncols = min(ncols, k)
        _imshow(ax, _grid(array, ncols), f'Query: "{query}"')
        h, w, pad = array.shape[1], array.shape[2], 2
        for i, text in enumerate(titles):  # the same captions, written on the tiles of the one image
            r, col = divmod(i, ncols)
            ax.text(pad + col * (w + pad) + 1, pad + r * (h + pad) + 1, text, fontsize=6, ha="left", va="top",
                    color="white", bbox={"facecolor": "black", "alpha": 0.5, "pad": 1, "linewidth": 0})
        return _finish(ax.figure, save_path)
    rows = math.ceil(k / ncols)
    fig, axes = plt.subplots(rows, ncols, figsize=(2.4 * ncols, 2.4 * rows + 0.4 + 0.25 * rows * (names is not None)),
                             squeeze=False)
    for i, axis in enumerate(axes.flat):
        if i < k:
            _imshow(axis, array[i], titles[i], fontsize=9)
        else:
            axis.axis("off")
    fig.suptitle(f'Query: "{query}"')
    fig.tight_layout()
    return _finish(fig, save_path)


__all__ = ["show_images", "show_reconstructions", "plot_loss_curves", "plot_probe_accuracies", "show_retrieval"]
