"""Reference implementation, check names and judges of "autoencoder_probing": everything that decides a
grade, in the grader's process, from the observations of ``course_utils/probes/autoencoder_probing.py``.
``autograder/autoencoder_probing.py`` (grader inputs, units, hidden-test entry points) imports this module;
nothing here imports that one."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from course_utils.probes import autoencoder_probing as probes

from ..core import CheckNames, check, fmt_shape
from .common import clone_params, layer_shapes, load_into, tensor_list

ENCODER_PARAMS = 42_156
DECODER_PARAMS = 42_135
SUPERVISED_EXPECTED = {"I": False, "II": True, "III": False}


# ---- reference implementations ----------------------------------------------------------------

def _four_layers(layer: type, channels: tuple, last: nn.Module) -> nn.Sequential:
    """Four ``layer(c_in, c_out, kernel_size=4, stride=2, padding=1)`` through ``channels`` (each halves, or
    doubles, the height and width), a ReLU after each but the last, which ``last`` follows."""
    layers = []
    for c_in, c_out in zip(channels, channels[1:]):
        layers += [layer(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]
    layers[-1] = last
    return nn.Sequential(*layers)


class _Stack(nn.Module):
    """A module that is its ``net``; ``net[:-1]`` is all but the final activation (the grader's inputs use it:
    ``_revealing_input`` in ``autograder/autoencoder_probing.py``)."""

    def __init__(self, net: nn.Sequential):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)


class Encoder(_Stack):
    """(B, 3, 64, 64) -> (B, 24, 4, 4): four Conv2d(k=4, s=2, p=1), ReLU after each.

    Channels 3 -> 12 -> 24 -> 48 -> 24, sides 64 -> 32 -> 16 -> 8 -> 4."""

    def __init__(self):
        super().__init__(_four_layers(nn.Conv2d, (3, 12, 24, 48, 24), nn.ReLU()))


class Decoder(_Stack):
    """(B, 24, 4, 4) -> (B, 3, 64, 64): four ConvTranspose2d(k=4, s=2, p=1), ReLU between, Sigmoid at the end.

    Channels 24 -> 48 -> 24 -> 12 -> 3, sides 4 -> 8 -> 16 -> 32 -> 64."""

    def __init__(self):
        super().__init__(_four_layers(nn.ConvTranspose2d, (24, 48, 24, 12, 3), nn.Sigmoid()))


def _train(optimizer, batch_loss, dataloader, epochs: int) -> list:
    """One ``optimizer`` step on ``batch_loss(images, labels)`` per batch; the mean loss of every epoch (what the
    notebook's ``fit(step, dataloader, epochs).epoch_loss`` gives)."""
    history = []
    for _ in range(epochs):
        total, count = 0.0, 0
        for images, labels in dataloader:
            loss = batch_loss(images, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, count = total + loss.item(), count + 1
        history.append(total / max(count, 1))
    return history


def train_ae(model, dataloader, epochs=200):
    """Reference: Adam(lr=1e-3), MSE reconstruction loss; returns the mean loss of every epoch."""
    device = next(model.parameters()).device
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()

    def batch_loss(images, _labels):
        images = images.to(device)
        return F.mse_loss(model(images), images)

    return _train(optimizer, batch_loss, dataloader, epochs)


def train_classifier(encoder, classifier, dataloader, epochs=100, supervised=False):
    """Reference: Adam(lr=1e-3, weight_decay=1e-4), cross-entropy; the encoder is optimised only when supervised."""
    device = next(classifier.parameters()).device
    params = list(classifier.parameters()) + (list(encoder.parameters()) if supervised else [])
    optimizer = torch.optim.Adam(params, lr=1e-3, weight_decay=1e-4)
    encoder.train(supervised)
    classifier.train()

    def batch_loss(images, labels):
        images, labels = images.to(device), labels.to(device)
        with torch.set_grad_enabled(supervised):
            features = encoder(images).flatten(1)  # (B, 384)
        return F.cross_entropy(classifier(features), labels)

    return _train(optimizer, batch_loss, dataloader, epochs)


# ---- judges -----------------------------------------------------------------------------------

def _judge_module(obs: dict, inputs: dict, *, name: str, checks: type, reference: type, input_key: str,
                  expected_params: int, out_shape: tuple, range_check) -> list:
    params = tensor_list(obs.get("params"), f"{name}'s parameters")
    outputs = tensor_list(obs.get("outputs"), f"{name}'s outputs")
    xs = inputs[input_key]
    x = xs[0]
    n_params = sum(p.numel() for p in params)
    ref = reference()
    ref_shapes = layer_shapes(list(ref.parameters()))
    results = []
    out = outputs[0] if outputs else torch.empty(0)
    results.append(check(
        checks.SHAPE, 0.25, tuple(out.shape) == out_shape,
        expected=f"output shape {fmt_shape(out_shape)} for input {fmt_shape(x.shape)}",
        obtained=fmt_shape(out.shape),
        hint="Every layer uses kernel_size=4, stride=2, padding=1; check the channel counts.",
    ))
    results.append(check(
        checks.PARAMS, 0.25, n_params == expected_params,
        expected=f"{expected_params:,} parameters", obtained=f"{n_params:,} (layers: {layer_shapes(params)})",
        hint=f"The reference layers have weight/bias shapes {ref_shapes}.",
    ))
    # The range over every input: the last one makes the final activation show (inputs' _revealing_input).
    results.append(range_check(torch.cat([o.flatten() for o in outputs]) if len(outputs) == len(xs) and all(
        tuple(o.shape) == tuple(out.shape) for o in outputs) else out))
    # The probe loaded the grader's random weights into the student's layers (matched by shape) before
    # computing the output; the reference, with the same weights, must give the same output.
    if obs.get("loaded") is True and load_into(ref, [t for group in inputs["weights"] for t in group]):
        ref.eval()
        with torch.no_grad():
            expected = [ref(v) for v in xs]
        ok = len(outputs) == len(expected) and all(
            tuple(o.shape) == tuple(e.shape) and torch.allclose(o.float(), e, atol=1e-5, rtol=1e-4)
            for o, e in zip(outputs, expected))
        expected = expected[0]
        detail = ("the same shape but different values" if tuple(out.shape) == tuple(expected.shape)
                  else f"shape {fmt_shape(out.shape)}")
        results.append(check(
            checks.LAYERS, 0.25, ok,
            expected="the output of the specified layer sequence (the grader loaded its own random weights into "
                     "your layers)",
            obtained=detail,
            hint="Check the order of layers and where the activations go (ReLU between layers"
                 + (", Sigmoid at the end)." if name == "Decoder" else ", ReLU after the last conv too)."),
        ))
    else:
        results.append(check(
            checks.LAYERS, 0.25, False,
            expected=f"layers with weight/bias shapes {ref_shapes}", obtained=layer_shapes(params),
        ))
    return results


class EncoderChecks(CheckNames):
    SHAPE = "Encoder output shape"
    PARAMS = "Encoder parameter count"
    RANGE = "Encoder output is non-negative"
    LAYERS = "Encoder computes the specified layers"


def judge_encoder(obs: dict, inputs: dict) -> list:
    def nonneg(out):
        ok = out.numel() > 0 and bool((out >= 0).all())
        return check(EncoderChecks.RANGE, 0.25, ok, expected="all features >= 0 (ReLU after the last conv)",
                     obtained=f"minimum {out.min().item():.3g}" if out.numel() else "no output")
    return _judge_module(obs, inputs, name="Encoder", checks=EncoderChecks, reference=Encoder, input_key="x",
                         expected_params=ENCODER_PARAMS, out_shape=(2, 24, 4, 4), range_check=nonneg)


class DecoderChecks(CheckNames):
    SHAPE = "Decoder output shape"
    PARAMS = "Decoder parameter count"
    RANGE = "Decoder output in (0, 1)"
    LAYERS = "Decoder computes the specified layers"


def judge_decoder(obs: dict, inputs: dict) -> list:
    def unit_range(out):
        ok = out.numel() > 0 and bool(((out > 0) & (out < 1)).all())
        return check(DecoderChecks.RANGE, 0.25, ok,
                     expected="pixel values strictly between 0 and 1, as a Sigmoid at the end gives",
                     obtained=f"values in [{out.min().item():.3g}, {out.max().item():.3g}]" if out.numel() else "no output")
    return _judge_module(obs, inputs, name="Decoder", checks=DecoderChecks, reference=Decoder, input_key="z",
                         expected_params=DECODER_PARAMS, out_shape=(2, 3, 64, 64), range_check=unit_range)


# ---- training units: judged on what training produced --------------------------------------------
# The probe trains a rig from the grader's weights on the grader's batches (no shuffling, no dropout), so the
# reference recipe, replayed here, gives the very same weights (a correct step in any style matched to the
# last bit when measured). Each classic mistake moves them far beyond the tolerance (1e-4 to 0.5 for the
# mistakes below): replaying the mistakes too names the one a student made.

WEIGHT_TOL = 1e-5  # absolute, on every parameter after training (plus 1e-4 relative)
AE_RECIPE = {"opt": "adam", "lr": 1e-3, "weight_decay": 0.0, "loss": "mse", "zero_grad": True}
CLF_RECIPE = {"opt": "adam", "lr": 1e-3, "weight_decay": 1e-4, "loss": "ce", "zero_grad": True}
AE_MISTAKES = {
    "AdamW instead of Adam": {"opt": "adamw", "weight_decay": 0.01},
    "an L1 (absolute) error instead of the squared error": {"loss": "l1"},
    "no optimizer.zero_grad() (the gradients add up from step to step)": {"zero_grad": False},
    "a learning rate of 1e-2 instead of 1e-3": {"lr": 1e-2},
    "binary cross-entropy instead of the mean squared error": {"loss": "bce"},
    "the summed instead of the mean squared error": {"loss": "sum"},
    "SGD instead of Adam": {"opt": "sgd"},
}
CLF_MISTAKES = {
    "AdamW instead of Adam (its weight decay is decoupled: not the same training)": {"opt": "adamw"},
    "no weight_decay=1e-4": {"weight_decay": 0.0},
    "weight_decay=1e-3 instead of 1e-4": {"weight_decay": 1e-3},
    "F.nll_loss on the logits (without log_softmax), not the cross-entropy": {"loss": "nll"},
    "SGD instead of Adam": {"opt": "sgd"},
    "a softmax before F.cross_entropy (it applies log-softmax itself)": {"loss": "softmax_ce"},
    "no optimizer.zero_grad() (the gradients add up from step to step)": {"zero_grad": False},
    "a learning rate of 1e-2 instead of 1e-3": {"lr": 1e-2},
}


def _loss(kind: str, out, x, y):
    if kind == "mse":
        return F.mse_loss(out, x)
    if kind == "sum":
        return F.mse_loss(out, x, reduction="sum")
    if kind == "bce":
        return F.binary_cross_entropy(out.clamp(1e-6, 1 - 1e-6), x)
    if kind == "ce":
        return F.cross_entropy(out, y)
    if kind == "l1":
        return F.l1_loss(out, x)
    if kind == "nll":
        return F.nll_loss(out, y)
    return F.cross_entropy(out.softmax(dim=-1), y)  # "softmax_ce"


def _replay(params, forward, batches, epochs: int, recipe: dict):
    """Train ``params`` with ``recipe`` as a student's step would; (mean loss of every epoch)."""
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[recipe["opt"]]
    optimizer = cls(params, lr=recipe["lr"], weight_decay=recipe["weight_decay"])
    history = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the grading kernel: the same sums in the same order
    try:
        for _ in range(epochs):
            total = 0.0
            for x, y in batches:
                loss = _loss(recipe["loss"], forward(x), x, y)
                if recipe["zero_grad"]:
                    optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item()
            history.append(total / max(len(batches), 1))
    finally:
        torch.set_num_threads(threads)
    return history


def _close(got: list, want: list) -> bool:
    return len(got) == len(want) and all(
        p.shape == q.shape and torch.allclose(p.float(), q.float(), atol=WEIGHT_TOL, rtol=1e-4) for p, q in zip(got, want))


def _train_ae_rig(inputs: dict, recipe: dict):
    rig = probes.rig_autoencoder()
    load_into(rig, inputs["init"])
    history = _replay(rig.parameters(), rig, [(b, None) for b in inputs["batches"]], int(inputs["epochs"]), recipe)
    return clone_params(rig), history


def _distance(got: list, want: list) -> float:
    if len(got) != len(want) or any(p.shape != q.shape for p, q in zip(got, want)):
        return float("inf")
    return max((float((p.float() - q.float()).abs().max()) for p, q in zip(got, want)), default=0.0)


def _which(mistakes: dict, base: dict, got: list, train) -> str:
    """The mistake whose replay comes closest to the student's weights, when it matches them."""
    found = [(_distance(got, want), words) for words, change in mistakes.items()
             for want in [train(dict(base, **change))] if _close(got, want)]
    return min(found)[1] if found else ""


class TrainAEChecks(CheckNames):
    UPDATES = "train_ae updates the model's weights"
    RECIPE = "train_ae follows the recipe (Adam, lr 1e-3, mean squared error)"
    LOSSES = "train_ae returns the loss of every epoch"


def judge_train_ae(obs: dict, inputs: dict) -> list:
    params = tensor_list(obs.get("params"), "the trained model's parameters")
    returned = obs.get("returned") or []
    if len(params) != len(inputs["init"]) or any(p.shape != q.shape for p, q in zip(params, inputs["init"])):
        raise ValueError("the trained model's parameters do not have the rig's shapes")
    changed = any(not torch.equal(p, q) for p, q in zip(params, inputs["init"]))
    epochs = int(inputs["epochs"])
    want, want_history = _train_ae_rig(inputs, AE_RECIPE)
    same = _close(params, want)
    mistake = "" if same or not changed else _which(AE_MISTAKES, AE_RECIPE, params, lambda r: _train_ae_rig(inputs, r)[0])
    finite = all(isinstance(v, float) and v == v and abs(v) != float("inf") for v in returned)
    losses_ok = len(returned) == epochs and finite and all(
        abs(a - b) <= 1e-3 * abs(b) + 1e-7 for a, b in zip(returned, want_history))
    return [
        check(TrainAEChecks.UPDATES, 0.25, changed,
              expected="the model's parameters to change after training", obtained="they did not change",
              hint="Create an optimizer over model.parameters() and call loss.backward() and optimizer.step()."),
        check(TrainAEChecks.RECIPE, 0.5, same,
              expected=f"the weights that {epochs} epochs of one Adam step per batch (lr 1e-3) on the mean squared "
                       f"error between model(images) and images give, from the grader's starting weights",
              obtained=(f"other weights: your step looks like it uses {mistake}" if mistake else
                        "the starting weights" if not changed else "other weights"),
              hint="In step(batch): move the images to device, loss = F.mse_loss(model(images), images), then "
                   "optimizer.zero_grad(), loss.backward(), optimizer.step(), and return the loss."),
        check(TrainAEChecks.LOSSES, 0.25, losses_ok,
              expected=f"a list of {epochs} per-epoch mean losses (the mean squared error of each epoch's batches)",
              obtained=f"{len(returned)} values starting {[round(v, 6) for v in returned[:3]]}"
              + ("" if len(returned) != epochs or not finite else ", not those losses"),
              hint="step(batch) must return the loss; fit(step, dataloader, epochs).epoch_loss is the list to return."),
    ]


def _train_clf_rig(inputs: dict, supervised: bool, recipe: dict):
    enc, clf = probes.rig_encoder(), probes.rig_classifier()
    load_into(enc, inputs["encoder"])
    load_into(clf, inputs["classifier"])
    params = list(clf.parameters()) + (list(enc.parameters()) if supervised else [])
    if not supervised:
        enc.requires_grad_(False)
    batches = list(zip(inputs["images"], inputs["labels"]))
    _replay(params, lambda x: clf(enc(x).flatten(1)), batches, int(inputs["epochs"]), recipe)
    return clone_params(enc), clone_params(clf)


class TrainClassifierChecks(CheckNames):
    FROZEN_ENCODER = "supervised=False leaves the encoder unchanged"
    FROZEN_RECIPE = "supervised=False trains the classifier by the recipe"
    SUPERVISED_RECIPE = "supervised=True trains the encoder and the classifier by the recipe"
    SETTINGS = "SUPERVISED settings of the three methods"


def judge_train_classifier(obs: dict, inputs: dict) -> list:
    frozen, supervised = obs.get("frozen") or {}, obs.get("supervised") or {}
    hint = ("loss = F.cross_entropy(classifier(encoder(images).flatten(1)), labels); Adam with lr=1e-3 and "
            "weight_decay=1e-4 over the classifier's parameters, and the encoder's too when supervised=True; "
            "optimizer.zero_grad(), loss.backward(), optimizer.step().")
    results = []
    if frozen:
        enc_f = tensor_list(frozen.get("encoder"), "the encoder's parameters")
        clf_f = tensor_list(frozen.get("classifier"), "the classifier's parameters")
        same = len(enc_f) == len(inputs["encoder"]) and all(torch.equal(p, q) for p, q in zip(enc_f, inputs["encoder"]))
        results.append(check(TrainClassifierChecks.FROZEN_ENCODER, 0.25, same,
                             expected="the encoder's weights to stay bit-identical (frozen)",
                             obtained="they changed",
                             hint="With supervised=False only the classifier's parameters go to the optimizer."))
        want = _train_clf_rig(inputs, False, CLF_RECIPE)[1]
        ok = _close(clf_f, want)
        mistake = "" if ok else _which(CLF_MISTAKES, CLF_RECIPE, clf_f, lambda r: _train_clf_rig(inputs, False, r)[1])
        results.append(check(TrainClassifierChecks.FROZEN_RECIPE, 0.25, ok,
                             expected="the classifier weights that Adam (lr 1e-3, weight_decay 1e-4) on the "
                                      "cross-entropy gives from the grader's starting weights",
                             obtained=f"other weights{': your step looks like it uses ' + mistake if mistake else ''}",
                             hint=hint))
    else:
        error = str(obs.get("frozen_error", "not run"))
        results += [check(TrainClassifierChecks.FROZEN_ENCODER, 0.25, False, obtained=error),
                    check(TrainClassifierChecks.FROZEN_RECIPE, 0.25, False, obtained=error)]
    if supervised:
        enc_s = tensor_list(supervised.get("encoder"), "the encoder's parameters")
        clf_s = tensor_list(supervised.get("classifier"), "the classifier's parameters")
        want_enc, want_clf = _train_clf_rig(inputs, True, CLF_RECIPE)
        ok = _close(enc_s, want_enc) and _close(clf_s, want_clf)
        changed = any(not torch.equal(p, q) for p, q in zip(enc_s, inputs["encoder"]))
        mistake = "" if ok or not changed else _which(
            CLF_MISTAKES, CLF_RECIPE, enc_s + clf_s, lambda r: sum(_train_clf_rig(inputs, True, r), []))
        results.append(check(TrainClassifierChecks.SUPERVISED_RECIPE, 0.25, ok,
                             expected="the encoder and classifier weights that the same recipe gives with the encoder's "
                                      "parameters optimised too",
                             obtained=("the encoder's weights did not change" if not changed else
                                       f"other weights{': your step looks like it uses ' + mistake if mistake else ''}"),
                             hint=hint))
    else:
        results.append(check(TrainClassifierChecks.SUPERVISED_RECIPE, 0.25, False,
                             obtained=str(obs.get("supervised_error", "not run"))))
    settings = obs.get("settings") or {}
    ok = all(settings.get(k) is v for k, v in SUPERVISED_EXPECTED.items())
    results.append(check(TrainClassifierChecks.SETTINGS, 0.25, ok,
                         expected="one True/False per method, matching each method's description",
                         obtained="a different choice" if settings else "no SUPERVISED dictionary with keys 'I', 'II', 'III'",
                         hint="Method I freezes the pretrained encoder, II trains it with the classifier, III freezes a random one."))
    return results
