"""Problem set "simclr", library side: its data in every run mode (STL-10 read from tiny files written in the
dataset's own binary layout, no network; the kit's shapes), the readable loop version of NT-Xent, SimCLR
pretraining, the frozen and trainable classifiers, and the table of metrics (accuracy, precision, recall, F1,
silhouette, Dunn's index) with its plot."""
import matplotlib
import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score, precision_score, recall_score, silhouette_score
from torch import nn
from torch.nn import functional as F

from course_utils import simclr
from course_utils.configs import run_config
from course_utils.data.stl10 import CLASSES, write_stl10_files

matplotlib.use("Agg")


def nt_xent_matrix(z1, z2, t):
    """NT-Xent over the 2N x 2N cosine similarities (diagonal masked, positives i <-> i + N), written here in the
    test so that the library's loop version is compared with an independent formula."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = len(z1)
    sim = (z @ z.T / t).masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    return F.cross_entropy(sim, torch.cat([torch.arange(n, 2 * n), torch.arange(n)]))


def flip_and_noise(x, strength="strong"):
    """A plain stand-in for the student's augment: a random left-right flip per image and a little noise."""
    flip = torch.rand(len(x), 1, 1, 1) < 0.5
    x = torch.where(flip, x.flip(-1), x)
    return (x + (0.05 if strength == "strong" else 0.02) * torch.randn_like(x)).clamp(0, 1)


class TinySimCLR(nn.Module):
    def __init__(self, width=16):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(3, width, 3, stride=2, padding=1), nn.ReLU(),
                                     nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.projection_head = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 8))

    def forward(self, x1, x2):
        return self.projection_head(self.encoder(x1)), self.projection_head(self.encoder(x2))


@pytest.mark.parametrize("n,d,t", [(1, 3, 0.1), (5, 4, 0.5), (8, 16, 1.0)])
def test_loop_version_of_nt_xent_equals_the_matrix_formula(n, d, t):
    g = torch.Generator().manual_seed(n)
    z1, z2 = torch.randn(n, d, generator=g) * 3, torch.randn(n, d, generator=g)
    assert torch.allclose(simclr.nt_xent_loop(z1, z2, t), nt_xent_matrix(z1, z2, t), atol=1e-5)


def test_loop_version_is_differentiable():
    z1, z2 = torch.randn(4, 6, requires_grad=True), torch.randn(4, 6, requires_grad=True)
    simclr.nt_xent_loop(z1, z2, 0.2).backward()
    assert z1.grad is not None and z1.grad.abs().sum() > 0 and z2.grad.abs().sum() > 0


def test_grading_mode_data_are_small_labelled_shapes():
    data = simclr.load_simclr_data("grading")
    run = run_config("simclr", "grading")
    s = run.image_size
    assert data.unlabeled.shape == (run.unlabeled_size, 3, s, s) and data.unlabeled.dtype == torch.float32
    assert data.train[0].shape == (run.train_size, 3, s, s) and data.test[1].shape == (run.test_size,)
    assert 0 <= float(data.unlabeled.min()) and float(data.unlabeled.max()) <= 1
    assert data.train[1].dtype == torch.long and int(data.train[1].max()) < len(data.classes)
    assert not torch.equal(data.train[0], data.test[0][:len(data.train[0])])  # different seeds per split
    assert "shapes" in repr(data)


def test_full_mode_reads_stl10_at_96x96_from_its_binary_files(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    sizes = {"unlabeled": 12, "train": 10, "test": 10}
    images = {k: rng.integers(0, 256, (n, 3, 96, 96), dtype=np.uint8) for k, n in sizes.items()}
    labels = {"train": np.arange(10), "test": np.arange(10)[::-1].copy()}
    write_stl10_files(tmp_path, images, labels)
    from course_utils.configs import simclr as config
    monkeypatch.setitem(config.MODES, "full", {**config.MODES["full"], "unlabeled_size": 5, "train_size": 10,
                                               "test_size": 4})
    data = simclr.load_simclr_data("full", root=tmp_path, download=False)
    assert data.source == "STL-10" and data.classes == CLASSES
    assert data.unlabeled.shape == (5, 3, 96, 96) and data.train[0].shape == (10, 3, 96, 96)
    assert torch.equal(data.train[1], torch.arange(10)) and torch.equal(data.test[1], torch.tensor([9, 8, 7, 6]))
    assert torch.allclose(data.train[0][3] * 255, torch.from_numpy(images["train"][3]).float(), atol=1e-3)
    rows = [next(i for i in range(12) if torch.allclose(u * 255, torch.from_numpy(images["unlabeled"][i]).float(),
                                                        atol=1e-3)) for u in data.unlabeled]
    assert len(set(rows)) == 5  # five distinct images of the unlabeled split


def test_pretraining_lowers_the_loss_and_shows_one_progress_bar(monkeypatch):
    bars = []
    real = simclr.progress
    monkeypatch.setattr(simclr, "progress", lambda it, **kw: bars.append(kw) or real(it, **kw))
    torch.manual_seed(0)
    data = simclr.load_simclr_data("grading")
    model = TinySimCLR()
    losses = simclr.pretrain(model, flip_and_noise, nt_xent_matrix, data.unlabeled, epochs=6, batch_size=32,
                             lr=5e-3, temperature=0.5)
    assert len(losses) == 6 and all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert [b["desc"] for b in bars] == ["SimCLR pretraining"]  # one bar for all epochs


def test_frozen_classifier_trains_only_its_linear_layer():
    torch.manual_seed(0)
    data = simclr.load_simclr_data("grading")
    encoder = TinySimCLR().encoder
    before = [p.detach().clone() for p in encoder.parameters()]
    probe = simclr.Classifier(encoder, 16, len(data.classes), freeze=True)
    losses = simclr.train_classifier(probe, flip_and_noise, *data.train, epochs=4, batch_size=16, lr=1e-2)
    assert all(torch.equal(a, b) for a, b in zip(before, encoder.parameters()))
    assert losses[-1] < losses[0]
    tuned = simclr.Classifier(encoder, 16, len(data.classes), freeze=False)
    simclr.train_classifier(tuned, None, *data.train, epochs=1, batch_size=16)
    assert any(not torch.equal(a, b) for a, b in zip(before, encoder.parameters()))


def test_metric_row_agrees_with_scikit_learn_and_the_dunn_index_given(capsys):
    torch.manual_seed(0)
    data = simclr.load_simclr_data("grading")
    classifier = simclr.Classifier(TinySimCLR().encoder, 16, len(data.classes))
    images, labels = data.test

    def dunn(x, y):
        d = torch.cdist(x, x)
        same = y[:, None] == y[None, :]
        return d[~same].min() / d[same].max()

    row = simclr.metric_row(classifier, dunn, images, labels, points=40)
    pred = simclr.predict(classifier, images).argmax(1).numpy()
    feats = simclr.predict(classifier.encoder, images[:40])
    assert row["accuracy"] == pytest.approx(100 * (pred == labels.numpy()).mean())
    assert row["precision"] == pytest.approx(100 * precision_score(labels, pred, average="macro", zero_division=0))
    assert row["recall"] == pytest.approx(100 * recall_score(labels, pred, average="macro", zero_division=0))
    assert row["F1"] == pytest.approx(100 * f1_score(labels, pred, average="macro", zero_division=0))
    assert row["silhouette"] == pytest.approx(silhouette_score(feats.numpy(), labels[:40].numpy()), abs=1e-5)
    assert row["Dunn"] == pytest.approx(float(dunn(feats, labels[:40])), rel=1e-5)
    simclr.print_metric_table({"supervised baseline": row, "SimCLR linear probe": row})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["method", "accuracy", "precision", "recall", "F1", "silhouette", "Dunn"]
    assert lines[1].startswith("supervised baseline") and f"{row['accuracy']:.1f}%" in lines[1]
    fig = simclr.plot_metrics({"a": row, "b": row})
    assert len(fig.axes) == 2 and len(fig.axes[0].patches) == 8 and len(fig.axes[1].patches) == 4


def test_resnet18_encoder_gives_512_features():
    pytest.importorskip("timm")
    encoder = simclr.resnet18_encoder().eval()
    with torch.no_grad():
        assert encoder(torch.rand(2, 3, 64, 64)).shape == (2, 512)
