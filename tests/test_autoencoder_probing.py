"""Hidden tests of problem set "autoencoder_probing": the reference passes, each classic mistake fails
the check that names it, and malformed observations never crash the judge."""
import inspect

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from autograder import autoencoder_probing as ap
from autograder.core import run_unit
from course_utils.checks import autoencoder_probing as checks
from course_utils.probes import autoencoder_probing as probes
from units import failed_checks as _failed


def _run(grade_id, **objects):
    results = run_unit(ap.PROBLEM_SET.unit(grade_id), objects, seed=5)
    return {r.name: r for r in results}


RECIPE_AE = "train_ae follows the recipe (Adam, lr 1e-3, mean squared error)"


def test_problem_set_points_match_the_course():
    ps = ap.PROBLEM_SET
    assert [u.title for u in ps.units] == ["Encoder", "Decoder", "train_ae", "train_classifier"]
    assert [u.points for u in ps.units] == [1, 1, 1, 1]
    assert ps.total_points == 5 and ps.auto_points == 4
    for unit in ps.units:  # the checks' points add up to the unit's points
        inputs = unit.make_inputs(0)
        assert [c.name for c in unit.failed("x")] == list(unit.all_checks)
        assert sum(c.max_points for c in unit.failed("x")) == pytest.approx(unit.points)
        assert isinstance(inputs, dict)


def test_reference_architecture_facts():
    assert sum(p.numel() for p in ap.Encoder().parameters()) == 42_156
    assert sum(p.numel() for p in ap.Decoder().parameters()) == 42_135
    z = ap.Encoder()(torch.rand(2, 3, 64, 64))
    assert z.shape == (2, 24, 4, 4)
    x = ap.Decoder()(z)
    assert x.shape == (2, 3, 64, 64) and 0 <= x.min() and x.max() <= 1


@pytest.mark.parametrize("grade_id,objects", [
    ("test_encoder", {"Encoder": ap.Encoder}),
    ("test_decoder", {"Decoder": ap.Decoder}),
    ("test_train_ae", {"train_ae": ap.train_ae}),
    ("test_train_classifier", {"train_classifier": ap.train_classifier, "SUPERVISED": dict(ap.SUPERVISED_EXPECTED)}),
])
def test_reference_gets_full_marks(grade_id, objects):
    results = _run(grade_id, **objects)
    assert _failed(results) == [], [r.message for r in results.values() if not r.passed]
    assert sum(r.points for r in results.values()) == pytest.approx(1.0)


class EncoderNoFinalReLU(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 12, 4, 2, 1), nn.ReLU(), nn.Conv2d(12, 24, 4, 2, 1), nn.ReLU(),
                                 nn.Conv2d(24, 48, 4, 2, 1), nn.ReLU(), nn.Conv2d(48, 24, 4, 2, 1))

    def forward(self, x):
        return self.net(x)


class EncoderWrongKernel(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 12, 3, 2, 1), nn.ReLU(), nn.Conv2d(12, 24, 3, 2, 1), nn.ReLU(),
                                 nn.Conv2d(24, 48, 3, 2, 1), nn.ReLU(), nn.Conv2d(48, 24, 3, 2, 1), nn.ReLU())

    def forward(self, x):
        return self.net(x)


class DecoderReLUOut(ap.Decoder):
    def __init__(self):
        super().__init__()
        self.net[-1] = nn.ReLU()


def test_encoder_mistakes_fail_the_right_checks():
    no_relu = _run("test_encoder", Encoder=EncoderNoFinalReLU)
    assert "Encoder computes the specified layers" in _failed(no_relu)
    assert "Encoder output shape" not in _failed(no_relu)
    assert "Encoder parameter count" not in _failed(no_relu)
    wrong_kernel = _run("test_encoder", Encoder=EncoderWrongKernel)
    assert "Encoder parameter count" in _failed(wrong_kernel)
    msg = wrong_kernel["Encoder parameter count"].message
    assert "expected 42,156 parameters" in msg and "obtained" in msg


def test_decoder_without_sigmoid_gets_partial_credit():
    results = _run("test_decoder", Decoder=DecoderReLUOut)
    assert _failed(results) == ["Decoder computes the specified layers", "Decoder output in (0, 1)"]
    assert sum(r.points for r in results.values()) == pytest.approx(0.25)  # half of the point needs every check; 2 of 4 shared quarters lost
    assert "Sigmoid" in results["Decoder output in (0, 1)"].message


def test_train_ae_mistakes():
    def no_step(model, dataloader, epochs=200):
        return [0.1] * epochs

    def ascent(model, dataloader, epochs=200):  # maximises the loss
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        out = []
        for _ in range(epochs):
            for x, _ in dataloader:
                loss = -F.mse_loss(model(x), x)
                opt.zero_grad()
                loss.backward()
                opt.step()
            out.append(-loss.item())
        return out

    assert "train_ae updates the model's weights" in _failed(_run("test_train_ae", train_ae=no_step))
    res = _run("test_train_ae", train_ae=ascent)
    assert RECIPE_AE in _failed(res)
    assert "obtained" in res[RECIPE_AE].message


def test_train_classifier_mistakes():
    def always_train_encoder(encoder, classifier, dataloader, epochs=100, supervised=False):
        return ap.train_classifier(encoder, classifier, dataloader, epochs, supervised=True)

    res = _run("test_train_classifier", train_classifier=always_train_encoder,
               SUPERVISED={"I": False, "II": True, "III": False})
    # the encoder changes, and the classifier then learns on moving features: both supervised=False checks fail
    assert _failed(res) == ["supervised=False leaves the encoder unchanged",
                            "supervised=False trains the classifier by the recipe"]
    wrong_settings = _run("test_train_classifier", train_classifier=ap.train_classifier,
                          SUPERVISED={"I": True, "II": True, "III": False})
    assert _failed(wrong_settings) == ["SUPERVISED settings of the three methods"]
    missing = _run("test_train_classifier", train_classifier=ap.train_classifier)
    assert _failed(missing) == ["SUPERVISED settings of the three methods"]


def test_student_errors_become_messages_not_crashes():
    class Broken(nn.Module):
        def __init__(self):
            raise NotImplementedError()

    res = _run("test_encoder", Encoder=Broken)
    assert all(not r.passed for r in res.values())
    assert all("NotImplementedError" in r.message for r in res.values())
    res = _run("test_decoder", Decoder=lambda: "not a module")
    assert all("torch.nn.Module" in r.message for r in res.values())


@pytest.mark.parametrize("obs", [None, {}, {"params": "x", "outputs": 3}, {"params": [torch.zeros(2)], "outputs": []}])
def test_judges_survive_malformed_observations(obs):
    from autograder.core import judge_safely

    for unit in ap.UNITS:
        results = judge_safely(unit, obs, unit.make_inputs(0))
        assert results and all(not r.passed for r in results)
        assert sum(r.max_points for r in results) == pytest.approx(unit.points)


def test_probes_and_visible_checks_hold_no_solution():
    for module in (probes, checks):
        src = inspect.getsource(module)
        assert "nn.Conv2d(3, 12" not in src and "nn.ConvTranspose2d(12, 3" not in src
        assert "def train_ae" not in src and "def train_classifier" not in src


def test_visible_checks_accept_the_reference_and_teach_on_mistakes(capsys):
    checks.check_encoder(ap.Encoder)
    checks.check_decoder(ap.Decoder)
    checks.check_train_ae(ap.train_ae)
    checks.check_train_classifier(ap.train_classifier, {"I": False, "II": True, "III": False})
    assert capsys.readouterr().out.count("visible checks passed") == 4
    with pytest.raises(checks.CheckFailed, match="expected 42,156 parameters"):
        checks.check_encoder(EncoderWrongKernel)
    with pytest.raises(checks.CheckFailed, match="Sigmoid"):
        checks.check_decoder(DecoderReLUOut)

    class NotDone(nn.Module):
        def __init__(self):
            super().__init__()
            raise NotImplementedError()

    with pytest.raises(checks.CheckFailed, match="not implemented yet"):
        checks.check_encoder(NotDone)


class DecoderDeclaredBackwards(nn.Module):
    """Correct: attributes declared deconv1 (12->3) ... deconv4 (24->48), run deconv4 -> deconv1."""

    def __init__(self):
        super().__init__()
        self.deconv1 = nn.ConvTranspose2d(12, 3, 4, 2, 1)
        self.deconv2 = nn.ConvTranspose2d(24, 12, 4, 2, 1)
        self.deconv3 = nn.ConvTranspose2d(48, 24, 4, 2, 1)
        self.deconv4 = nn.ConvTranspose2d(24, 48, 4, 2, 1)

    def forward(self, z):
        z = F.relu(self.deconv4(z))
        z = F.relu(self.deconv3(z))
        z = F.relu(self.deconv2(z))
        return torch.sigmoid(self.deconv1(z))


class EncoderBottleneckFirst(nn.Module):
    """Correct: the last layer registered before the others."""

    def __init__(self):
        super().__init__()
        self.bottleneck = nn.Conv2d(48, 24, 4, 2, 1)
        self.features = nn.Sequential(nn.Conv2d(3, 12, 4, 2, 1), nn.ReLU(), nn.Conv2d(12, 24, 4, 2, 1), nn.ReLU(),
                                      nn.Conv2d(24, 48, 4, 2, 1), nn.ReLU())

    def forward(self, x):
        return F.relu(self.bottleneck(self.features(x)))


class DecoderIgnoringItsLayers(ap.Decoder):
    """Hostile: right layers, zero weights at init, and a forward that returns a constant of the right
    shape (against weights taken from the student's own module, the reference output is constant too)."""

    def __init__(self):
        super().__init__()
        with torch.no_grad():
            for p in self.parameters():
                p.zero_()

    def forward(self, z):
        return torch.full((z.shape[0], 3, 64, 64), 0.5)


def test_layers_registered_in_another_order_get_full_marks():
    for grade_id, name, cls in (("test_decoder", "Decoder", DecoderDeclaredBackwards),
                                ("test_encoder", "Encoder", EncoderBottleneckFirst)):
        results = _run(grade_id, **{name: cls})
        assert _failed(results) == [], [r.message for r in results.values() if not r.passed]


def test_a_module_that_ignores_its_layers_fails_the_layer_check():
    results = _run("test_decoder", Decoder=DecoderIgnoringItsLayers)
    assert _failed(results) == ["Decoder computes the specified layers"]


@pytest.mark.parametrize("seed", range(0, 40, 3))
def test_the_reference_passes_for_every_students_inputs(seed):
    """Hidden inputs are drawn per student and submission: the reference passes whatever the seed."""
    for grade_id, objects in (("test_encoder", {"Encoder": ap.Encoder}), ("test_decoder", {"Decoder": ap.Decoder}),
                              ("test_train_ae", {"train_ae": ap.train_ae}),
                              ("test_train_classifier", {"train_classifier": ap.train_classifier,
                                                         "SUPERVISED": dict(ap.SUPERVISED_EXPECTED)})):
        results = {r.name: r for r in run_unit(ap.PROBLEM_SET.unit(grade_id), objects, seed=seed * 7_919_113)}
        assert _failed(results) == [], (seed, [r.message for r in results.values() if not r.passed])


@pytest.mark.parametrize("seed", [k * 7_919_113 % 2**31 for k in range(12)])
def test_a_wrong_final_activation_fails_its_range_check_for_every_students_inputs(seed):
    """The range checks use an input scaled so that the grader's random weights make a missing Sigmoid or a
    missing last ReLU show (with plain random inputs a ReLU decoder stayed inside (0, 1) for some seeds)."""
    class EncoderNoLastReLU(ap.Encoder):
        def __init__(self):
            super().__init__()
            self.net = self.net[:-1]

    dec = {r.name: r for r in run_unit(ap.PROBLEM_SET.unit("test_decoder"), {"Decoder": DecoderReLUOut}, seed)}
    enc = {r.name: r for r in run_unit(ap.PROBLEM_SET.unit("test_encoder"), {"Encoder": EncoderNoLastReLU}, seed)}
    assert not dec["Decoder output in (0, 1)"].passed and not enc["Encoder output is non-negative"].passed


# ---- training units: correct steps in other styles pass, classic mistakes lose points and are named ---------

def _ae_trainer(make_loss=None, lr=1e-3, opt="adam", zero_grad=True, zero_last=False, target_noise=0.0):
    def train_ae(model, dataloader, epochs=200):
        optimizer = (torch.optim.Adam if opt == "adam" else torch.optim.SGD)(model.parameters(), lr=lr)
        history = []
        for _ in range(epochs):
            losses = []
            for images, _labels in dataloader:
                target = images + target_noise * torch.randn_like(images) if target_noise else images
                out = model(images)
                loss = make_loss(out, target) if make_loss else F.mse_loss(out, target)
                if zero_grad and not zero_last:
                    optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if zero_grad and zero_last:
                    optimizer.zero_grad(set_to_none=False)
                losses.append(loss.item())
            history.append(sum(losses) / len(losses))
        return history
    return train_ae


def test_train_ae_in_other_correct_styles_gets_full_marks():
    for train_ae in (_ae_trainer(), _ae_trainer(make_loss=lambda o, x: ((o - x) ** 2).mean()),
                     _ae_trainer(make_loss=nn.MSELoss()), _ae_trainer(zero_last=True)):
        results = _run("test_train_ae", train_ae=train_ae)
        assert _failed(results) == [], [r.message for r in results.values() if not r.passed]


@pytest.mark.parametrize("mistake, trainer", [
    ("zero_grad", _ae_trainer(zero_grad=False)),
    ("1e-2", _ae_trainer(lr=1e-2)),
    ("binary cross-entropy", _ae_trainer(make_loss=lambda o, x: F.binary_cross_entropy(o, x))),
    ("summed", _ae_trainer(make_loss=lambda o, x: F.mse_loss(o, x, reduction="sum"))),
    ("SGD", _ae_trainer(opt="sgd")),
    ("", _ae_trainer(target_noise=0.1)),  # MSE against a noisy copy: other weights, no name
])
def test_train_ae_classic_mistakes_lose_at_least_half_and_are_named(mistake, trainer):
    results = _run("test_train_ae", train_ae=trainer)
    assert RECIPE_AE in _failed(results)
    assert sum(r.points for r in results.values()) <= 0.5
    assert mistake in results[RECIPE_AE].message


def _clf_trainer(wd=1e-4, opt="adam", softmax=False, zero_grad=True, lr=1e-3, style="list"):
    def train_classifier(encoder, classifier, dataloader, epochs=100, supervised=False):
        if style == "list":
            params = list(classifier.parameters()) + (list(encoder.parameters()) if supervised else [])
        else:  # everything to the optimiser, the encoder frozen by requires_grad
            encoder.requires_grad_(supervised)
            params = [*encoder.parameters(), *classifier.parameters()]
        cls = torch.optim.Adam if opt == "adam" else torch.optim.SGD
        optimizer = cls(params, lr=lr, weight_decay=wd)
        history = []
        for _ in range(epochs):
            for images, labels in dataloader:
                if supervised or style == "list":
                    feats = encoder(images).flatten(1)
                else:
                    with torch.no_grad():
                        feats = encoder(images).view(images.shape[0], -1)
                logits = classifier(feats)
                loss = F.cross_entropy(logits.softmax(-1) if softmax else logits, labels)
                if zero_grad:
                    optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            history.append(loss.item())
        return history
    return train_classifier


SUP = {"I": False, "II": True, "III": False}


def test_train_classifier_in_other_correct_styles_gets_full_marks():
    for trainer in (_clf_trainer(), _clf_trainer(style="requires_grad")):
        results = _run("test_train_classifier", train_classifier=trainer, SUPERVISED=dict(SUP))
        assert _failed(results) == [], [r.message for r in results.values() if not r.passed]

    def uses_in_features(encoder, classifier, dataloader, epochs=100, supervised=False):
        assert classifier.in_features == 64  # the notebook promises an nn.Linear
        return ap.train_classifier(encoder, classifier, dataloader, epochs, supervised)

    results = _run("test_train_classifier", train_classifier=uses_in_features, SUPERVISED=dict(SUP))
    assert _failed(results) == []


@pytest.mark.parametrize("mistake, trainer", [
    ("weight_decay", _clf_trainer(wd=0.0)),
    ("SGD", _clf_trainer(opt="sgd")),
    ("softmax", _clf_trainer(softmax=True)),
    ("zero_grad", _clf_trainer(zero_grad=False)),
    ("1e-2", _clf_trainer(lr=1e-2)),
])
def test_train_classifier_classic_mistakes_lose_half_and_are_named(mistake, trainer):
    results = _run("test_train_classifier", train_classifier=trainer, SUPERVISED=dict(SUP))
    failed = _failed(results)
    assert failed == ["supervised=False trains the classifier by the recipe",
                      "supervised=True trains the encoder and the classifier by the recipe"]
    assert all(mistake in results[name].message for name in failed)


def test_a_failed_visible_check_shows_its_message_not_the_library_frames():
    """In a notebook (IPython calls _render_traceback_), a failed visible check is its message and what to do; the
    frames of the checking library are left out. A frozen-when-supervised encoder's message says what to change."""
    def trains_frozen_encoder(encoder, classifier, dataloader, epochs=100, supervised=False):
        optimizer = torch.optim.Adam(list(encoder.parameters()) + list(classifier.parameters()), lr=1e-3)
        for _ in range(epochs):
            for images, labels in dataloader:
                loss = F.cross_entropy(classifier(encoder(images).flatten(1)), labels)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

    with pytest.raises(checks.CheckFailed) as info:
        checks.check_train_classifier(trains_frozen_encoder)
    shown = info.value._render_traceback_()
    assert len(shown) == 1 and shown[0].startswith("CheckFailed: expected supervised=False to leave the encoder frozen")
    assert "only the classifier's parameters to the optimiser" in shown[0]
