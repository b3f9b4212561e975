"""Problem set "contrastive_shapes": grader inputs, units, hidden-test entry points.

The third problem set of the unit, after *Exploring Representation Learning with Simple Images of Shapes*
(Lewis, Raghuraj and Lin; the contrastive-learning chapter of Torralba, Isola and Freeman's *Foundations of
Computer Vision*): the invariances you train for decide what an embedding keeps. Random crops keep a shape's
colour and lose its outline, so crop-trained embeddings cluster by colour; recolouring keeps the outline and
changes the colour, so recolour-trained embeddings cluster by shape. Points: ConvAutoencoder 1, make_views 1,
triplet_loss 1, nearest_neighbours 1, written report 1 (manual).

The probes that run inside the student's kernel are in ``course_utils/probes/contrastive_shapes.py``; the
reference implementation, the check names and the judges, which decide a grade in the grader's process, are in
``autograder/judges/contrastive_shapes.py`` and imported here, so that this module is the problem set's one
front: ``PROBLEM_SET``, the entry points, ``SAMPLE_MUTATIONS`` and the reference.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from course_utils.contrastive import SHAPES_OPTIONS
from course_utils.data.shapes import generate_shapes
from course_utils.probes import contrastive_shapes as probes
from course_utils.probes.common import weight_groups

from .core import ManualUnit, ProblemSet, Unit, begin_test_cell, hidden_tests  # noqa: F401
from .judges.common import generator
from .judges.contrastive_shapes import (  # noqa: F401 - the reference, imported from here by tests and tools
    CROP_SCALE, EMBED_DIM, MARGIN, TOL, ConvAutoencoder, ConvAutoencoderChecks, TripletLossChecks,
    judge_conv_autoencoder, judge_triplet_loss, make_views, nearest_neighbours, parameter_count, stage_channels,
    triplet_loss)
from .judges.contrastive_shapes_make_views import MakeViewsChecks, judge_make_views  # noqa: F401
from .judges.contrastive_shapes_nearest_neighbours import (  # noqa: F401
    NearestNeighboursChecks, cosine_topk, dot_topk, judge_nearest_neighbours, l2_topk)

PSET_ID = "contrastive_shapes"


# ---- grader inputs ------------------------------------------------------------------------------

def random_weights(image_size: int, seed: int) -> list:
    """Grader-chosen weights for the student's layers: a freshly initialised reference (PyTorch's default init,
    drawn from ``seed``), one list [weight, bias] per layer."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed) + 7919)
        return [[p.detach().clone() for p in group] for group in weight_groups(ConvAutoencoder(image_size))]


AE_SIZES = (64, 32)


def inputs_conv_autoencoder(seed: int) -> dict:
    g = generator(seed)
    return {"seed": seed, "sizes": list(AE_SIZES),
            "x": [torch.rand(2, 3, s, s, generator=g) for s in AE_SIZES],  # (2, 3, S, S) each
            "weights": [random_weights(s, seed + i) for i, s in enumerate(AE_SIZES)]}


VIEW_SIZE = 32  # side of the grader's images
VIEW_BATCH = 64


def inputs_make_views(seed: int) -> dict:
    g = generator(seed)
    shapes = generate_shapes(48, image_size=VIEW_SIZE, seed=int(seed) % 100_000, cache=False, **SHAPES_OPTIONS)
    return {
        "seed": seed,
        "ramps": probes.ramp_images(VIEW_BATCH, VIEW_SIZE),  # (64, 3, 32, 32)
        "shapes": shapes.images.float() / 255,  # (48, 3, 32, 32)
        "noise": torch.rand(8, 3, 16, 16, generator=g),  # every pixel a different colour
        "loop_small": torch.rand(4, 3, 16, 16, generator=g),
        "loop_large": torch.rand(32, 3, 16, 16, generator=g),
    }


def inputs_triplet_loss(seed: int) -> dict:
    g = generator(seed)

    def unit(*shape):
        return F.normalize(torch.randn(*shape, generator=g), dim=-1)

    # Unit rows as in training, some triplets inside the margin and some beyond it: the hinge matters.
    for _ in range(100):
        a = unit(8, 6)
        p, n = F.normalize(a + 0.6 * unit(8, 6), dim=-1), F.normalize(a + 0.9 * unit(8, 6), dim=-1)
        terms = (a - p).norm(dim=1) - (a - n).norm(dim=1) + MARGIN
        if (terms > 0.05).sum() >= 3 and (terms < -0.05).sum() >= 2:
            break
    mixed = [a, p, n]
    # Rows of varied lengths: the distances, not only the directions, matter.
    scales = [0.3 + 2 * torch.rand(5, 1, generator=g) for _ in range(3)]
    varied = [s * torch.randn(5, 7, generator=g) for s in scales]
    # Every triplet satisfied: the loss is exactly 0.
    a = unit(4, 5)
    easy = [a, F.normalize(a + 0.05 * unit(4, 5), dim=-1), -a]
    cases = [mixed, varied, easy, [t[:3] for t in mixed]]
    # Margins above 0 only: torch.nn.TripletMarginLoss, a correct way to write it, refuses margin=0.
    return {"seed": seed, "cases": cases, "margins": [0.7, 1.3], "margin_cases": [mixed, varied],
            "grad_case": mixed}


NN_SIZE, NN_DIM = 24, 6


def inputs_nearest_neighbours(seed: int) -> dict:
    g = generator(seed)
    unit = F.normalize(torch.randn(NN_SIZE, NN_DIM, generator=g), dim=-1)  # (24, 6)
    queries = torch.randperm(NN_SIZE, generator=g)[:3].tolist()
    # Rows rescaled: the nearest by cosine get lengths that reorder them by L2 distance and by dot product.
    for _ in range(200):
        norms = torch.exp(torch.empty(NN_SIZE, 1).uniform_(-2.3, 2.3, generator=g))  # (24, 1) in [0.1, 10]
        scaled = unit * norms
        if all(cosine_topk(scaled, q, 5) != l2_topk(scaled, q, 5) and cosine_topk(scaled, q, 5) !=
               dot_topk(scaled, q, 5) for q in queries):
            break
    # Exact duplicates of two queries, one at a smaller and one at a larger index: the best match of such a query
    # is its duplicate, which must be kept, while the query itself is left out.
    dups = unit.clone()
    low, high = sorted(set(range(NN_SIZE)) - set(queries))[0], sorted(set(range(NN_SIZE)) - set(queries))[-1]
    dups[low], dups[high] = unit[queries[0]], unit[queries[1]]
    cases = ([{"embeddings": "unit", "query": q, "k": None} for q in queries]
             + [{"embeddings": "unit", "query": queries[0], "k": 3}]
             + [{"embeddings": "scaled", "query": q, "k": None} for q in queries]
             + [{"embeddings": "dups", "query": queries[0], "k": None}, {"embeddings": "dups", "query": queries[1], "k": None}])
    return {"seed": seed, "embeddings": {"unit": unit, "scaled": scaled, "dups": dups}, "cases": cases,
            "duplicates": {str(queries[0]): low, str(queries[1]): high}}


PROBE_MODULE = "course_utils.probes.contrastive_shapes"

UNITS = [
    Unit(grade_id="test_conv_autoencoder", title="ConvAutoencoder", points=1.0, names=("ConvAutoencoder",),
         probe=f"{PROBE_MODULE}:probe_conv_autoencoder", judge=judge_conv_autoencoder,
         make_inputs=inputs_conv_autoencoder, check_names=ConvAutoencoderChecks.names),
    Unit(grade_id="test_make_views", title="make_views", points=1.0, names=("make_views",),
         probe=f"{PROBE_MODULE}:probe_make_views", judge=judge_make_views, make_inputs=inputs_make_views,
         check_names=MakeViewsChecks.names),
    Unit(grade_id="test_triplet_loss", title="triplet_loss", points=1.0, names=("triplet_loss",),
         probe=f"{PROBE_MODULE}:probe_triplet_loss", judge=judge_triplet_loss, make_inputs=inputs_triplet_loss,
         check_names=TripletLossChecks.names),
    Unit(grade_id="test_nearest_neighbours", title="nearest_neighbours", points=1.0, names=("nearest_neighbours",),
         probe=f"{PROBE_MODULE}:probe_nearest_neighbours", judge=judge_nearest_neighbours,
         make_inputs=inputs_nearest_neighbours, check_names=NearestNeighboursChecks.names),
]

PROBLEM_SET = ProblemSet(
    id=PSET_ID,
    notebook="contrastive_shapes.ipynb",
    units=UNITS,
    manual=[ManualUnit("report", "Report: which embedding clusters by colour, which by shape, and why", 1.0)],
    preload=("scipy", "sklearn"),  # the PCA / t-SNE maps
)


# ---- entry points of the source notebook's hidden test regions ----------------------------------------------
# test_<unit>(*unit.names) -> the unit's points as a float (core.score_unit), e.g. test_triplet_loss(triplet_loss).
test_conv_autoencoder, test_make_views, test_triplet_loss, test_nearest_neighbours = hidden_tests(PROBLEM_SET)

# Sample submissions of the main job: {student: (grade_id of the cell, text, replacement)}.
SAMPLE_MUTATIONS = {
    # Squared distances in the triplet loss: a scalar, differentiable, uses its margin, but not the loss stated.
    "squared_distances": ("triplet_loss", "d_positive - d_negative + margin",
                          "d_positive ** 2 - d_negative ** 2 + margin"),
}
