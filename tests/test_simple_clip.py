"""Hidden tests of problem set "simple_clip": the reference passes, each classic mistake fails the
check that names it, the probes and visible checks hold no solution, and the sample submissions
grade as they should through the real grader (fresh kernel, probes there, judges here)."""
import inspect

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from autograder import simple_clip as sc
from autograder.core import judge_safely, run_unit
from course_utils.checks import simple_clip as checks_clip
from course_utils.probes import simple_clip as probes
from units import failed_checks as _failed, points as _points

DIVIDES = "contrastive_loss divides the similarities by the temperature"
NORMALISES = "contrastive_loss L2-normalises both embeddings"
SYMMETRIC = "contrastive_loss is symmetric (both directions averaged)"
EQUATIONS = "loss equals equations 1-3"
FROZEN = "the text encoder stays frozen"
TRAINED = "a training step updates the image encoder and both heads"


def _run(grade_id, seed=5, **objects):
    results = run_unit(sc.PROBLEM_SET.unit(grade_id), objects, seed=seed)
    return {r.name: r for r in results}


# ---- the problem set's shape ------------------------------------------------------------------

def test_problem_set_points_match_the_course():
    ps = sc.PROBLEM_SET
    assert ps.id == "simple_clip" and ps.notebook == "simple_clip.ipynb"
    assert [(u.grade_id, u.title, u.points) for u in ps.units] == [
        ("test_projection_head", "ProjectionHead", 1), ("test_clip_model", "CLIPModel", 2),
        ("test_retrieve_images", "retrieve_images", 1)]
    assert [(m.grade_id, m.points) for m in ps.manual] == [("report", 1)]
    assert ps.total_points == 5 and ps.auto_points == 4
    for unit in ps.units:  # the checks' points add up to the unit's points, every check named
        results = unit.judge(*_observe(unit, 0))
        assert [r.name for r in results] == list(unit.check_names)
        assert sum(r.max_points for r in results) == pytest.approx(unit.points)
        assert sum(c.max_points for c in unit.failed("x")) == pytest.approx(unit.points)
        judged = judge_safely(unit, *_observe(unit, 0))  # half the points shared, half for passing them all
        assert [r.name for r in judged] == list(unit.all_checks) and all(r.passed for r in judged)
        assert sum(r.max_points for r in judged) == pytest.approx(unit.points)
        assert judged[-1].max_points == pytest.approx(unit.points / 2)


def _observe(unit, seed):
    from autograder.core import load_probe

    inputs = unit.make_inputs(seed)
    objects = {"ProjectionHead": sc.ProjectionHead, "CLIPModel": sc.CLIPModel, "retrieve_images": sc.retrieve_images}
    return load_probe(unit.probe)({n: objects[n] for n in unit.names}, inputs), inputs


def test_grader_inputs_survive_the_trip_to_the_kernel(tmp_path):
    """Inputs travel as a torch.save file read with weights_only=True; they must be deterministic."""
    for unit in sc.UNITS:
        inputs = unit.make_inputs(3)
        torch.save(inputs, tmp_path / "in.pt")
        back = torch.load(tmp_path / "in.pt", weights_only=True)
        assert back.keys() == inputs.keys()
        again = unit.make_inputs(3)
        for key, value in inputs.items():
            if torch.is_tensor(value):
                assert torch.equal(value, again[key]), (unit.title, key)


# Hidden inputs are drawn per student and submission (autograder.core.submission_seed): the reference must pass
# whatever the seed, so a spread of seeds is tried, not only the default one.
@pytest.mark.parametrize("seed", [0, 5, 20261123] + [k * 7_919_113 % 2**31 for k in range(1, 12)])
def test_reference_gets_full_marks(seed):
    for grade_id, objects in (("test_projection_head", {"ProjectionHead": sc.ProjectionHead}),
                              ("test_clip_model", {"CLIPModel": sc.CLIPModel}),
                              ("test_retrieve_images", {"retrieve_images": sc.retrieve_images})):
        results = _run(grade_id, seed=seed, **objects)
        assert _failed(results) == [], [r.message for r in results.values() if not r.passed]


def test_reference_loss_matches_a_loop_over_equations_1_to_3():
    i, t = torch.randn(6, 5), torch.randn(6, 5)
    ni, nt, tau = F.normalize(i, dim=-1), F.normalize(t, dim=-1), 0.07
    l_it = -sum(torch.log(torch.exp(ni[k] @ nt[k] / tau) / torch.exp(ni[k] @ nt.T / tau).sum()) for k in range(6)) / 6
    l_ti = -sum(torch.log(torch.exp(nt[k] @ ni[k] / tau) / torch.exp(nt[k] @ ni.T / tau).sum()) for k in range(6)) / 6
    torch.testing.assert_close(sc.clip_loss(i, t), (l_it + l_ti) / 2, atol=1e-5, rtol=1e-5)


# ---- classic mistakes -------------------------------------------------------------------------

def _clip_with_loss(kind):
    class Mistaken(sc.CLIPModel):
        def contrastive_loss(self, image_embeddings, text_embeddings):
            i, t = image_embeddings, text_embeddings
            if kind != "no_normalisation":
                i, t = F.normalize(i, dim=-1), F.normalize(t, dim=-1)
            logits = i @ t.T * self.temperature if kind == "temperature_multiplied" else i @ t.T / self.temperature
            targets = torch.arange(len(logits))
            if kind == "one_direction":
                return F.cross_entropy(logits, targets)
            return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2

    return Mistaken


@pytest.mark.parametrize("kind,check,words", [
    ("temperature_multiplied", DIVIDES, "multiply the similarities by the temperature"),
    ("no_normalisation", NORMALISES, "do not L2-normalise"),
    ("one_direction", SYMMETRIC, "only the image-to-text direction"),
])
def test_each_classic_loss_mistake_fails_its_own_check(kind, check, words):
    results = _run("test_clip_model", CLIPModel=_clip_with_loss(kind))
    assert _failed(results) == sorted([check, EQUATIONS])
    assert words in results[check].message
    assert "expected" in results[check].message and "obtained" in results[check].message
    assert 0 < _points(results) < 2
    assert _points(results) == pytest.approx(0.625)  # 2 points: 0.375 of the shared half lost, and the whole-unit half


def test_frozen_text_encoder_and_trained_image_encoder():
    class Unfrozen(sc.CLIPModel):
        def __init__(self, image_encoder, text_encoder, **kwargs):
            super().__init__(image_encoder, text_encoder, **kwargs)
            text_encoder.requires_grad_(True)

    class ImageDetached(sc.CLIPModel):
        def encode_image(self, images):
            with torch.no_grad():
                features = self.image_encoder(images)
            return self.image_projection(features)

    res = _run("test_clip_model", CLIPModel=Unfrozen)
    assert _failed(res) == [FROZEN] and "requires_grad_(False)" in res[FROZEN].message
    res = _run("test_clip_model", CLIPModel=ImageDetached)
    assert _failed(res) == [TRAINED] and "the image encoder did not change" in res[TRAINED].message


def test_hard_coded_temperature_and_wrong_embed_dim():
    class FixedTau(sc.CLIPModel):
        def contrastive_loss(self, image_embeddings, text_embeddings):
            return sc.clip_loss(image_embeddings, text_embeddings, 0.07)

    res = _run("test_clip_model", CLIPModel=FixedTau)
    assert _failed(res) == [DIVIDES] and "self.temperature" in res[DIVIDES].message

    class Fixed256(sc.CLIPModel):
        def __init__(self, image_encoder, text_encoder, embed_dim=256, temperature=0.07):
            super().__init__(image_encoder, text_encoder, 256, temperature)

    res = _run("test_clip_model", CLIPModel=Fixed256)
    assert _failed(res) == ["encode_image and encode_text_features"]
    assert "embed_dim" in res["encode_image and encode_text_features"].message


def test_projection_head_mistakes():
    class NotNormalised(sc.ProjectionHead):
        def forward(self, x):
            return self.projection(x)

    class NormalisedOverBatch(sc.ProjectionHead):
        def forward(self, x):
            return F.normalize(self.projection(x), dim=0)

    class UpstreamHead(nn.Module):  # Simple CLIP's head: Linear, GELU, Linear, residual, LayerNorm (+ normalise)
        def __init__(self, embedding_dim, projection_dim=256):
            super().__init__()
            self.projection = nn.Linear(embedding_dim, projection_dim)
            self.fc = nn.Linear(projection_dim, projection_dim)
            self.norm = nn.LayerNorm(projection_dim)

        def forward(self, x):
            p = self.projection(x)
            return F.normalize(self.norm(self.fc(F.gelu(p)) + p), dim=-1)

    res = _run("test_projection_head", ProjectionHead=NotNormalised)
    assert _failed(res) == ["ProjectionHead computes normalize(Linear(x))", "ProjectionHead output is L2-normalised"]
    assert "row norms" in res["ProjectionHead output is L2-normalised"].message
    res = _run("test_projection_head", ProjectionHead=NormalisedOverBatch)
    assert "ProjectionHead output is L2-normalised" in _failed(res) and "dim=-1" in res[
        "ProjectionHead output is L2-normalised"].message
    res = _run("test_projection_head", ProjectionHead=UpstreamHead)
    assert _failed(res) == ["ProjectionHead computes normalize(Linear(x))", "ProjectionHead is a single Linear layer"]
    assert _points(res) == pytest.approx(0.25)  # 2 of 4 shared quarters of the half lost, and the whole-unit half


def test_retrieve_images_mistakes():
    def raw_dot_products(model, image_embeddings, query, image_filenames, k=9):
        with torch.no_grad():
            q = model.encode_text_features(model.text_encoder([query]))  # (1, E)
        return [image_filenames[i] for i in (image_embeddings @ q.T).squeeze(1).topk(k).indices.tolist()]

    def worst_first(model, image_embeddings, query, image_filenames, k=9):
        return sc.retrieve_images(model, image_embeddings, query, image_filenames, k)[::-1]

    def indices(model, image_embeddings, query, image_filenames, k=9):
        names = sc.retrieve_images(model, image_embeddings, query, image_filenames, k)
        return [image_filenames.index(n) for n in names]

    def with_scores(model, image_embeddings, query, image_filenames, k=9):  # (names, scores) is accepted
        return sc.retrieve_images(model, image_embeddings, query, image_filenames, k), torch.zeros(k)

    res = _run("test_retrieve_images", retrieve_images=raw_dot_products)
    assert _failed(res) == ["retrieve_images L2-normalises the image embeddings"]
    assert "raw dot products" in res["retrieve_images L2-normalises the image embeddings"].message
    res = _run("test_retrieve_images", retrieve_images=worst_first)  # format right, every ranking reversed
    assert _failed(res) == ["retrieve_images L2-normalises the image embeddings",
                            "retrieve_images returns the best matches, best first"]
    assert "wrong order" in res["retrieve_images returns the best matches, best first"].message
    res = _run("test_retrieve_images", retrieve_images=indices)
    assert "retrieve_images returns k file names" in _failed(res) and _points(res) == 0
    assert _failed(_run("test_retrieve_images", retrieve_images=with_scores)) == []


def test_student_errors_become_messages_not_crashes():
    class NotDone(nn.Module):
        def __init__(self, *args, **kwargs):
            super().__init__()
            raise NotImplementedError()

    for grade_id, name in (("test_projection_head", "ProjectionHead"), ("test_clip_model", "CLIPModel")):
        res = _run(grade_id, **{name: NotDone})
        assert _points(res) == 0 and all("NotImplementedError" in r.message for n, r in res.items()
                                         if not n.endswith(" passes every check"))

    def broken(model, image_embeddings, query, image_filenames, k=9):
        raise NotImplementedError()

    res = _run("test_retrieve_images", retrieve_images=broken)
    assert _points(res) == 0 and all("NotImplementedError" in r.message or "expected" in r.message
                                     for r in res.values())


@pytest.mark.parametrize("obs", [None, {}, {"output": "x"}, {"losses": 3, "step": [1]},
                                 {"default_k": 5, "small_k": [[1]]}, {"output": torch.zeros(2), "params": "p"}])
def test_judges_survive_malformed_observations(obs):
    for unit in sc.UNITS:
        results = judge_safely(unit, obs, unit.make_inputs(0))
        assert results and all(not r.passed for r in results)
        assert sum(r.max_points for r in results) == pytest.approx(unit.points)


# ---- what students can see ----------------------------------------------------------------------

def test_probes_and_visible_checks_hold_no_solution():
    for module in (probes, checks_clip):
        src = inspect.getsource(module)
        for leak in ("cross_entropy", "log_softmax", "logsumexp", "/ self.temperature", "torch.arange",
                     "def contrastive_loss", "def retrieve_images", "topk(", "= ProjectionHead(", "argsort"):
            assert leak not in src, (module.__name__, leak)
        assert "normalize(" not in src.replace("F.normalize(x, dim=-1)", "").replace(
            "F.normalize(image_embeddings, dim=-1)", ""), module.__name__  # only named in hints


def test_released_notebook_holds_no_solution_and_no_hidden_test():
    from autograder.problem_sets import REPO_ROOT

    release = (REPO_ROOT / "assignments" / "simple_clip" / "simple_clip.ipynb").read_text()
    for leak in ("BEGIN SOLUTION", "HIDDEN TESTS", "autograder.simple_clip", "/ self.temperature",
                 "self.projection = nn.Linear", "(loss_images + loss_texts)", "torch.topk(scores",
                 "self.image_projection = ProjectionHead"):
        assert leak not in release, leak


def test_visible_checks_accept_the_reference_and_teach_on_mistakes(capsys):
    checks_clip.check_projection_head(sc.ProjectionHead)
    checks_clip.check_clip_model(sc.CLIPModel)
    checks_clip.check_retrieve_images(sc.retrieve_images)
    assert capsys.readouterr().out.count("visible checks passed") == 3
    with pytest.raises(checks_clip.CheckFailed, match="multiply by the temperature"):
        checks_clip.check_clip_model(_clip_with_loss("temperature_multiplied"))
    with pytest.raises(checks_clip.CheckFailed, match="L2-normalise both embeddings"):
        checks_clip.check_clip_model(_clip_with_loss("no_normalisation"))
    with pytest.raises(checks_clip.CheckFailed, match="equation 3"):
        checks_clip.check_clip_model(_clip_with_loss("one_direction"))

    class NotDone(nn.Module):
        def __init__(self, *args):
            super().__init__()
            raise NotImplementedError()

    with pytest.raises(checks_clip.CheckFailed, match="not implemented yet"):
        checks_clip.check_projection_head(NotDone)


# ---- the real grader, on the sample submissions ----------------------------------------------------

@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade the three sample submissions once (fresh kernels, grading mode): ~30 s on 2 cores."""
    from autograder.grader import grade_submission
    from autograder.release import make_sample_submissions

    samples = make_sample_submissions("simple_clip", tmp_path_factory.mktemp("submitted"))
    assert set(samples) == {"solution", "untouched", "temperature_multiplied"}
    return {student: grade_submission("simple_clip", path, student) for student, path in samples.items()}


def _unit_points(result):
    return {u.title: u.points for u in result.units if not u.manual}


def test_sample_submissions_grade_as_expected(graded):
    solution, untouched, mult = graded["solution"], graded["untouched"], graded["temperature_multiplied"]
    assert solution.score == solution.max_score == 4.0, [
        (c.name, c.message) for u in solution.units for c in u.checks if not c.passed]
    assert untouched.score == 0
    # CLIPModel: 2 points, half shared by its checks (0.125 + 0.25 lost here), half for passing them all
    assert _unit_points(mult) == {"ProjectionHead": 1.0, "CLIPModel": 0.625, "retrieve_images": 1.0}
    failed = {c.name: c.message for u in mult.units for c in u.checks if not c.passed}
    assert sorted(failed) == sorted([DIVIDES, EQUATIONS, "CLIPModel passes every check"])
    assert "multiply the similarities by the temperature instead of dividing" in failed[DIVIDES]
    report = [u for u in solution.units if u.manual]
    assert [(u.grade_id, u.max_points) for u in report] == [("report", 1.0)]
    for result in graded.values():
        assert result.status == "graded" and result.seconds < 120


def test_retrieve_images_may_use_any_part_of_the_clip_model():
    """The hidden rig has every attribute of the notebook's CLIPModel: taking the device from the image side
    (which the rig used to lack) gets full marks."""
    def retrieve_images(model, image_embeddings, query, image_filenames, k=9):
        device = next(model.image_projection.parameters()).device
        assert next(model.image_encoder.parameters()).device == device and model.temperature > 0
        with torch.no_grad():
            q = F.normalize(model.encode_text_features(model.text_encoder([query]).to(device)), dim=-1)
            scores = F.normalize(image_embeddings.to(device), dim=-1) @ q.squeeze(0)
        return [image_filenames[i] for i in scores.topk(k).indices.tolist()]

    results = _run("test_retrieve_images", retrieve_images=retrieve_images)
    assert _failed(results) == [], [r.message for r in results.values() if not r.passed]


def test_a_projection_head_without_its_bias_loses_the_layer_check_with_a_message():
    class NoBias(nn.Module):
        def __init__(self, embedding_dim, projection_dim=256):
            super().__init__()
            self.projection = nn.Linear(embedding_dim, projection_dim, bias=False)

        def forward(self, x):
            return F.normalize(self.projection(x), dim=-1)

    results = _run("test_projection_head", ProjectionHead=NoBias)
    assert _failed(results) == ["ProjectionHead is a single Linear layer"]
    assert "without its bias" in results["ProjectionHead is a single Linear layer"].message
