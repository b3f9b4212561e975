"""Problem set "contrastive_shapes": the reference passes its own hidden tests for several seeds, correct
solutions in other styles pass too, each classic mistake fails the check that names it, the visible checks
accept the reference and teach on mistakes, the probes and visible checks hold no solution, and the library
pieces (shapes options, hue colours, purity, 2-D maps, figures) do what they say."""
import inspect
import math

import matplotlib
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from autograder import contrastive_shapes as cs
from autograder.core import DEFAULT_SEED, judge_safely, run_unit
from course_utils import contrastive
from course_utils.checks import contrastive_shapes as checks
from course_utils.contrastive import hue_colours
from course_utils.probes import contrastive_shapes as probes
from units import failed_checks as _failed, points as _points

matplotlib.use("Agg")

SEEDS = (0, 1, 2, DEFAULT_SEED)
REFERENCE = {"ConvAutoencoder": cs.ConvAutoencoder, "make_views": cs.make_views, "triplet_loss": cs.triplet_loss,
             "nearest_neighbours": cs.nearest_neighbours}


def _run(grade_id, fn, seed=0):
    unit = cs.PROBLEM_SET.unit(grade_id)
    return {r.name: r for r in run_unit(unit, {unit.names[0]: fn}, seed=seed)}


# ---- the problem set's shape ------------------------------------------------------------------------------

def test_problem_set_points_and_checks():
    ps = cs.PROBLEM_SET
    assert ps.id == "contrastive_shapes" and ps.notebook == "contrastive_shapes.ipynb"
    assert [(u.grade_id, u.title, u.points) for u in ps.units] == [
        ("test_conv_autoencoder", "ConvAutoencoder", 1), ("test_make_views", "make_views", 1),
        ("test_triplet_loss", "triplet_loss", 1), ("test_nearest_neighbours", "nearest_neighbours", 1)]
    assert [(m.grade_id, m.points) for m in ps.manual] == [("report", 1)] and ps.total_points == 5
    for unit in ps.units:
        results = run_unit(unit, {unit.names[0]: REFERENCE[unit.names[0]]}, seed=0)
        assert [r.name for r in results] == list(unit.all_checks)
        assert sum(r.max_points for r in results) == pytest.approx(unit.points)
        assert results[-1].max_points == pytest.approx(unit.points / 2)
        assert sum(c.max_points for c in unit.failed("x")) == pytest.approx(unit.points)


@pytest.mark.parametrize("seed", SEEDS)
def test_reference_passes_its_own_hidden_tests(seed):
    for unit in cs.PROBLEM_SET.units:
        results = run_unit(unit, {unit.names[0]: REFERENCE[unit.names[0]]}, seed=seed)
        assert all(r.passed for r in results), [(r.name, r.message) for r in results if not r.passed]


def test_hidden_inputs_differ_by_seed_and_repeat_for_the_same_seed():
    a, b, c = cs.inputs_nearest_neighbours(1), cs.inputs_nearest_neighbours(1), cs.inputs_nearest_neighbours(2)
    assert torch.equal(a["embeddings"]["scaled"], b["embeddings"]["scaled"])
    assert not torch.equal(a["embeddings"]["scaled"], c["embeddings"]["scaled"])
    assert not torch.equal(cs.inputs_make_views(1)["shapes"], cs.inputs_make_views(2)["shapes"])


def test_judges_survive_malformed_observations():
    for unit in cs.PROBLEM_SET.units:
        for obs in ({}, {"sizes": 3, "results": "x", "default": [1], "ramps": [None]}, None, {"error": "boom"}):
            results = judge_safely(unit, obs, unit.make_inputs(0))
            assert results and not any(r.passed for r in results)
            assert sum(r.max_points for r in results) == pytest.approx(unit.points)


# ---- ConvAutoencoder ------------------------------------------------------------------------------------

class DecoderFirst(nn.Module):
    """Correct, in another style: layers in ModuleLists, the decoder's declared before the encoder's."""

    def __init__(self, image_size=64):
        super().__init__()
        n = int(math.log2(image_size // 4))
        ch = [3] + [8 * 2 ** i for i in range(n)]
        self.dec_fc = nn.Linear(128, ch[-1] * 16)
        self.ups = nn.ModuleList(nn.ConvTranspose2d(a, b, 4, 2, 1) for a, b in zip(ch[::-1][:-1], ch[::-1][1:]))
        self.downs = nn.ModuleList(nn.Conv2d(a, b, 4, 2, 1) for a, b in zip(ch[:-1], ch[1:]))
        self.enc_fc = nn.Linear(ch[-1] * 16, 128)
        self.channels = ch[-1]

    def encode(self, x):
        for conv in self.downs:
            x = F.relu(conv(x))
        return self.enc_fc(x.flatten(1))

    def forward(self, x):
        z = F.relu(self.dec_fc(self.encode(x))).view(-1, self.channels, 4, 4)
        for i, up in enumerate(self.ups):
            z = torch.sigmoid(up(z)) if i == len(self.ups) - 1 else F.relu(up(z))
        return z


class ReluEmbedding(cs.ConvAutoencoder):
    def encode(self, x):
        return F.relu(super().encode(x))


class NoSigmoid(cs.ConvAutoencoder):
    def __init__(self, image_size=64):
        super().__init__(image_size)
        self.decoder[-1] = nn.Identity()


class Only64(cs.ConvAutoencoder):
    def __init__(self, image_size=64):
        super().__init__(64)


def test_conv_autoencoder_in_another_style_gets_full_marks():
    assert _failed(_run("test_conv_autoencoder", DecoderFirst)) == []


@pytest.mark.parametrize("model, failed, words", [
    (ReluEmbedding, [cs.ConvAutoencoderChecks.ENCODE, cs.ConvAutoencoderChecks.FORWARD],
     "activation after the last Linear"),
    (NoSigmoid, [cs.ConvAutoencoderChecks.RANGE, cs.ConvAutoencoderChecks.FORWARD], "Sigmoid"),
    (Only64, list(cs.ConvAutoencoderChecks.names), "image_size=32"),
])
def test_conv_autoencoder_mistakes_fail_the_check_that_names_them(model, failed, words):
    results = _run("test_conv_autoencoder", model)
    assert _failed(results) == sorted(failed)
    assert any(words in results[name].message for name in failed)
    assert _points(results) <= 0.5


# ---- make_views ---------------------------------------------------------------------------------------------

def views_nearest(images, kind):
    """Correct: integer pixel indices (nearest-neighbour resize), gathered per image."""
    b, c, s, _ = images.shape
    if kind == "crop":
        side = (0.3 + 0.7 * torch.rand(b)) * s
        left, top = torch.rand(b) * (s - side), torch.rand(b) * (s - side)
        u = (torch.arange(s) + 0.5) / s
        cols = (left[:, None] + u * side[:, None]).long().clamp(0, s - 1)
        rows = (top[:, None] + u * side[:, None]).long().clamp(0, s - 1)
        out = images.gather(2, rows[:, None, :, None].expand(b, c, s, s))
        return out.gather(3, cols[:, None, None, :].expand(b, c, s, s))
    return images.max(dim=1, keepdim=True).values * hue_colours(torch.rand(b))[:, :, None, None]


def views_roi_align(images, kind):
    """Correct: torchvision's roi_align takes one box per image."""
    b, _, s, _ = images.shape
    if kind == "crop":
        side = (0.3 + 0.7 * torch.rand(b)) * s
        x0, y0 = torch.rand(b) * (s - side), torch.rand(b) * (s - side)
        boxes = torch.stack([torch.arange(b).float(), x0, y0, x0 + side, y0 + side], dim=1)
        return torchvision.ops.roi_align(images, boxes, output_size=s, aligned=True)
    return cs.make_views(images, kind)


def views_loop(images, kind):
    return torch.stack([cs.make_views(x[None], kind)[0] for x in images])


def views_mean_brightness(images, kind):
    if kind == "crop":
        return cs.make_views(images, kind)
    return images.mean(dim=1, keepdim=True) * hue_colours(torch.rand(len(images)))[:, :, None, None]


def views_random_rgb(images, kind):
    if kind == "crop":
        return cs.make_views(images, kind)
    return images.amax(dim=1, keepdim=True) * torch.rand(len(images), 3)[:, :, None, None]


def views_one_crop_for_the_batch(images, kind):
    if kind != "crop":
        return cs.make_views(images, kind)
    s, t = 0.3 + 0.7 * torch.rand(()), 2 * torch.rand(2) - 1
    theta = torch.tensor([[s, 0, (1 - s) * t[0]], [0, s, (1 - s) * t[1]]]).expand(len(images), 2, 3)
    return F.grid_sample(images, F.affine_grid(theta, list(images.shape), align_corners=False), align_corners=False)


def views_rectangles(images, kind):
    if kind != "crop":
        return cs.make_views(images, kind)
    b = len(images)
    s = 0.3 + 0.7 * torch.rand(b, 2)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = s[:, 0], s[:, 1]
    theta[:, :, 2] = (1 - s) * (2 * torch.rand(b, 2) - 1)
    return F.grid_sample(images, F.affine_grid(theta, list(images.shape), align_corners=False), align_corners=False)


def views_anywhere(images, kind):
    if kind != "crop":
        return cs.make_views(images, kind)
    b = len(images)
    s = 0.3 + 0.7 * torch.rand(b)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = s
    theta[:, :, 2] = 2 * torch.rand(b, 2) - 1  # the centre anywhere: crops stick out of the image
    return F.grid_sample(images, F.affine_grid(theta, list(images.shape), align_corners=False), align_corners=False)


def views_flipped(images, kind):
    view = cs.make_views(images, kind)
    return view if kind != "crop" else torch.where(torch.rand(len(images))[:, None, None, None] < 0.5, view.flip(3), view)


def views_in_place(images, kind):
    if kind == "crop":
        return cs.make_views(images, kind)
    images.copy_(cs.make_views(images, kind))
    return images


def views_channel_shuffle(images, kind):
    return cs.make_views(images, kind) if kind == "crop" else images[:, torch.randperm(3)]


@pytest.mark.parametrize("fn", [views_nearest, views_roi_align])
def test_make_views_in_other_styles_gets_full_marks(fn):
    for seed in (0, 3):
        assert _failed(_run("test_make_views", fn, seed)) == []


MV = {"batch": cs.MakeViewsChecks.BATCH, "square": cs.MakeViewsChecks.SQUARE, "drawn": cs.MakeViewsChecks.DRAWN,
      "recolor": cs.MakeViewsChecks.RECOLOR, "hue": cs.MakeViewsChecks.HUE, "loop": cs.MakeViewsChecks.LOOP}


@pytest.mark.parametrize("fn, failed, words", [
    (views_loop, ["loop"], "torch calls for 4 images"),
    (views_mean_brightness, ["recolor", "hue"], "mean of the three channels"),
    (views_random_rgb, ["recolor", "hue"], "not a hue at full saturation"),
    (views_one_crop_for_the_batch, ["drawn"], "crop sides only from"),
    (views_rectangles, ["square", "drawn"], "not square"),
    (views_anywhere, ["square", "drawn"], "reach outside the image"),
    (views_flipped, ["square", "drawn"], "flipped"),
    (views_in_place, ["batch"], "changed the images it was given"),
    (views_channel_shuffle, ["recolor", "hue"], "not brightness x one colour"),
])
def test_make_views_mistakes_fail_the_check_that_names_them(fn, failed, words):
    results = _run("test_make_views", fn)
    names = [MV[k] for k in failed]
    assert _failed(results) == sorted(names)
    assert words in results[names[0]].message, results[names[0]].message
    assert _points(results) <= 0.5


# ---- triplet_loss ------------------------------------------------------------------------------------------

CORRECT_LOSSES = {
    "F.triplet_margin_loss": lambda a, p, n, margin=0.3: F.triplet_margin_loss(a, p, n, margin=margin),
    "nn.TripletMarginLoss": lambda a, p, n, margin=0.3: nn.TripletMarginLoss(margin=margin)(a, p, n),
    "pairwise_distance + clamp": lambda a, p, n, margin=0.3: torch.clamp(
        F.pairwise_distance(a, p) - F.pairwise_distance(a, n) + margin, min=0).mean(),
    "sqrt of sums": lambda a, p, n, margin=0.3: torch.maximum(
        ((a - p) ** 2).sum(-1).sqrt() - ((a - n) ** 2).sum(-1).sqrt() + margin, torch.zeros(())).mean(),
}


@pytest.mark.parametrize("name", CORRECT_LOSSES)
def test_triplet_loss_in_other_styles_gets_full_marks(name):
    for seed in (0, 3):
        assert _failed(_run("test_triplet_loss", CORRECT_LOSSES[name], seed)) == []


TL = {"scalar": cs.TripletLossChecks.SCALAR, "value": cs.TripletLossChecks.VALUE,
      "margin": cs.TripletLossChecks.MARGIN_ARGUMENT, "grad": cs.TripletLossChecks.GRADIENTS}


@pytest.mark.parametrize("fn, failed, words", [
    (lambda a, p, n, margin=0.3: F.relu(((a - p) ** 2).sum(1) - ((a - n) ** 2).sum(1) + margin).mean(),
     ["value", "margin"], "squared distances"),
    (lambda a, p, n, margin=0.3: ((a - p).norm(dim=1) - (a - n).norm(dim=1) + margin).mean(), ["value"], "clamp"),
    (lambda a, p, n, margin=0.3: F.relu((a - p).norm(dim=1) - (a - n).norm(dim=1) + margin).sum(),
     ["value", "margin"], "sum over the batch"),
    (lambda a, p, n, margin=0.3: F.relu((a - n).norm(dim=1) - (a - p).norm(dim=1) + margin).mean(),
     ["value", "margin"], "swapped"),
    (lambda a, p, n, margin=0.3: F.relu((a - p).norm(dim=1) - (a - n).norm(dim=1) - margin).mean(),
     ["value", "margin", "grad"], "subtract the margin"),
    (lambda a, p, n, margin=0.3: F.relu((a - p).norm(dim=1) - (a - n).norm(dim=1) + 0.3).mean(), ["margin"],
     "ignore the margin argument"),
    (lambda a, p, n, margin=0.3: torch.tensor(cs.triplet_loss(a, p, n, margin).item()), ["grad"], "no gradient"),
    (lambda a, p, n, margin=0.3: cs.triplet_loss(*(F.normalize(t, dim=1) for t in (a, p, n)), margin),
     ["value", "margin"], "normalise the embeddings inside the loss"),
    (lambda a, p, n, margin=0.3: F.relu((1 - F.cosine_similarity(a, p)) - (1 - F.cosine_similarity(a, n)) + margin).mean(),
     ["value", "margin"], "cosine distance"),
    (lambda a, p, n, margin=0.3: F.relu((a - p).norm(dim=1) - (a - n).norm(dim=1) + margin),
     ["scalar", "value", "margin"], "not one number"),
])
def test_triplet_loss_mistakes_fail_the_check_that_names_them(fn, failed, words):
    results = _run("test_triplet_loss", fn)
    names = [TL[k] for k in failed]
    failed_now = _failed(results)
    assert set(names) <= set(failed_now) and len(failed_now) <= len(names) + 1, failed_now
    assert any(words in results[n].message for n in names), [results[n].message for n in names]
    assert _points(results) <= 0.5


# ---- nearest_neighbours -------------------------------------------------------------------------------------

def nn_argsort(e, q, k=5):
    s = F.cosine_similarity(e, e[q:q + 1], dim=1)
    s[q] = -2
    return torch.argsort(s, descending=True)[:k]


def nn_l2_of_unit_rows(e, q, k=5):
    u = e / e.norm(dim=1, keepdim=True)
    d = ((u - u[q]) ** 2).sum(1)
    d[q] = float("inf")
    return torch.topk(d, k, largest=False).indices


def nn_masked_matrix_list(e, q, k=5):
    u = F.normalize(e, dim=1)
    s = u @ u.T
    s.fill_diagonal_(-1e9)
    return s[q].topk(k).indices.tolist()


@pytest.mark.parametrize("fn", [nn_argsort, nn_l2_of_unit_rows, nn_masked_matrix_list])
def test_nearest_neighbours_in_other_styles_gets_full_marks(fn):
    for seed in (0, 3):
        assert _failed(_run("test_nearest_neighbours", fn, seed)) == []


NN = {"k": cs.NearestNeighboursChecks.K, "query": cs.NearestNeighboursChecks.QUERY,
      "first": cs.NearestNeighboursChecks.FIRST, "cosine": cs.NearestNeighboursChecks.COSINE}


def _cos(e, q):
    u = F.normalize(e, dim=1)
    return u @ u[q]


def _excluding(s, q):
    s = s.clone()
    s[q] = float("-inf")
    return s


@pytest.mark.parametrize("fn, failed, words", [
    (lambda e, q, k=5: _cos(e, q).topk(k + 1).indices[1:], ["query"], "exact copy"),
    (lambda e, q, k=5: _cos(e, q).topk(k).indices, ["query", "first", "cosine"], "the query itself"),
    (lambda e, q, k=5: _excluding(-(e - e[q]).norm(dim=1), q).topk(k).indices, ["cosine"], "L2 distance on the raw"),
    (lambda e, q, k=5: _excluding(e @ e[q], q).topk(k).indices, ["cosine"], "raw dot products"),
    (lambda e, q, k=5: _excluding(-_cos(e, q), q).topk(k).indices, ["query", "first", "cosine"], "farthest"),
    (lambda e, q, k=5: _excluding(_cos(e, q), q).topk(k), ["k", "query", "first", "cosine"], "(values, indices)"),
    (lambda e, q, k=5: _excluding(_cos(e, q), q).topk(k + 1).indices, ["k", "query", "first", "cosine"], "k=5"),
])
def test_nearest_neighbours_mistakes_fail_the_check_that_names_them(fn, failed, words):
    results = _run("test_nearest_neighbours", fn)
    names = [NN[k] for k in failed]
    assert _failed(results) == sorted(names)
    assert any(words in results[n].message for n in names), [results[n].message for n in names]
    assert _points(results) <= 0.5


# ---- visible checks ----------------------------------------------------------------------------------------

def test_visible_checks_accept_the_reference(capsys):
    checks.check_conv_autoencoder(cs.ConvAutoencoder)
    checks.check_make_views(cs.make_views)
    checks.check_triplet_loss(cs.triplet_loss)
    checks.check_nearest_neighbours(cs.nearest_neighbours)
    assert capsys.readouterr().out.count("visible checks passed") == 4
    for fn in (views_nearest, views_roi_align):
        checks.check_make_views(fn)
    for fn in CORRECT_LOSSES.values():
        checks.check_triplet_loss(fn)
    for fn in (nn_argsort, nn_l2_of_unit_rows, nn_masked_matrix_list):
        checks.check_nearest_neighbours(fn)
    checks.check_conv_autoencoder(DecoderFirst)


@pytest.mark.parametrize("check, fn, words", [
    (checks.check_conv_autoencoder, ReluEmbedding, "activation after the last Linear"),
    (checks.check_conv_autoencoder, NoSigmoid, "Sigmoid"),
    (checks.check_make_views, views_loop, "no Python loop"),
    (checks.check_make_views, views_rectangles, "square crops"),
    (checks.check_make_views, views_random_rgb, "keep its brightness"),
    (checks.check_make_views, views_in_place, "unchanged"),
    (checks.check_triplet_loss, lambda a, p, n, margin=0.3: F.relu(((a - p) ** 2).sum(1) - ((a - n) ** 2).sum(1)
                                                                     + margin).mean(), "squared distances"),
    (checks.check_triplet_loss, lambda a, p, n, margin=0.3: F.relu((a - p).norm(dim=1) - (a - n).norm(dim=1)
                                                                     + margin).sum(), "sum over the batch"),
    (checks.check_nearest_neighbours, lambda e, q, k=5: _cos(e, q).topk(k + 1).indices[1:], "its exact copy must"),
    (checks.check_nearest_neighbours, lambda e, q, k=5: _excluding(e @ e[q], q).topk(k).indices, "raw dot products"),
])
def test_visible_checks_teach_on_mistakes(check, fn, words):
    with pytest.raises(checks.CheckFailed, match=words):
        check(fn)


def test_visible_checks_say_when_a_part_is_not_written_yet():
    class NotDone(nn.Module):
        def __init__(self, image_size=64):
            super().__init__()
            raise NotImplementedError("replace this line with your code")

    def not_done(*args, **kwargs):
        raise NotImplementedError("replace this line with your code")

    with pytest.raises(checks.CheckFailed, match="not implemented yet"):
        checks.check_conv_autoencoder(NotDone)
    for check in (checks.check_make_views, checks.check_triplet_loss, checks.check_nearest_neighbours):
        with pytest.raises(checks.CheckFailed, match="not implemented yet"):
            check(not_done)


def test_probes_and_visible_checks_hold_no_solution():
    for module in (probes, checks):
        src = inspect.getsource(module)
        for leak in ("affine_grid(", "grid_sample(", "roi_align(", "def make_views", "def triplet_loss",
                     "def nearest_neighbours", ".topk(", "argsort(", "relu(", "nn.Conv2d(", "nn.ConvTranspose2d(",
                     "hue_colours(torch.rand"):
            assert leak not in src, (module.__name__, leak)


# ---- the library ---------------------------------------------------------------------------------------------

def test_shapes_for_this_problem_set_plain_background_nine_colours():
    from course_utils.data.shapes import DEFAULT_OPTIONS, _cache_path

    data = contrastive.load_contrastive_shapes("grading")
    assert data.train.images.shape == (64, 3, 32, 32) and len(data.test) == 64
    assert int(data.train.colours.max()) <= 8 and len(data.colour_names) == 9 and "black" not in data.colour_names
    corners = torch.cat([data.train.images[:, :, :2, :2], data.train.images[:, :, -2:, -2:]]).float()
    assert corners.max() <= 0.02 * 255 + 1  # black, up to the pixel noise
    # The options added for this problem set leave every earlier call's cache file name (and images) as they were.
    opts = {k: float(v) for k, v in DEFAULT_OPTIONS.items()}
    old = {k: v for k, v in opts.items() if k not in ("background", "colours")}
    assert _cache_path(5, 16, 0, opts) == _cache_path(5, 16, 0, old)
    with pytest.raises(ValueError, match="colours"):
        from course_utils.data.shapes import generate_shapes
        generate_shapes(2, image_size=16, cache=False, colours=11)


def test_hue_colours_are_fully_saturated_and_go_round_the_wheel():
    hues = torch.tensor([0.0, 1 / 6, 1 / 3, 0.5, 2 / 3, 5 / 6, 0.999])
    rgb = hue_colours(hues)
    want = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 1, 1], [0, 0, 1], [1, 0, 1]], dtype=torch.float32)
    assert torch.allclose(rgb[:6], want, atol=1e-5)
    assert torch.allclose(rgb.amax(1), torch.ones(7)) and torch.allclose(rgb.amin(1), torch.zeros(7), atol=1e-5)


def test_purity_chance_and_neighbour_table():
    labels = torch.tensor([0, 0, 1, 1])
    emb = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    table = contrastive.neighbour_table(cs.nearest_neighbours, emb, k=1)
    assert table.tolist() == [[1], [0], [3], [2]]
    assert contrastive.purity(table, labels) == 100.0
    assert contrastive.purity(torch.tensor([[2], [3], [0], [1]]), labels) == 0.0
    assert contrastive.chance_purity(labels) == pytest.approx(50.0)


def test_training_moves_two_views_together():
    torch.manual_seed(0)
    model = cs.ConvAutoencoder(16)
    images = torch.rand(16, 3, 16, 16)
    loader = [(images, torch.zeros(16))] * 3
    history = contrastive.train_contrastive(
        model, loader, cs.make_views, "recolor", lambda a, p: cs.triplet_loss(a, p, p.roll(1, dims=0)), epochs=4)
    assert len(history.epoch_loss) == 4 and history.epoch_loss[-1] < history.epoch_loss[0]
    emb = contrastive.embed_images(model, (images * 255).to(torch.uint8))
    assert emb.shape == (16, 128)


def test_maps_and_figures_draw(tmp_path):
    torch.manual_seed(0)
    emb = torch.randn(40, 8)
    pca, tsne = contrastive.project_2d(emb, "pca"), contrastive.project_2d(emb, "tsne")
    assert pca.shape == tsne.shape == (40, 2)
    colours, shapes = torch.arange(40) % 9, torch.arange(40) % 10
    fig = contrastive.plot_embedding_maps({"PCA": pca, "t-SNE": tsne}, colours, shapes, save_path=tmp_path / "m.png")
    assert len(fig.axes) == 4 and (tmp_path / "m.png").exists()
    images = torch.rand(40, 3, 16, 16)
    fig = contrastive.show_neighbours(images, [0, 5], torch.tensor([[1, 2, 3], [4, 6, 7]]), shapes, colours)
    assert len(fig.axes) == 8
    fig = contrastive.plot_purity({"a": {"colour": 90, "shape": 20}, "b": {"colour": 11, "shape": 55}},
                                  {"colour": 11.1, "shape": 10})
    assert fig.axes[0].get_ylabel() == "5-NN purity (%)"
    with pytest.raises(ValueError, match="unknown method"):
        contrastive.project_2d(emb, "umap")


# ---- the release and the real grader -------------------------------------------------------------------------

def test_released_notebook_holds_no_solution_and_no_hidden_test():
    # This checkout's release (autograder.problem_sets.REPO_ROOT may point at a test's course copy meanwhile).
    release = (Path(__file__).resolve().parent.parent / "assignments" / "contrastive_shapes" / "contrastive_shapes.ipynb").read_text()
    for leak in ("BEGIN SOLUTION", "HIDDEN TESTS", "autograder.contrastive_shapes", "theta[:, 1, 1] = side",
                 "similarity[query_index] = float", "d_positive - d_negative + margin", "self.encoder = nn.Sequential"):
        assert leak not in release, leak


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade the three sample submissions once (fresh kernels, grading mode)."""
    from autograder.grader import grade_submission
    from autograder.release import make_sample_submissions

    samples = make_sample_submissions("contrastive_shapes", tmp_path_factory.mktemp("submitted"))
    assert set(samples) == {"solution", "untouched", "squared_distances"}
    return {student: grade_submission("contrastive_shapes", path, student) for student, path in samples.items()}


@pytest.mark.slow  # about 35 s on 2 cores (tests/test_roundtrip.py grades the same samples in the default run)
def test_sample_submissions_grade_as_expected(graded):
    solution, untouched, squared = graded["solution"], graded["untouched"], graded["squared_distances"]
    assert solution.score == solution.max_score == 4.0, [
        (c.name, c.message) for u in solution.units for c in u.checks if not c.passed]
    assert untouched.score == 0
    points = {u.title: u.points for u in squared.units if not u.manual}
    assert points == {"ConvAutoencoder": 1.0, "make_views": 1.0, "triplet_loss": pytest.approx(0.2),
                      "nearest_neighbours": 1.0}
    failed = {c.name: c.message for u in squared.units for c in u.checks if not c.passed}
    assert "squared distances" in failed[cs.TripletLossChecks.VALUE]
    for result in graded.values():
        assert result.status == "graded" and result.seconds < 60
