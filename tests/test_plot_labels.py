"""Plots (issue 13): loss curves tick whole epochs only; retrieval tiles carry a caption (rank, score, file name)."""
import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from course_utils.plots import plot_loss_curves, show_retrieval  # noqa: E402


@pytest.mark.parametrize("epochs", [2, 3, 5, 7, 30])
def test_loss_curves_tick_whole_epochs(epochs):
    fig = plot_loss_curves({"train": [1.0 / (e + 1) for e in range(epochs)], "val": [1.2 / (e + 1) for e in range(epochs)]})
    ax = fig.axes[0]
    fig.canvas.draw()
    lo, hi = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_retrieval_tiles_are_captioned_as_the_notebook_calls_it():
    # simple_clip.ipynb: plots.show_retrieval(data.val.images[[row_of[n] for n in names]], query)
    fig = show_retrieval(torch.rand(9, 3, 16, 16), "dogs in the park")
    assert [a.get_title() for a in fig.axes] == [f"#{i}" for i in range(1, 10)]


def test_retrieval_tiles_carry_file_names_and_scores():
    names = [f"{1000 + i}_abcdef0123.jpg" for i in range(9)]
    fig = show_retrieval(torch.rand(9, 3, 16, 16), "dogs", torch.linspace(0.9, 0.5, 9), names=names)
    assert fig.axes[0].get_title() == "#1  0.900\n1000_abcdef0123.jpg"
    assert fig.axes[8].get_title().endswith("1008_abcdef0123.jpg")
    long = ["/data/flickr8k/Images/" + "x" * 40 + ".jpg"] * 9
    title = show_retrieval(torch.rand(9, 3, 16, 16), "dogs", names=long).axes[0].get_title()
    assert "/data" not in title and len(title.splitlines()[1]) <= 28 and title.endswith(".jpg")
    with pytest.raises(ValueError, match="expected 9 names"):
        show_retrieval(torch.rand(9, 3, 16, 16), "dogs", names=names[:3])


def test_retrieval_from_files_captions_their_names(tmp_path):
    import numpy as np
    from PIL import Image

    paths = []
    for i in range(3):
        path = tmp_path / f"photo_{i}.jpg"
        Image.fromarray(np.full((20, 30, 3), 60 * i, dtype=np.uint8)).save(path)
        paths.append(str(path))
    fig = show_retrieval(paths, "grey")
    assert [a.get_title() for a in fig.axes[:3]] == [f"#{i + 1}\nphoto_{i}.jpg" for i in range(3)]


def test_retrieval_into_one_axis_writes_the_captions_on_the_tiles():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    show_retrieval(torch.rand(4, 3, 16, 16), "q", scores=[0.4, 0.3, 0.2, 0.1], names=list("abcd"), ax=ax)
    assert [t.get_text() for t in ax.texts] == ["#1  0.400\na", "#2  0.300\nb", "#3  0.200\nc", "#4  0.100\nd"]
