"""Problem set "vae_denoising": units and their checks, the hidden tests' robustness, the data (MNIST idx files and
CIFAR-10 pickled batches written here in their real formats, scikit-learn's digits), the harness and its figures."""
from __future__ import annotations

import gzip
import inspect
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from autograder import vae_denoising as vd
from autograder.core import judge_safely, run_unit
from course_utils import vae, vae_compare
from course_utils.checks import vae_denoising as checks
from course_utils.data import DatasetNotFoundError
from course_utils.data import cifar10, mnist
from course_utils.data.digits import load_digits_28
from course_utils.probes import vae_denoising as probes

REFERENCE = {"add_noise": vd.add_noise, "DenoisingAutoencoder": vd.DenoisingAutoencoder, "VAE": vd.VAE,
             "vae_loss": vd.vae_loss}
SEEDS = (0, 1, 20261123)


# ---- units and hidden tests ----------------------------------------------------------------------------------

def test_problem_set_points_and_checks():
    ps = vd.PROBLEM_SET
    assert ps.id == "vae_denoising" and ps.notebook == "vae_denoising.ipynb"
    assert [(u.grade_id, u.title, u.points) for u in ps.units] == [
        ("test_add_noise", "add_noise", 1), ("test_denoising_autoencoder", "DenoisingAutoencoder", 1),
        ("test_vae", "VAE", 1), ("test_vae_loss", "vae_loss", 1)]
    assert [(m.grade_id, m.points) for m in ps.manual] == [("report", 1)] and ps.total_points == 5
    for unit in ps.units:
        results = run_unit(unit, {unit.names[0]: REFERENCE[unit.names[0]]}, seed=0)
        assert [r.name for r in results] == list(unit.all_checks)
        assert sum(r.max_points for r in results) == pytest.approx(unit.points)
        assert sum(c.max_points for c in unit.failed("x")) == pytest.approx(unit.points)


@pytest.mark.parametrize("seed", SEEDS)
def test_reference_passes_its_own_hidden_tests(seed):
    for unit in vd.PROBLEM_SET.units:
        results = run_unit(unit, {unit.names[0]: REFERENCE[unit.names[0]]}, seed=seed)
        assert all(r.passed for r in results), [(r.name, r.message) for r in results if not r.passed]


def test_hidden_inputs_differ_by_seed_and_repeat_for_the_same_seed():
    a, b, c = vd.inputs_vae_loss(1), vd.inputs_vae_loss(1), vd.inputs_vae_loss(2)
    assert torch.equal(a["cases"][0][0], b["cases"][0][0]) and not torch.equal(a["cases"][0][0], c["cases"][0][0])
    assert not torch.equal(vd.inputs_vae(1)["reparam_mu"], vd.inputs_vae(2)["reparam_mu"])


def test_independent_elbo_agrees_with_the_reference_loss():
    for case in vd.inputs_vae_loss(5)["cases"]:
        for beta in (0.0, 0.5, 1.0):
            assert vd.negative_elbo(*case, beta=beta) == pytest.approx(float(vd.vae_loss(*case, beta=beta)), rel=1e-5)


def test_judges_survive_malformed_observations():
    for unit in vd.PROBLEM_SET.units:
        for obs in ({}, {"kinds": 3, "dims": "x", "default": [1]}, None, {"error": "boom"},
                    {"kinds": {}, "dims": {}, "default": [], "scalar": [], "betas": []}):
            results = judge_safely(unit, obs, unit.make_inputs(0))
            assert results and not any(r.passed for r in results)


def test_a_model_that_is_not_a_module_and_code_that_raises_score_zero_with_a_message():
    class NotAModule:
        def __init__(self, latent_dim=2):
            pass

    def raises(*args, **kwargs):
        raise RuntimeError("boom")

    for grade_id, obj in (("test_denoising_autoencoder", NotAModule), ("test_vae", NotAModule),
                          ("test_add_noise", raises), ("test_vae_loss", raises)):
        unit = vd.PROBLEM_SET.unit(grade_id)
        results = run_unit(unit, {unit.names[0]: obj}, seed=0)
        assert sum(r.points for r in results) == 0, grade_id
        assert any("torch.nn.Module" in r.message or "boom" in r.message for r in results), grade_id


def test_probes_and_visible_checks_hold_no_solution():
    for module in (probes, checks):
        src = inspect.getsource(module)
        for leak in ("mu + torch.randn", "torch.exp(0.5 * logvar)", "binary_cross_entropy(", "nn.Conv2d(",
                     "nn.ConvTranspose2d(", "0.3 * torch.randn", "< 1 / 20", "def add_noise", "def vae_loss"):
            assert leak not in src, (module.__name__, leak)


def test_visible_checks_accept_the_reference(capsys):
    checks.check_add_noise(vd.add_noise)
    checks.check_denoising_autoencoder(vd.DenoisingAutoencoder)
    checks.check_vae(vd.VAE)
    checks.check_vae_loss(vd.vae_loss)
    out = capsys.readouterr().out
    assert out.count("visible checks passed") == 4


def test_visible_checks_say_when_a_part_is_not_written_yet():
    def todo(*args, **kwargs):
        raise NotImplementedError

    for check in (checks.check_add_noise, checks.check_vae_loss):
        with pytest.raises(checks.CheckFailed, match="not implemented yet"):
            check(todo)


def test_released_notebook_holds_no_solution_and_no_hidden_test():
    # This checkout's release (autograder.problem_sets.REPO_ROOT may point at a test's course copy meanwhile).
    release = (Path(__file__).resolve().parent.parent / "assignments" / "vae_denoising" / "vae_denoising.ipynb").read_text()
    for leak in ("BEGIN SOLUTION", "HIDDEN TESTS", "autograder.vae_denoising", "0.3 * torch.randn_like",
                 "torch.exp(0.5 * logvar)", "kl = -0.5 * torch.sum(", "self.mu_head = "):
        assert leak not in release, leak


# ---- data: MNIST ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_mnist(tmp_path_factory):
    """30 train and 12 test digits written as torchvision keeps them: MNIST/raw/*-idx?-ubyte.gz (and, for
    torchvision's own reader, the uncompressed files beside them)."""
    root = tmp_path_factory.mktemp("mnist")
    rng = np.random.default_rng(0)
    data = {"train": (rng.integers(0, 256, (30, 28, 28), dtype=np.uint8), rng.integers(0, 10, 30).astype(np.uint8)),
            "test": (rng.integers(0, 256, (12, 28, 28), dtype=np.uint8), rng.integers(0, 10, 12).astype(np.uint8))}
    for split, (images, labels) in data.items():
        for name, array in zip(mnist.FILES[split], (images, labels)):
            mnist.write_idx(root / "MNIST" / "raw" / name, array)
            mnist.write_idx(root / "MNIST" / "raw" / name[:-3], array)
    return root, data


def test_idx_reader_agrees_with_torchvision(tiny_mnist):
    root, data = tiny_mnist
    reference = torchvision.datasets.MNIST(str(root), train=True, download=False)
    images = mnist.read_idx(root / "MNIST" / "raw" / mnist.FILES["train"][0])
    assert images.shape == (30, 28, 28) and np.array_equal(images, reference.data.numpy())
    assert np.array_equal(mnist.read_idx(root / "MNIST" / "raw" / mnist.FILES["train"][1]), reference.targets.numpy())
    with gzip.open(root / "MNIST" / "raw" / mnist.FILES["train"][0], "rb") as f:
        assert f.read(4) == bytes([0, 0, 8, 3])  # the idx magic number of a 3-D array of unsigned bytes


def test_load_mnist_splits_seeded_and_scaled(tiny_mnist):
    root, data = tiny_mnist
    a = mnist.load_mnist(root, download=False, splits=(20, 10, 12))
    b = mnist.load_mnist(root, download=False, splits=(20, 10, 12))
    assert a.train[0].shape == (20, 1, 28, 28) and a.val[0].shape == (10, 1, 28, 28) and a.test[0].shape == (12, 1, 28, 28)
    assert torch.equal(a.train[0], b.train[0]) and 0 <= float(a.train[0].min()) and float(a.train[0].max()) <= 1
    pool = torch.from_numpy(data["train"][0]).float().div(255)
    together = torch.cat([a.train[0], a.val[0]])[:, 0]  # the 30 training images, each once
    assert sorted(together.sum((1, 2)).tolist()) == pytest.approx(sorted(pool.sum((1, 2)).tolist()))
    assert torch.equal(a.test[1], torch.from_numpy(data["test"][1].astype(np.int64)))


def test_mnist_offline_error_names_files_size_address_and_folder(tmp_path):
    with pytest.raises(DatasetNotFoundError) as error:
        mnist.load_mnist(tmp_path, download=False)
    text = str(error.value)
    for part in ("train-images-idx3-ubyte.gz", "MB", mnist.URL, str(tmp_path / "MNIST" / "raw"), "quick"):
        assert part in text, part


def test_damaged_idx_file_is_named(tmp_path):
    path = tmp_path / "bad-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + (5).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + b"\0" * 100)
    with pytest.raises(DatasetNotFoundError, match="damaged"):
        mnist.read_idx(path)


# ---- data: CIFAR-10 --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_cifar(tmp_path_factory):
    """Five training batches of 4 images and a test batch of 6, pickled as in cifar-10-batches-py, in a tar.gz."""
    src = tmp_path_factory.mktemp("cifar_src")
    rng = np.random.default_rng(1)
    arrays = {}
    for name, n in [(b, 4) for b in cifar10.TRAIN_BATCHES] + [(cifar10.TEST_BATCH, 6)]:
        images, labels = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n)
        images[:, 0, 0, :] = 255  # a red top row: orientation mistakes show
        cifar10.write_batch(src / cifar10.FOLDER / name, images, labels)
        arrays[name] = (images, labels)
    root = tmp_path_factory.mktemp("cifar")
    with tarfile.open(root / cifar10.ARCHIVE, "w:gz") as tar:
        tar.add(src / cifar10.FOLDER, arcname=cifar10.FOLDER)
    return root, arrays


class _TorchvisionCIFAR10(torchvision.datasets.CIFAR10):
    """torchvision's own reader, minus the md5 sums only the real files have (and their batches.meta)."""

    def _check_integrity(self):
        return True

    def _load_meta(self):
        self.classes = list(cifar10.CLASSES)


def test_cifar10_archive_is_extracted_and_read_like_torchvision(tiny_cifar):
    root, arrays = tiny_cifar
    data = cifar10.load_cifar10(root, download=False, splits=(20, 6))
    assert data["train"][0].shape == (20, 3, 32, 32) and data["test"][0].shape == (6, 3, 32, 32)
    reference = _TorchvisionCIFAR10(str(root), train=True, download=False)
    assert np.array_equal((data["train"][0] * 255).round().byte().permute(0, 2, 3, 1).numpy(), reference.data)
    assert data["train"][1].tolist() == list(reference.targets)
    assert bool((data["test"][0][:, 0, 0, :] == 1).all())  # the red top row, red channel


def test_cifar10_offline_error_names_archive_size_address_and_folder(tmp_path):
    with pytest.raises(DatasetNotFoundError) as error:
        cifar10.load_cifar10(tmp_path, download=False)
    text = str(error.value)
    for part in (cifar10.ARCHIVE, "163 MB", cifar10.URL, str(tmp_path), "data_batch_1"):
        assert part in text, part


# ---- data: digits, and the harness ------------------------------------------------------------------------------

def test_digits_are_real_upsampled_and_split_without_overlap():
    data = load_digits_28((1_297, 250, 250))
    assert data.train[0].shape == (1_297, 1, 28, 28) and len(data.val[0]) == 250 and len(data.test[0]) == 250
    assert float(data.train[0].min()) >= 0 and float(data.train[0].max()) <= 1
    assert sorted(set(data.test[1].tolist())) == list(range(10))
    keys = {tuple(x.flatten()[::37].tolist()) for x in torch.cat([data.train[0], data.val[0], data.test[0]])}
    assert len(keys) > 1_780  # 1,797 images, a handful of exact duplicates in scikit-learn's set


def test_training_a_denoiser_brings_the_denoised_error_below_the_noisy_one():
    data = load_digits_28((400, 50, 100))
    torch.manual_seed(0)
    model = vd.DenoisingAutoencoder(33)
    history = vae.train_autoencoder(model, data.train[0], 8, lr=3e-3, batch_size=64, add_noise=vd.add_noise,
                                    kind="gaussian")
    assert history.epoch_loss[-1] < history.epoch_loss[0]
    table = vae.noise_table({"gaussian": model}, vd.add_noise, data.test[0])
    assert table["gaussian"]["denoised"] < table["gaussian"]["noisy"] / 3


def test_vae_training_lowers_the_negative_elbo_and_figures_draw(tmp_path):
    data = load_digits_28((300, 20, 60))
    torch.manual_seed(0)
    model = vd.VAE(2)
    before = vae.negative_elbo(model, data.test[0])
    vae.train_vae(model, vd.vae_loss, data.train[0], 4, lr=3e-3, batch_size=64)
    assert vae.negative_elbo(model, data.test[0]) < before
    mu = vae.latent_means(model, data.test[0])
    assert mu.shape == (60, 2)
    vae.plot_latent_scatter(mu, data.test[1], save_path=tmp_path / "scatter.png")
    path = vae.interpolate(model, data.test[0][0], data.test[0][1], steps=5)
    assert path.shape == (5, 1, 28, 28)
    vae.plot_maps({"pca": vae.project_2d(mu, "pca"), "tsne": vae.project_2d(mu, "tsne")}, data.test[1],
                  save_path=tmp_path / "maps.png")
    noisy = {k: vd.add_noise(data.test[0][:4], k) for k in vd.NOISE_KINDS}
    vae.show_denoising(data.test[0][:4], noisy, noisy, n=4, save_path=tmp_path / "rows.png")
    assert all((tmp_path / f).stat().st_size > 1000 for f in ("scatter.png", "maps.png", "rows.png"))


def test_comparison_transfer_and_optuna_run_on_tiny_data(capsys):
    data = load_digits_28((120, 40, 40))
    shapes = vae_compare.colour_images("grading")
    results = vae_compare.compare_vaes(vd.vae_loss, {"digits": (data.train[0][:64], data.test[0]),
                                                     "colour": shapes}, 1, 1e-3, 32, width=0.25)
    assert set(results) == {(d, v) for d in ("digits", "colour") for v in vae_compare.VARIANTS}
    assert all(r["model"].decode(torch.zeros(1, r["model"].mu.out_features)).shape[1] in (1, 3)
               for r in results.values())
    vae_compare.print_comparison(results)
    train_acc, test_acc = vae_compare.transfer_accuracy(lambda x: x.flatten(1), data.train, data.test, 3)
    assert 0 <= test_acc <= 100 and train_acc > 50  # raw pixels of real digits: well above chance
    study = vae_compare.optuna_search(vd.DenoisingAutoencoder, data.train[0][:64], data.val[0], trials=3, epochs=1)
    vae_compare.print_study(study)
    out = capsys.readouterr().out
    assert "3 trials" in out and "best:" in out and "removed" in out
