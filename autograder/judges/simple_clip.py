"""Reference implementation, check names and judges of "simple_clip": everything that decides a grade, in
the grader's process, from the observations of ``course_utils/probes/simple_clip.py``. ``autograder/simple_clip.py``
(grader inputs, units, hidden-test entry points) imports this module; nothing here imports that one."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from course_utils.probes import simple_clip as probes

from ..core import CheckNames, check, fmt_shape
from .common import layer_shapes, row_norms, tensor_list, unit_rows

EMBED_DIM = 256  # the shared embedding space of the problem set
TEMPERATURE = 0.07  # tau of the course run
TOL = 1e-5  # absolute and relative tolerance on loss values


# ---- reference implementations ----------------------------------------------------------------

class ProjectionHead(nn.Module):
    """(B, embedding_dim) -> (B, projection_dim): one Linear layer, then L2 normalisation of each row."""

    def __init__(self, embedding_dim, projection_dim=EMBED_DIM):
        super().__init__()
        self.projection = nn.Linear(embedding_dim, projection_dim)

    def forward(self, x):
        return F.normalize(self.projection(x), dim=-1)  # (B, projection_dim), unit rows


def clip_loss(image_embeddings: torch.Tensor, text_embeddings: torch.Tensor, temperature: float = TEMPERATURE):
    """Symmetric InfoNCE (equations 1-3): normalise, logits = I T^T / tau, cross-entropy both ways, average."""
    image_embeddings = F.normalize(image_embeddings, dim=-1)  # (N, E)
    text_embeddings = F.normalize(text_embeddings, dim=-1)  # (N, E)
    logits = image_embeddings @ text_embeddings.T / temperature  # (N, N): row i = image i against every text
    labels = torch.arange(logits.shape[0], device=logits.device)  # (N,): pair i matches pair i
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


class CLIPModel(nn.Module):
    """Image and text towers with projection heads into one space, trained with :func:`clip_loss`."""

    def __init__(self, image_encoder, text_encoder, embed_dim=EMBED_DIM, temperature=TEMPERATURE):
        super().__init__()
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder.requires_grad_(False)  # frozen
        self.image_projection = ProjectionHead(image_encoder.out_dim, embed_dim)
        self.text_projection = ProjectionHead(text_encoder.out_dim, embed_dim)
        self.temperature = temperature

    def encode_image(self, images):
        return F.normalize(self.image_projection(self.image_encoder(images)), dim=-1)  # (B, E)

    def encode_text_features(self, text_features):
        return F.normalize(self.text_projection(text_features), dim=-1)  # (B, E)

    def contrastive_loss(self, image_embeddings, text_embeddings):
        return clip_loss(image_embeddings, text_embeddings, self.temperature)

    def forward(self, images, text_features):
        return self.contrastive_loss(self.encode_image(images), self.encode_text_features(text_features))


def retrieve_images(model, image_embeddings, query, image_filenames, k=9):
    """The k file names whose image embeddings have the highest cosine similarity with ``query``, best first."""
    with torch.no_grad():
        text_features = model.text_encoder([query])  # (1, text_dim)
        query_embedding = model.encode_text_features(text_features.to(image_embeddings.device))  # (1, E)
    scores = F.normalize(image_embeddings, dim=-1) @ F.normalize(query_embedding, dim=-1).squeeze(0)  # (N,)
    return [image_filenames[i] for i in scores.topk(k).indices.tolist()]


def _retrieval_model(inputs: dict):
    model = probes.RigRetrievalModel(inputs["vocab"], int(inputs["text_dim"]), int(inputs["embed_dim"]))
    return probes.load_params(model, inputs["model"]).eval()


def reference_topk(inputs: dict, embeddings: torch.Tensor, query: str, k: int) -> list:
    """The reference :func:`retrieve_images` with the grader's retrieval model."""
    return retrieve_images(_retrieval_model(inputs), embeddings, query, list(inputs["filenames"]), k)


# ---- variants used to name a likely mistake ------------------------------------------------------

def _loss_variants(i: torch.Tensor, t: torch.Tensor, tau: float) -> dict:
    """What the classic mistakes compute, so that a failure message can name the one that matches."""
    labels = torch.arange(i.shape[0])
    ni, nt = F.normalize(i, dim=-1), F.normalize(t, dim=-1)

    def sym(logits):
        return float((F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2)

    return {
        "you multiply the similarities by the temperature instead of dividing by it": sym(ni @ nt.T * tau),
        "you do not L2-normalise the embeddings before the dot products": sym(i @ t.T / tau),
        "you use only the image-to-text direction (equation 1) instead of averaging it with equation 3":
            float(F.cross_entropy(ni @ nt.T / tau, labels)),
        "you use only the text-to-image direction (equation 3) instead of averaging it with equation 1":
            float(F.cross_entropy(nt @ ni.T / tau, labels)),
        "you add the two directions instead of averaging them": 2 * sym(ni @ nt.T / tau),
        "you leave out the temperature": sym(ni @ nt.T),
        "you use a fixed temperature of 0.07 instead of self.temperature": sym(ni @ nt.T / TEMPERATURE),
        "your targets are all 0 (every image matched to the first caption): the matching pairs lie on the "
        "diagonal, so the targets are torch.arange(batch_size)":
            float((F.cross_entropy(ni @ nt.T / tau, torch.zeros_like(labels))
                   + F.cross_entropy(nt @ ni.T / tau, torch.zeros_like(labels))) / 2),
        "you apply softmax to the logits before F.cross_entropy, which applies its own log-softmax: pass the "
        "logits themselves": float((F.cross_entropy((ni @ nt.T / tau).softmax(dim=1), labels)
                                     + F.cross_entropy((nt @ ni.T / tau).softmax(dim=1), labels)) / 2),
    }


def _close(a: float, b: float, tol: float = TOL) -> bool:
    return abs(a - b) <= tol + tol * abs(b)


def _likely_mistake(value: float, i, t, tau: float) -> str:
    for mistake, v in _loss_variants(i, t, tau).items():
        if _close(value, v, 1e-4) and not _close(value, float(clip_loss(i, t, tau)), 1e-4):
            return f" It looks like {mistake}."
    return ""


def raw_dot_topk(inputs: dict, embeddings: torch.Tensor, query: str, k: int) -> list:
    """The top-k of a retrieval that forgets to normalise the image embeddings."""
    model = _retrieval_model(inputs)
    with torch.no_grad():
        q = model.encode_text_features(model.text_encoder([query]))  # (1, E)
    scores = embeddings @ q.squeeze(0)  # (N,)
    return [inputs["filenames"][i] for i in scores.topk(k).indices.tolist()]


# ---- judges -----------------------------------------------------------------------------------

class ProjectionHeadChecks(CheckNames):
    SHAPE = "ProjectionHead output shape"
    NORMALISED = "ProjectionHead output is L2-normalised"
    SINGLE_LINEAR = "ProjectionHead is a single Linear layer"
    COMPUTES = "ProjectionHead computes normalize(Linear(x))"


def judge_projection_head(obs: dict, inputs: dict) -> list:
    x = inputs["x"]
    e, p = int(inputs["embedding_dim"]), int(inputs["projection_dim"])
    out = obs.get("output")
    if not torch.is_tensor(out):
        raise ValueError("ProjectionHead returned no tensor")
    params = tensor_list(obs.get("params"), "ProjectionHead's parameters")
    default_shape = tuple(obs.get("default_output_shape") or ())
    shape_ok = tuple(out.shape) == (x.shape[0], p) and default_shape == (x.shape[0], EMBED_DIM)
    results = [check(
        ProjectionHeadChecks.SHAPE, 0.25, shape_ok,
        expected=f"({x.shape[0]}, {p}) from ProjectionHead({e}, {p}) and ({x.shape[0]}, {EMBED_DIM}) from "
                 f"ProjectionHead({e}) on an input of shape {fmt_shape(x.shape)}",
        obtained=f"{fmt_shape(out.shape)} and " + (fmt_shape(default_shape) if default_shape else
                                                  str(obs.get("default_error", "no output"))),
        hint=f"The layer maps embedding_dim to projection_dim, and projection_dim defaults to {EMBED_DIM}.")]
    results.append(check(
        ProjectionHeadChecks.NORMALISED, 0.25, unit_rows(out),
        expected="every output row to have L2 norm 1", obtained=row_norms(out) if out.ndim == 2 else fmt_shape(out.shape),
        hint="Normalise each row (dim=-1), e.g. with F.normalize(x, dim=-1); not the whole batch."))
    shapes = [tuple(q.shape) for q in params]
    single_linear = shapes in ([(p, e), (p,)], [(p, e)])
    results.append(check(
        ProjectionHeadChecks.SINGLE_LINEAR, 0.25, shapes == [(p, e), (p,)],
        expected=f"the parameters of one nn.Linear({e}, {p}): weight ({p}, {e}) and bias ({p},)",
        obtained=layer_shapes(params) + (" (a Linear layer without its bias)" if shapes == [(p, e)] else ""),
        hint=("The notebook's head is nn.Linear(embedding_dim, projection_dim) with its bias (bias=True, the "
              "default)." if shapes == [(p, e)] else
              "The course's head is one linear layer followed by L2 normalisation (no hidden layer).")))
    if single_linear:
        expected = F.normalize(x @ params[0].T + (params[1] if len(params) == 2 else 0), dim=-1)  # (B, p)
        same = tuple(out.shape) == tuple(expected.shape) and torch.allclose(out, expected, atol=1e-5, rtol=1e-4)
        detail = "the same shape but different values" if tuple(out.shape) == tuple(expected.shape) else fmt_shape(out.shape)
        results.append(check(
            ProjectionHeadChecks.COMPUTES, 0.25, same,
            expected="the L2-normalised output of your Linear layer", obtained=detail,
            hint="Apply the Linear layer, then divide each row by its L2 norm; no activation in between."))
    else:
        results.append(check(ProjectionHeadChecks.COMPUTES, 0.25, False,
                             expected=f"one Linear({e}, {p}) whose output is L2-normalised",
                             obtained=f"layers {layer_shapes(params)}"))
    return results


def _value(obs_losses: dict, which: str, index: int) -> float:
    return float(tensor_list(obs_losses[which], f"the losses at the {which} temperature")[index].reshape(-1)[0])


def _head_hint(obs: dict, inputs: dict) -> str:
    """What a failed encode_image / encode_text_features most likely got wrong, from the heads' sizes."""
    dims = {"image": int(inputs["image_dim"]), "text": int(inputs["text_dim"])}
    stage = obs.get("encode_stage")
    side = {"encode_image": "image", "encode_text_features": "text"}.get(stage)
    if side is None:
        return ""
    other = "text" if side == "image" else "image"
    shapes = obs.get("head_shapes") if isinstance(obs.get("head_shapes"), dict) else {}
    weight = next((s for s in shapes.get(f"{side}_projection") or [] if isinstance(s, list) and len(s) == 2), None)
    if weight is not None and int(weight[1]) != dims[side]:
        return (f"{side}_projection takes {int(weight[1])} input features, but the {side} encoder gives "
                f"{side}_encoder.out_dim = {dims[side]}: build it as ProjectionHead({side}_encoder.out_dim, embed_dim).")
    return (f"{stage} failed on {side} features of width {side}_encoder.out_dim = {dims[side]}: project them with "
            f"self.{side}_projection (self.{other}_projection takes {other}_encoder.out_dim = {dims[other]} features).")


class CLIPModelChecks(CheckNames):
    EMBEDDINGS = "encode_image and encode_text_features"
    TEMPERATURE = "contrastive_loss divides the similarities by the temperature"
    NORMALISES = "contrastive_loss L2-normalises both embeddings"
    SYMMETRIC = "contrastive_loss is symmetric (both directions averaged)"
    EQUATIONS = "loss equals equations 1-3"
    TEXT_FROZEN = "the text encoder stays frozen"
    STEP_UPDATES = "a training step updates the image encoder and both heads"


def judge_clip_model(obs: dict, inputs: dict) -> list:
    results = []
    n, d = inputs["images"].shape[0], int(inputs["embed_dim"])

    # Embeddings.
    if "encode_error" in obs:
        results.append(check(CLIPModelChecks.EMBEDDINGS, 0.25, False, obtained=obs["encode_error"],
                             hint=_head_hint(obs, inputs)))
    else:
        img, txt = obs["image_emb"], obs["text_emb"]
        shapes = (tuple(img.shape), tuple(txt.shape), tuple(obs.get("default_image_shape") or ()),
                  tuple(obs.get("default_text_shape") or ()))
        want = ((n, d), (n, d), (n, EMBED_DIM), (n, EMBED_DIM))
        ok = shapes == want and unit_rows(img) and unit_rows(txt)
        obtained = (f"shapes {', '.join(fmt_shape(s) for s in shapes)}" if shapes != want else
                    f"image {row_norms(img)}, text {row_norms(txt)}")
        results.append(check(
            CLIPModelChecks.EMBEDDINGS, 0.25, ok,
            expected=f"L2-normalised embeddings of shape ({n}, {d}) with embed_dim={d}, and ({n}, {EMBED_DIM}) "
                     f"with the default embed_dim (shapes {', '.join(fmt_shape(s) for s in want)})",
            obtained=obtained,
            hint="Build the heads as ProjectionHead(image_encoder.out_dim, embed_dim) and "
                 "ProjectionHead(text_encoder.out_dim, embed_dim); both encode methods return unit rows."))

    # The loss on grader-chosen embeddings.
    pairs = inputs["loss_pairs"]
    tau2 = float(inputs["other_temperature"])
    if "loss_error" in obs or "losses" not in obs:
        msg = obs.get("loss_error", "contrastive_loss was not run")
        results += [check(name, 0.25, False, obtained=msg)
                    for name in (CLIPModelChecks.TEMPERATURE, CLIPModelChecks.NORMALISES, CLIPModelChecks.SYMMETRIC)]
    else:
        losses = obs["losses"]
        e, e2 = pairs[0]
        got, got2 = _value(losses, "default", 0), _value(losses, "other", 0)
        ref, ref2 = float(clip_loss(e, e2, TEMPERATURE)), float(clip_loss(e, e2, tau2))
        ok = _close(got, ref) and _close(got2, ref2)
        if not _close(got, ref):
            obtained, mistake = f"{got:.6f}, not that loss, with tau = {TEMPERATURE}", _likely_mistake(got, e, e2, TEMPERATURE)
        else:
            obtained, mistake = f"{got2:.6f}, not that loss, with tau = {tau2}", _likely_mistake(got2, e, e2, tau2)
        results.append(check(
            CLIPModelChecks.TEMPERATURE, 0.25, ok,
            expected=f"the symmetric InfoNCE loss with tau = {TEMPERATURE} and with CLIPModel(..., temperature={tau2}) "
                     f"on pairs whose image and text embeddings are equal unit vectors",
            obtained=obtained, hint=(mistake or " Compute logits = I @ T.T / self.temperature.").strip()))

        scaled = _value(losses, "default", 1)
        ok = _close(scaled, got)
        mistake = _likely_mistake(scaled, *pairs[1], TEMPERATURE)
        results.append(check(
            CLIPModelChecks.NORMALISES, 0.25, ok,
            expected=f"the same loss as for the unit vectors ({got:.6f}) when each embedding is multiplied by a "
                     f"positive number",
            obtained=f"{scaled:.6f}",
            hint=(mistake or " L2-normalise both embeddings inside the loss (F.normalize(x, dim=-1)).").strip()))

        forward, swapped = _value(losses, "default", 2), _value(losses, "default", 3)
        ok = _close(forward, swapped)
        mistake = _likely_mistake(forward, *pairs[2], TEMPERATURE)
        results.append(check(
            CLIPModelChecks.SYMMETRIC, 0.25, ok,
            expected="contrastive_loss(I, T) == contrastive_loss(T, I) (the average of equations 1 and 3)",
            obtained=f"{forward:.6f} and {swapped:.6f}",
            hint=(mistake or " Average the cross-entropy over rows (image to text) and columns (text to image).").strip()))

    # Equations 1-3 on random embeddings, and forward() on the model's own embeddings.
    problems = []
    if "losses" in obs:
        for index in (4, 5):
            got = _value(obs["losses"], "default", index)
            i, t = pairs[index]
            ref = float(clip_loss(i, t, TEMPERATURE))
            if not _close(got, ref):
                problems.append(f"{got:.6f}, not the loss of equations 1-3, on random embeddings of shape "
                                f"{fmt_shape(i.shape)}."
                                + _likely_mistake(got, i, t, TEMPERATURE))
    else:
        problems.append(str(obs.get("loss_error", "contrastive_loss was not run")))
    if "forward" in obs:
        got = float(obs["forward"].reshape(-1)[0])
        ref = float(clip_loss(obs["image_emb"], obs["text_emb"], TEMPERATURE))
        if not obs.get("forward_is_scalar"):
            problems.append("forward(images, text_features) did not return a scalar tensor (0-d).")
        if not _close(got, ref):
            problems.append(f"forward(images, text_features) gave {got:.6f}, not the loss of equations 1-3 on your "
                            f"own encode_image / encode_text_features embeddings.")
    else:
        problems.append(str(obs.get("encode_error", "forward was not run")))
    results.append(check(CLIPModelChecks.EQUATIONS, 0.5, not problems,
                         expected=f"the symmetric InfoNCE loss of equations 1-3 (tau = {TEMPERATURE}, tolerance {TOL:g})",
                         obtained=" ".join(problems).rstrip(".")))

    # One training step.
    step = obs.get("step")
    if not isinstance(step, dict):
        msg = str(obs.get("step_error", "no training step was run"))
        results += [check(CLIPModelChecks.TEXT_FROZEN, 0.25, False, obtained=msg),
                    check(CLIPModelChecks.STEP_UPDATES, 0.25, False, obtained=msg)]
        return results
    text_after = tensor_list(step.get("text_encoder"), "the text encoder's parameters")
    frozen = len(text_after) == len(inputs["text_encoder"]) and all(
        torch.equal(p, q) for p, q in zip(text_after, inputs["text_encoder"]))
    results.append(check(
        CLIPModelChecks.TEXT_FROZEN, 0.25, frozen,
        expected="the text encoder's weights to stay bit-identical after an optimiser step over the model's "
                 "trainable parameters", obtained="weights that changed",
        hint="Freeze the text encoder in __init__: text_encoder.requires_grad_(False)."))
    image_after = tensor_list(step.get("image_encoder"), "the image encoder's parameters")
    image_changed = any(not torch.equal(p, q) for p, q in zip(image_after, inputs["image_encoder"]))
    heads = [any(not torch.equal(p, q) for p, q in zip(tensor_list(step.get(f"{h}_before"), h),
                                                        tensor_list(step.get(f"{h}_after"), h)))
             for h in ("image_head", "text_head")]
    unchanged = [w for w, c in zip(("the image encoder", "image_projection", "text_projection"),
                                   [image_changed] + heads) if not c]
    results.append(check(
        CLIPModelChecks.STEP_UPDATES, 0.25, not unchanged,
        expected="the image encoder, image_projection and text_projection to change after one optimiser step",
        obtained=f"{', '.join(unchanged)} did not change",
        hint="Only the text encoder is frozen; the loss must flow through image_encoder and both heads "
             "(no torch.no_grad() or .detach() around them)."))
    return results


def _format_ok(lists, k: int, filenames: set) -> bool:
    return all(len(r) == k and all(isinstance(n, str) and n in filenames for n in r) for r in lists)


class RetrieveImagesChecks(CheckNames):
    FORMAT = "retrieve_images returns k file names"
    BEST = "retrieve_images returns the best matches, best first"
    NORMALISES = "retrieve_images L2-normalises the image embeddings"


def judge_retrieve_images(obs: dict, inputs: dict) -> list:
    filenames = set(inputs["filenames"])
    queries, small_k = inputs["queries"], int(inputs["small_k"])
    errors = [obs[k] for k in ("default_k_error", "small_k_error", "scaled_error") if k in obs]
    default, small, scaled = obs.get("default_k"), obs.get("small_k"), obs.get("scaled")
    fmt = default is not None and small is not None and _format_ok(default, 9, filenames) \
        and _format_ok(small, small_k, filenames)
    sample = (default or small or scaled or [["<nothing>"]])[0]
    results = [check(
        RetrieveImagesChecks.FORMAT, 0.25, fmt,
        expected=f"a list of k file names taken from image_filenames (9 with the default k, {small_k} with k={small_k})",
        obtained=errors[0] if errors and not fmt else f"{len(sample)} items, e.g. {sample[:3]}",
        hint="Return [image_filenames[i] for i in top_indices]: names, not indices or scores.")]
    unit = inputs["unit_embeddings"]
    want_default = [reference_topk(inputs, unit, q, 9) for q in queries]
    want_small = [reference_topk(inputs, unit, q, small_k) for q in queries]
    best = default == want_default and small == want_small
    if default is None or small is None:
        obtained = errors[0] if errors else "no result"
    else:
        q, g, w = next(((q, g, w) for q, g, w in zip(queries, default + small, want_default + want_small) if g != w),
                       (queries[0], [], []))
        same_set = sorted(g) == sorted(w)
        obtained = f"{g} for {q!r}" + (": the right images in the wrong order (best first)" if same_set
                                       else ": not the images with the highest similarities")
    results.append(check(
        RetrieveImagesChecks.BEST, 0.5, best,
        expected="the k images with the highest cosine similarity to the query, best first", obtained=obtained,
        hint="Encode the query with model.text_encoder, project it with model.encode_text_features, and take "
             "torch.topk of the similarities."))
    want_scaled = [reference_topk(inputs, inputs["scaled_embeddings"], q, 9) for q in queries]
    raw = [raw_dot_topk(inputs, inputs["scaled_embeddings"], q, 9) for q in queries]
    ok = scaled == want_scaled
    if scaled is None:
        obtained = obs.get("scaled_error", "no result")
    else:
        obtained = f"{scaled[0]} for {queries[0]!r}" + (
            ": the ranking by raw dot products, as if the image embeddings were not normalised" if scaled == raw else "")
    results.append(check(
        RetrieveImagesChecks.NORMALISES, 0.25, ok,
        expected=f"the 9 images with the highest cosine similarity to {queries[0]!r} when the image embeddings have "
                 f"different norms",
        obtained=obtained, hint="Normalise the image embeddings (F.normalize(image_embeddings, dim=-1)) "
                                "before the dot products."))
    return results

