"""Problem set "simple_clip": grader inputs, units, hidden-test entry points.

Part 2 of the representation-learning problem set: a simplified CLIP (Radford et al., 2021; after
M. Moein Shariatnia's *Simple CLIP*) that learns a joint embedding of images and captions with the
symmetric InfoNCE loss (the seed's equations 1-3), a frozen text encoder and a trainable image
encoder. Points as in the original: ProjectionHead 1, CLIPModel 2, written report of the probe
accuracies 1 (manual), retrieve_images 1.

The probes that run inside the student's kernel are in ``course_utils/probes/simple_clip.py``;
the reference implementation, the check names and the judges, which decide a grade in the grader's
process, are in ``autograder/judges/simple_clip.py`` and imported here, so that this module is the
problem set's one front: ``PROBLEM_SET``, the entry points, ``SAMPLE_MUTATIONS`` and the reference.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from course_utils.probes import simple_clip as probes

from .core import ManualUnit, ProblemSet, Unit, begin_test_cell, hidden_tests  # noqa: F401
from .judges.common import clone_params, generator
from .judges.simple_clip import (  # noqa: F401 - the reference, imported from here by tests and tools
    EMBED_DIM, TEMPERATURE, TOL, CLIPModel, CLIPModelChecks, ProjectionHead, ProjectionHeadChecks,
    RetrieveImagesChecks, clip_loss, judge_clip_model, judge_projection_head, judge_retrieve_images,
    raw_dot_topk, reference_topk, retrieve_images)

PSET_ID = "simple_clip"


# ---- grader inputs ------------------------------------------------------------------------------

VOCAB = ["a", "dog", "dogs", "in", "the", "park", "on", "grass", "child", "with", "red", "ball", "running",
         "beach", "water", "man", "bike"]


def inputs_projection_head(seed: int) -> dict:
    return {"seed": seed, "embedding_dim": 12, "projection_dim": 16,
            "x": 3 * torch.randn(5, 12, generator=generator(seed))}  # (5, 12)


def inputs_clip_model(seed: int) -> dict:
    g = generator(seed)
    torch.manual_seed(seed)
    image_dim, text_dim, n = 6, 5, 4
    image_encoder, text_encoder = probes.RigImageEncoder(image_dim), probes.RigTextEncoder(VOCAB, text_dim)
    d = 8  # width of the embeddings handed to contrastive_loss
    # Pairs whose similarities form a symmetric matrix (text i = image i): only the temperature matters.
    close = F.normalize(torch.ones(6, d) + 0.6 * torch.randn(6, d, generator=g), dim=-1)  # (6, d), unit rows
    # The same directions, rescaled per row: a loss that normalises cannot tell the difference.
    a = 0.2 + 3.8 * torch.rand(6, 1, generator=g)
    b = 0.2 + 3.8 * torch.rand(6, 1, generator=g)
    # Unrelated unit-norm pairs: the similarity matrix is not symmetric, so the two directions differ.
    i_unit, t_unit = (F.normalize(torch.randn(5, d, generator=g), dim=-1) for _ in range(2))
    # Random embeddings of varied norms, two batch sizes: the general case.
    big = [(torch.randn(nn_, d, generator=g) * (0.5 + 2 * torch.rand(nn_, 1, generator=g)),
            torch.randn(nn_, d, generator=g) * (0.5 + 2 * torch.rand(nn_, 1, generator=g))) for nn_ in (7, 3)]
    pairs = [[close, close.clone()], [a * close, b * close], [i_unit, t_unit], [t_unit, i_unit],
             list(big[0]), list(big[1])]
    return {
        "seed": seed, "image_dim": image_dim, "text_dim": text_dim, "vocab": list(VOCAB), "embed_dim": 7,
        "image_encoder": clone_params(image_encoder), "text_encoder": clone_params(text_encoder),
        "images": torch.randn(n, 3, 8, 8, generator=g),  # (4, 3, 8, 8), already "normalised"
        "text_features": torch.randn(n, text_dim, generator=g),  # (4, 5)
        "token_ids": torch.randint(1, len(VOCAB) + 1, (n, 6), generator=g),  # (4, 6)
        "other_temperature": 0.5, "lr": 0.5, "loss_pairs": pairs,
    }


def inputs_retrieve_images(seed: int) -> dict:
    g = generator(seed)
    torch.manual_seed(seed)
    text_dim, embed_dim, n = 6, 8, 24
    model = probes.RigRetrievalModel(VOCAB, text_dim, embed_dim)
    order = torch.randperm(n, generator=g).tolist()  # file names in no particular order
    inputs = {
        "seed": seed, "vocab": list(VOCAB), "text_dim": text_dim, "embed_dim": embed_dim, "small_k": 4,
        "model": clone_params(model),
        "filenames": [f"{1000 + 37 * j}_{j % 5}.jpg" for j in order],
        "queries": ["dogs in the park", "a child with a red ball", "a man running on the beach"],
        "unit_embeddings": F.normalize(torch.randn(n, embed_dim, generator=g), dim=-1),  # (24, 8), unit rows
    }
    # Rescaled rows: the k best by cosine get small norms, so ranking by raw dot products differs.
    for _ in range(100):
        norms = torch.exp(torch.empty(n, 1).uniform_(-2.3, 2.3, generator=g))  # (24, 1) in [0.1, 10]
        scaled = inputs["unit_embeddings"] * norms
        raw = {"vocab": inputs["vocab"], "text_dim": text_dim, "embed_dim": embed_dim, "model": inputs["model"],
               "filenames": inputs["filenames"]}
        if all(reference_topk(raw, scaled, q, 9) != raw_dot_topk(raw, scaled, q, 9) for q in inputs["queries"]):
            break
    inputs["scaled_embeddings"] = scaled
    return inputs


PROBE_MODULE = "course_utils.probes.simple_clip"

UNITS = [
    Unit(grade_id="test_projection_head", title="ProjectionHead", points=1.0, names=("ProjectionHead",),
         probe=f"{PROBE_MODULE}:probe_projection_head", judge=judge_projection_head,
         make_inputs=inputs_projection_head, check_names=ProjectionHeadChecks.names),
    Unit(grade_id="test_clip_model", title="CLIPModel", points=2.0, names=("CLIPModel",),
         probe=f"{PROBE_MODULE}:probe_clip_model", judge=judge_clip_model, make_inputs=inputs_clip_model,
         check_names=CLIPModelChecks.names),
    Unit(grade_id="test_retrieve_images", title="retrieve_images", points=1.0, names=("retrieve_images",),
         probe=f"{PROBE_MODULE}:probe_retrieve_images", judge=judge_retrieve_images,
         make_inputs=inputs_retrieve_images, check_names=RetrieveImagesChecks.names),
]

PROBLEM_SET = ProblemSet(
    id=PSET_ID,
    notebook="simple_clip.ipynb",
    units=UNITS,
    manual=[ManualUnit("report", "Report of the linear-probe accuracies", 1.0)],
    preload=("scipy", "timm", "torchvision", "transformers"),  # what the graded notebook's kernel loads
)


# ---- entry points of the source notebook's hidden test regions ----------------------------------
# test_<unit>(*unit.names) -> the unit's points as a float (core.score_unit), e.g. test_clip_model(CLIPModel).

test_projection_head, test_clip_model, test_retrieve_images = hidden_tests(PROBLEM_SET)


# Sample submissions of the main job: {student: (grade_id of the cell, text, replacement)}.
SAMPLE_MUTATIONS = {
    # The classic slip in equation 1: logits multiplied by tau instead of divided. The embeddings,
    # the symmetry, the normalisation and the training step are still right: partial credit.
    "temperature_multiplied": ("clip_model", "@ text_embeddings.T / self.temperature",
                               "@ text_embeddings.T * self.temperature"),
}
