"""Problem set "simclr": grader inputs, units, hidden-test entry points.

The fifth problem set of the unit, after the report *Supervised training and self-supervised SimCLR on STL-10* (SAiDL
assignment 2: a 4-layer convolutional encoder of width 128 trained on STL-10's 5,000 labelled images, then pretrained
with SimCLR on its unlabelled ones and read by a linear probe), which follows the Keras example "Semi-supervised image
classification using contrastive pretraining with SimCLR". Points: augment 1, nt_xent_loss 1, SimCLR 1,
dunn_index 1, written report 1 (manual).

The probes that run inside the student's kernel are in ``course_utils/probes/simclr.py``; the reference, the check
names and the judges, which decide a grade in the grader's process, are in ``autograder/judges/simclr*.py`` and
imported here, so that this module is the problem set's one front: ``PROBLEM_SET``, the entry points,
``SAMPLE_MUTATIONS`` and the reference.
"""
from __future__ import annotations

import torch

from course_utils.probes.common import weight_groups

from .core import ManualUnit, ProblemSet, Unit, begin_test_cell, hidden_tests  # noqa: F401
from .judges.common import generator
from .judges.simclr import (  # noqa: F401 - the reference, imported from here by tests and tools
    SIZES, STRENGTHS, DunnChecks, NTXentChecks, SimCLR, SimCLRChecks, augment, dunn_definition, dunn_index,
    judge_dunn_index, judge_nt_xent_loss, judge_simclr, nt_xent_definition, nt_xent_loss, parameter_count)
from .judges.simclr_augment import COLOUR, AugmentChecks, judge_augment, ramps, sinusoids

PSET_ID = "simclr"


# ---- grader inputs ------------------------------------------------------------------------------

def inputs_augment(seed: int) -> dict:
    colour = torch.tensor(COLOUR).view(1, 3, 1, 1).expand(256, 3, 16, 16).clone()
    g = generator(seed)
    return {"seed": seed, "batches": {
        "grey": torch.full((256, 3, 16, 16), 0.5), "bright": torch.full((64, 3, 16, 16), 0.97), "colour": colour,
        "sinus": sinusoids(128), "hramp": ramps(128), "vramp": ramps(128, vertical=True)},
        "ops_small": torch.rand(4, 3, 32, 32, generator=g), "ops_large": torch.rand(64, 3, 32, 32, generator=g)}


def _pair(g, n: int, d: int) -> list:
    z1 = torch.randn(n, d, generator=g) * 2
    return [z1, z1 + 1.5 * torch.randn(n, d, generator=g)]  # positives closer than negatives, norms not 1


def inputs_nt_xent_loss(seed: int) -> dict:
    g = generator(seed)
    cases = [_pair(g, 8, 16), _pair(g, 5, 3), _pair(g, 8, 16), _pair(g, 6, 4), _pair(g, 1, 5), _pair(g, 7, 33)]
    return {"seed": seed, "cases": cases, "temperatures": [0.1, 0.2, 0.5, 1.0, 0.1, 0.3],
            "main": [0, 1], "other_temperatures": [2, 3], "other_shapes": [4, 5], "grad_case": 1,
            "ops_small": _pair(g, 4, 8), "ops_large": _pair(g, 64, 8)}


def random_weights(width: int, pdim: int, seed: int) -> dict:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed) + 7919)
        model = SimCLR(width, pdim)
        for p in model.parameters():  # biases away from 0, so that a missing or extra layer shows
            if p.ndim == 1:
                p.data.uniform_(-0.2, 0.2)
        # per part: the encoder's and the head's Linear(width, width) have the same shape, and the text allows
        # declaring the two parts in either order, so each part receives its own layers
        return {part: [[p.detach().clone() for p in group] for group in weight_groups(getattr(model, part))]
                for part in ("encoder", "projection_head")}


def inputs_simclr(seed: int) -> dict:
    g = generator(seed)
    return {"seed": seed, "sizes": [list(s) for s in SIZES],
            "weights": [random_weights(w, d, seed + i) for i, (w, d) in enumerate(SIZES)],
            "x64": [torch.rand(3, 3, 64, 64, generator=g) for _ in SIZES],
            "x96": [torch.rand(2, 3, 96, 96, generator=g) for _ in SIZES]}


def _clusters(g, n: int, k: int, d: int, labels=None) -> list:
    y = torch.arange(n) % k
    x = torch.randn(k, d, generator=g)[y] * 3 + torch.randn(n, d, generator=g)
    y = y[torch.randperm(n, generator=g)]
    return [x, y if labels is None else torch.tensor(labels)[y]]


def inputs_dunn_index(seed: int) -> dict:
    g = generator(seed)
    cases = [_clusters(g, 30, 3, 4), _clusters(g, 24, 4, 8), _clusters(g, 20, 2, 3), _clusters(g, 35, 7, 5),
             _clusters(g, 18, 3, 2, labels=[7, 2, 11])]
    return {"seed": seed, "cases": cases, "main": [0, 1], "other": [2, 3, 4],
            "ops_small": _clusters(g, 40, 3, 4), "ops_large": _clusters(g, 400, 3, 4)}


PROBE_MODULE = "course_utils.probes.simclr"

UNITS = [
    Unit(grade_id="test_augment", title="augment", points=1.0, names=("augment",),
         probe=f"{PROBE_MODULE}:probe_augment", judge=judge_augment, make_inputs=inputs_augment,
         check_names=AugmentChecks.names),
    Unit(grade_id="test_nt_xent_loss", title="nt_xent_loss", points=1.0, names=("nt_xent_loss",),
         probe=f"{PROBE_MODULE}:probe_nt_xent_loss", judge=judge_nt_xent_loss, make_inputs=inputs_nt_xent_loss,
         check_names=NTXentChecks.names),
    Unit(grade_id="test_simclr", title="SimCLR", points=1.0, names=("SimCLR",), probe=f"{PROBE_MODULE}:probe_simclr",
         judge=judge_simclr, make_inputs=inputs_simclr, check_names=SimCLRChecks.names),
    Unit(grade_id="test_dunn_index", title="dunn_index", points=1.0, names=("dunn_index",),
         probe=f"{PROBE_MODULE}:probe_dunn_index", judge=judge_dunn_index, make_inputs=inputs_dunn_index,
         check_names=DunnChecks.names),
]

PROBLEM_SET = ProblemSet(
    id=PSET_ID,
    notebook="simclr.ipynb",
    units=UNITS,
    manual=[ManualUnit("report", "Report: which wins with few labels, and what the metrics beyond accuracy add", 1.0)],
    preload=("sklearn",),
)


# ---- entry points of the source notebook's hidden test regions ----------------------------------------------
test_augment, test_nt_xent_loss, test_simclr, test_dunn_index = hidden_tests(PROBLEM_SET)

# Sample submissions of the main job: {student: (grade_id of the cell, text, replacement)}.
SAMPLE_MUTATIONS = {
    # The diagonal left in: a scalar, differentiable, vectorised loss that also counts each row's self-similarity.
    "self_similarity_kept": ("nt_xent_loss", "sim = sim.masked_fill(mask, float(\"-inf\"))", "sim = sim"),
}
