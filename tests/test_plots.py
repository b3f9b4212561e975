"""Plots: each returns a Figure with the expected panels, saves a PNG, and rejects bad input clearly."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from course_utils.plots import (plot_loss_curves, plot_probe_accuracies, show_images,  # noqa: E402
                                show_reconstructions, show_retrieval)
from course_utils.training import History  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _n_images(fig):
    return sum(len(ax.images) for ax in fig.axes)


def _is_png(path):
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_show_reconstructions(tmp_path):
    x = torch.rand(10, 3, 16, 16)
    fig = show_reconstructions(x, x * 0.5, n=6, save_path=tmp_path / "rec.png")
    assert isinstance(fig, Figure) and len(fig.axes) == 12 and _n_images(fig) == 12
    assert _is_png(tmp_path / "rec.png")
    top_left, bottom_left = fig.axes[0].images[0].get_array(), fig.axes[6].images[0].get_array()
    assert np.allclose(top_left, x[0].permute(1, 2, 0).numpy()) and np.allclose(bottom_left, 0.5 * top_left)


def test_show_reconstructions_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"same shape as the originals \(N, C, H, W\) = \(4, 3, 16, 16\), obtained \(4, 3, 8, 8\)"):
        show_reconstructions(torch.rand(4, 3, 16, 16), torch.rand(4, 3, 8, 8))
    with pytest.raises(ValueError, match=r"expected originals of shape \(N, 3, H, W\)"):
        show_reconstructions(torch.rand(16, 16), torch.rand(16, 16))


def test_show_reconstructions_into_an_existing_axis():
    fig, ax = plt.subplots()
    out = show_reconstructions(torch.randint(0, 256, (3, 3, 8, 8), dtype=torch.uint8),
                               torch.randint(0, 256, (3, 3, 8, 8), dtype=torch.uint8), ax=ax)
    assert out is fig and len(ax.images) == 1


def test_plot_loss_curves_accepts_lists_tensors_and_histories(tmp_path):
    history = History(epoch_loss=[0.9, 0.5, 0.3])
    fig = plot_loss_curves({"autoencoder": history, "probe": [2.3, 1.9], "tensor": torch.tensor([1.0, 0.5])},
                           title="Loss", ylabel="MSE", save_path=tmp_path / "loss.png")
    ax = fig.axes[0]
    assert len(ax.lines) == 3 and ax.get_ylabel() == "MSE" and ax.get_title() == "Loss"
    assert list(ax.lines[0].get_ydata()) == [0.9, 0.5, 0.3] and list(ax.lines[0].get_xdata()) == [1, 2, 3]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["autoencoder", "probe", "tensor"]
    assert _is_png(tmp_path / "loss.png")
    assert len(plot_loss_curves([1.0, 0.5]).axes[0].lines) == 1  # a single curve


def test_plot_loss_curves_rejects_bad_input():
    with pytest.raises(ValueError, match="per-epoch losses"):
        plot_loss_curves({"run": [[1.0, 2.0], [3.0, 4.0]]})
    with pytest.raises(ValueError, match="at least one"):
        plot_loss_curves({})


def test_plot_probe_accuracies(tmp_path):
    results = {"I: pretrained": 31.9, "II: supervised": 43.5, "III: random": 25.8}
    fig = plot_probe_accuracies(results, expected={"I: pretrained": 30, "II: supervised": (40, 100)},
                                save_path=tmp_path / "probe.png")
    ax = fig.axes[0]
    assert [round(p.get_height(), 1) for p in ax.patches if p.get_width() == 0.6] == [31.9, 43.5, 25.8]
    assert {"31.9%", "43.5%", "25.8%"} <= {t.get_text() for t in ax.texts}
    assert len(ax.collections) == 2 and ax.get_legend() is not None  # one line, one range marker
    assert _is_png(tmp_path / "probe.png")


@pytest.mark.parametrize("results, expected, message", [
    ({"I": 0.31}, None, None),  # a fraction is a valid (if odd) percentage
    ({"I": 131.0}, None, "percent"),
    ({"I": "high"}, None, "expected a number"),
    ({}, None, "dict"),
    ({"I": 30.0}, {"II": 40}, "unknown"),
])
def test_plot_probe_accuracies_validates(results, expected, message):
    if message is None:
        assert isinstance(plot_probe_accuracies(results, expected), Figure)
    else:
        with pytest.raises(ValueError, match=message):
            plot_probe_accuracies(results, expected)


def test_show_images_grid_and_titles(tmp_path):
    images = np.random.rand(10, 3, 8, 8)
    fig = show_images(images, titles=[f"img {i}" for i in range(10)], nrow=4, save_path=tmp_path / "grid.png")
    assert len(fig.axes) == 12 and _n_images(fig) == 10 and fig.axes[9].get_title() == "img 9"
    assert _is_png(tmp_path / "grid.png")
    grey = show_images(torch.rand(3, 8, 8))  # (N, H, W) grey images
    assert _n_images(grey) == 3
    with pytest.raises(ValueError, match="expected 10 titles"):
        show_images(images, titles=["a"])
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\).*obtained \(4, 8, 8, 3\).*permute"):
        show_images(np.random.rand(4, 8, 8, 3))


def test_show_retrieval_three_by_three(tmp_path):
    fig = show_retrieval(torch.rand(9, 3, 16, 16), "dogs in the park", scores=torch.linspace(0.9, 0.5, 9),
                         save_path=tmp_path / "retrieval.png")
    assert len(fig.axes) == 9 and _n_images(fig) == 9
    assert "dogs in the park" in fig._suptitle.get_text() and fig.axes[0].get_title().startswith("#1  0.900")
    assert _is_png(tmp_path / "retrieval.png")
    with pytest.raises(ValueError, match="expected 9 scores"):
        show_retrieval(torch.rand(9, 3, 16, 16), "q", scores=[0.1, 0.2])


def test_show_retrieval_from_files(tmp_path):
    from PIL import Image

    paths = []
    for i in range(4):
        path = tmp_path / f"{i}.jpg"
        Image.fromarray(np.full((20 + i, 30, 3), 40 * i, dtype=np.uint8)).save(path)
        paths.append(str(path))
    fig = show_retrieval(paths, "grey squares")
    assert len(fig.axes) == 6 and _n_images(fig) == 4  # 2 rows of 3, two panels left empty


def test_training_progress_in_a_saved_notebook_is_one_text_line_with_the_final_loss(tmp_path):
    """In a notebook, fit shows one bar for the whole run, as text updated in place: the saved notebook holds one
    output with the last state (the final epoch and loss), no widget (whose saved fallback reads "0%")."""
    import os

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import torch\nfrom course_utils.training import fit\n"
        "w = torch.zeros(1, requires_grad=True)\nopt = torch.optim.SGD([w], lr=0.1)\n"
        "def step(batch):\n    loss = (w - batch).pow(2).mean()\n    opt.zero_grad(); loss.backward(); opt.step()\n"
        "    return loss\n"
        "history = fit(step, [torch.ones(3)] * 20, 7, desc='toy')")]
    env = {k: v for k, v in os.environ.items() if k != "NBGRADER_EXECUTION"}
    client = NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    outputs = nb.cells[0].outputs
    assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs), outputs
    shown = [o for o in outputs if o.get("output_type") == "display_data"]
    assert len(shown) == 1, outputs
    text = shown[0]["data"]["text/plain"]
    assert text.startswith("toy: 100%") and "140/140" in text and "epoch 7/7, loss" in text, text
