"""Problem set "autoencoder_probing": grader inputs, units, hidden-test entry points.

Part 1 of the representation-learning problem set (a convolutional autoencoder on STL-10, then
linear probes on a frozen pretrained encoder, an encoder trained with the classifier, and a frozen
random encoder). Points as in the original: Encoder 1, Decoder 1, train_ae 1,
train_classifier + the three ``supervised`` settings 1, written report 1 (manual).

The probes that run inside the student's kernel are in ``course_utils/probes/autoencoder_probing.py``;
the reference implementation, the check names and the judges, which decide a grade in the grader's
process, are in ``autograder/judges/autoencoder_probing.py`` and imported here, so that this module is
the problem set's one front: ``PROBLEM_SET``, the entry points, ``SAMPLE_MUTATIONS`` and the reference.
"""
from __future__ import annotations

import torch

from course_utils.probes import autoencoder_probing as probes
from course_utils.probes.common import weight_groups

from .core import ManualUnit, ProblemSet, Unit, begin_test_cell, hidden_tests  # noqa: F401
from .judges.autoencoder_probing import (  # noqa: F401 - the reference, imported from here by tests and tools
    DECODER_PARAMS, ENCODER_PARAMS, SUPERVISED_EXPECTED, Decoder, DecoderChecks, Encoder, EncoderChecks,
    TrainAEChecks, TrainClassifierChecks, judge_decoder, judge_encoder, judge_train_ae, judge_train_classifier,
    train_ae, train_classifier)
from .judges.common import clone_params, generator, load_into

PSET_ID = "autoencoder_probing"


# ---- grader inputs ------------------------------------------------------------------------------

def random_weights(reference: type, seed: int) -> list:
    """Grader-chosen weights for the student's layers: a freshly initialised reference (PyTorch's default
    init, drawn from ``seed``), one list [weight, bias] per layer, in the reference's order."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed) + 7919)
        return [[p.detach().clone() for p in group] for group in weight_groups(reference())]


def _revealing_input(reference: type, weights: list, x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """``x`` scaled so that, with ``weights``, the reference's last layer (before its final activation) gives
    values below ``low`` somewhere and above ``high`` somewhere, but nowhere beyond +-12: on that input a
    missing or wrong final activation shows in the output's range (a Sigmoid's output stays strictly inside
    (0, 1) in float32), whatever random weights the grader drew."""
    ref = reference()
    load_into(ref, [t for group in weights for t in group])
    body = ref.net[:-1]
    best = x
    with torch.no_grad():
        for scale in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64):
            pre = body(x * scale)
            if pre.abs().max() >= 12:
                break
            best = x * scale
            if pre.min() < low and pre.max() > high:
                break
    return best


def inputs_encoder(seed: int) -> dict:
    x = torch.rand(2, 3, 64, 64, generator=generator(seed))  # (2, 3, 64, 64)
    weights = random_weights(Encoder, seed)
    return {"seed": seed, "x": [x, _revealing_input(Encoder, weights, x - 0.5, -0.05, 0.05)], "weights": weights}


def inputs_decoder(seed: int) -> dict:
    z = torch.rand(2, 24, 4, 4, generator=generator(seed))  # (2, 24, 4, 4)
    weights = random_weights(Decoder, seed)
    return {"seed": seed, "z": [z, _revealing_input(Decoder, weights, z, -1.0, 1.5)], "weights": weights}


def inputs_train_ae(seed: int) -> dict:
    g = generator(seed)
    torch.manual_seed(seed)
    rig = probes.rig_autoencoder()
    # Smooth images (a colour per image plus a gentle gradient): a tiny autoencoder learns them in a few steps.
    ramp = torch.linspace(0, 1, 16).view(1, 1, 1, 16)  # (1, 1, 1, 16)
    batches = [(0.15 + 0.7 * torch.rand(8, 3, 1, 1, generator=g) * (0.6 + 0.4 * ramp)).expand(8, 3, 16, 16).contiguous()
               for _ in range(2)]  # (8, 3, 16, 16) each
    return {"seed": seed, "epochs": 30, "init": clone_params(rig), "batches": batches}


def inputs_train_classifier(seed: int) -> dict:
    g = generator(seed)
    torch.manual_seed(seed)
    enc, clf = probes.rig_encoder(), probes.rig_classifier()
    images = [torch.rand(12, 3, 8, 8, generator=g) for _ in range(2)]
    # Labels that a linear probe on the rig's features can partly learn: they depend on the images.
    labels = [(x.mean(dim=(2, 3)).argmax(dim=1)) for x in images]  # (12,), classes 0..2
    return {"seed": seed, "epochs": 5, "encoder": clone_params(enc), "classifier": clone_params(clf),
            "images": images, "labels": labels}


PROBE_MODULE = "course_utils.probes.autoencoder_probing"

UNITS = [
    Unit(grade_id="test_encoder", title="Encoder", points=1.0, names=("Encoder",),
         probe=f"{PROBE_MODULE}:probe_encoder", judge=judge_encoder, make_inputs=inputs_encoder,
         check_names=EncoderChecks.names),
    Unit(grade_id="test_decoder", title="Decoder", points=1.0, names=("Decoder",),
         probe=f"{PROBE_MODULE}:probe_decoder", judge=judge_decoder, make_inputs=inputs_decoder,
         check_names=DecoderChecks.names),
    Unit(grade_id="test_train_ae", title="train_ae", points=1.0, names=("train_ae",),
         probe=f"{PROBE_MODULE}:probe_train_ae", judge=judge_train_ae, make_inputs=inputs_train_ae,
         check_names=TrainAEChecks.names),
    Unit(grade_id="test_train_classifier", title="train_classifier", points=1.0,
         names=("train_classifier", "SUPERVISED"), probe=f"{PROBE_MODULE}:probe_train_classifier",
         judge=judge_train_classifier, make_inputs=inputs_train_classifier,
         check_names=TrainClassifierChecks.names),
]

PROBLEM_SET = ProblemSet(
    id=PSET_ID,
    notebook="autoencoder_probing.ipynb",
    units=UNITS,
    manual=[ManualUnit("report", "Report of the three probe accuracies", 1.0)],
)


# ---- entry points of the source notebook's hidden test regions ----------------------------------
# test_<unit>(*unit.names) -> the unit's points as a float (core.score_unit), e.g. test_decoder(Decoder).

test_encoder, test_decoder, test_train_ae, test_train_classifier = hidden_tests(PROBLEM_SET)


# Sample submissions of the main job: {student: (grade_id of the cell, text, replacement)}.
SAMPLE_MUTATIONS = {
    # A decoder that ends with ReLU instead of Sigmoid: right shape and size, wrong output range.
    "wrong_decoder": ("decoder", "nn.ConvTranspose2d(12, 3, 4, stride=2, padding=1), nn.Sigmoid()",
                      "nn.ConvTranspose2d(12, 3, 4, stride=2, padding=1), nn.ReLU()"),
}
