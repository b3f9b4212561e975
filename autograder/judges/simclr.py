"""Problem set "simclr": the reference implementation, the check names and the judges of nt_xent_loss, SimCLR and
dunn_index (the judge of augment, longer, is in ``judges/simclr_augment.py``).

The judges recompute what the notebook's text promises independently of the reference where it matters: NT-Xent
from its definition, row by row, in float64; Dunn's index from its definition, cluster pair by cluster pair.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..core import CheckNames, check, fmt_shape
from .common import tensor_list

# The two settings of augment, as the notebook states them (the Keras example the report follows: minimum crop area
# 0.75 / 0.25, brightness 0.3 / 0.6, jitter 0.1 / 0.2).
STRENGTHS = {
    "weak": dict(scale=(0.75, 1.0), ratio=(3 / 4, 4 / 3), brightness=0.3, jitter=0.1, noise=0.02, flip=0.5),
    "strong": dict(scale=(0.25, 1.0), ratio=(3 / 4, 4 / 3), brightness=0.6, jitter=0.2, noise=0.05, flip=0.5),
}
GREY = (0.299, 0.587, 0.114)


def _grey(x: torch.Tensor) -> torch.Tensor:
    w = torch.tensor(GREY, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def augment(images: torch.Tensor, strength: str = "strong") -> torch.Tensor:
    """Reference: random resized crop and horizontal flip sampled for the whole batch at once (a crop without
    rotation is separable: one row and one column of sampling coordinates per image), then brightness, contrast and
    saturation as one 3x3 colour matrix and offset per image, noise, clipping."""
    p = STRENGTHS[strength]
    b, c, h, w = images.shape
    dev, dt = images.device, images.dtype
    u = lambda lo, hi: torch.empty(b, device=dev, dtype=dt).uniform_(lo, hi)  # noqa: E731
    area = u(*p["scale"])
    ratio = u(math.log(p["ratio"][0]), math.log(p["ratio"][1])).exp()
    cw, ch = (area * ratio).sqrt().clamp(max=1.0), (area / ratio).sqrt().clamp(max=1.0)
    cx, cy = (torch.rand(b, device=dev, dtype=dt) * 2 - 1) * (1 - cw), (torch.rand(b, device=dev, dtype=dt) * 2 - 1) * (1 - ch)
    sx = torch.where(torch.rand(b, device=dev) < p["flip"], -cw, cw)
    xs = (torch.arange(w, device=dev, dtype=dt) * 2 + 1) / w - 1  # pixel centres in [-1, 1]
    ys = (torch.arange(h, device=dev, dtype=dt) * 2 + 1) / h - 1
    gx = (cx[:, None] + sx[:, None] * xs).view(b, 1, w).expand(b, h, w)
    gy = (cy[:, None] + ch[:, None] * ys).view(b, h, 1).expand(b, h, w)
    x = F.grid_sample(images, torch.stack([gx, gy], -1), mode="bilinear", padding_mode="border", align_corners=False)
    # brightness k, contrast cf around the mean grey level m, saturation sf around each pixel's grey level:
    # x -> sf * (cf * k x + (1 - cf) m) + (1 - sf) * grey(...), linear in x: A x + o per image
    k, cf, sf = u(1 - p["brightness"], 1 + p["brightness"]), u(1 - p["jitter"], 1 + p["jitter"]), \
        u(1 - p["jitter"], 1 + p["jitter"])
    wg = torch.tensor(GREY, dtype=dt, device=dev)
    m = k * (x.mean((2, 3)) @ wg)  # (B,) mean grey level after the brightness factor
    eye = torch.eye(3, dtype=dt, device=dev)
    mix = sf.view(b, 1, 1) * eye + (1 - sf).view(b, 1, 1) * wg.view(1, 1, 3)  # saturation: (B, 3, 3)
    a = (cf * k).view(b, 1, 1) * mix
    o = ((1 - cf) * m).view(b, 1) * mix.sum(2)  # (B, 3): the contrast's offset m * (1, 1, 1) through the mix
    x = torch.baddbmm(o.unsqueeze(2), a, x.reshape(b, c, h * w)).view(b, c, h, w)
    return x.clamp_(0, 1).add_(torch.randn_like(x), alpha=p["noise"]).clamp_(0, 1)


def nt_xent_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = z1.shape[0]
    sim = (z @ z.T / temperature).masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(sim, targets)


class SimCLR(nn.Module):
    def __init__(self, width: int = 128, projection_dim: int = 64, encoder: nn.Module | None = None):
        super().__init__()
        conv = lambda cin: nn.Conv2d(cin, width, 3, stride=2, padding=1)  # noqa: E731
        self.encoder = encoder if encoder is not None else nn.Sequential(
            conv(3), nn.ReLU(), nn.MaxPool2d(2), conv(width), nn.ReLU(), nn.MaxPool2d(2),
            conv(width), nn.ReLU(), nn.MaxPool2d(2), conv(width), nn.ReLU(),
            nn.Flatten(), nn.Linear(width, width), nn.ReLU())
        self.projection_head = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, projection_dim))

    def forward(self, x1, x2):
        return self.projection_head(self.encoder(x1)), self.projection_head(self.encoder(x2))


def dunn_index(features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    d = torch.cdist(features, features)
    same = labels[:, None] == labels[None, :]
    return d[~same].min() / d[same].max()


def close(a: float, b: float, rtol: float = 1e-4) -> bool:
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= rtol * max(1.0, abs(b))


# ---- nt_xent_loss -----------------------------------------------------------------------------------------------

def nt_xent_definition(z1, z2, temperature) -> float:
    """NT-Xent from its definition, one anchor at a time, in float64 (independent of the reference)."""
    z = torch.cat([z1, z2]).double()
    z = z / z.norm(dim=1, keepdim=True)
    n2, n = z.shape[0], z1.shape[0]
    total = 0.0
    for i in range(n2):
        j = (i + n) % n2
        logits = [float(z[i] @ z[k]) / temperature for k in range(n2) if k != i]
        pos = float(z[i] @ z[j]) / temperature
        top = max(logits)
        total += -(pos - top - math.log(sum(math.exp(v - top) for v in logits)))
    return total / n2


def _loss_variants(z1, z2, t) -> dict:
    z1, z2 = z1.double(), z2.double()
    n = z1.shape[0]
    zn = F.normalize(torch.cat([z1, z2]), dim=1)
    raw = torch.cat([z1, z2])
    eye = torch.eye(2 * n, dtype=torch.bool)
    pos = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])

    def ce(sim, targets=pos, mask=True, reduction="mean"):
        sim = sim.masked_fill(eye, float("-inf")) if mask else sim
        return F.cross_entropy(sim, targets, reduction=reduction)

    s = zn @ zn.T
    a, b = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    keras = (F.cross_entropy(a @ b.T / t, torch.arange(n)) + F.cross_entropy(b @ a.T / t, torch.arange(n))) / 2
    return {
        "the self-similarity is left in (mask the diagonal of the 2N x 2N matrix with -inf)": ce(s / t, mask=False),
        "the positives sit on the wrong diagonal (the positive of row i is row i + N, and of row i + N row i)":
            ce(s / t, (pos + 1) % (2 * n)),
        "the vectors are not L2-normalised (cosine similarity needs F.normalize first)": ce(raw @ raw.T / t),
        "the similarities are multiplied by the temperature instead of divided": ce(s * t),
        "the temperature is ignored": ce(s),
        "only one direction is counted (the rows of z1 only, not those of z2)": ce(s / t, reduction="none")[:n].mean(),
        "the loss is summed, not averaged over the 2N rows": ce(s / t, reduction="sum"),
        "the sum over the 2N rows is divided by N instead of 2N": ce(s / t, reduction="sum") / n,
        "the negatives come from the other view only (the N x N form of the Keras example, not the 2N x 2N one)":
            keras,
    }


def loss_mistake(value: float, case: list, t: float) -> str:
    right = nt_xent_definition(*case, t)
    for mistake, v in _loss_variants(*case, t).items():
        if close(value, float(v)) and not close(value, right):
            return f"It looks like {mistake}. "
    return ""


class NTXentChecks(CheckNames):
    SCALAR = "nt_xent_loss returns a scalar tensor"
    VALUE = "nt_xent_loss equals NT-Xent over the 2N x 2N cosine similarities"
    TEMPERATURE = "nt_xent_loss divides the similarities by the temperature given"
    SHAPES = "nt_xent_loss works for any batch size and dimension"
    GRADIENTS = "gradients flow through nt_xent_loss to z1 and z2"
    LOOPS = "nt_xent_loss has no Python loop over the batch"


def judge_nt_xent_loss(obs: dict, inputs: dict) -> list:
    cases, temps = inputs["cases"], [float(t) for t in inputs["temperatures"]]
    values = tensor_list(obs.get("values"), "the losses")
    errors = obs.get("errors") or {}
    scalar = [bool(s) for s in obs.get("scalar") or []]
    results = [check(NTXentChecks.SCALAR, 0.1, len(scalar) == len(cases) and all(scalar) and not errors,
                     expected="a 0-d tensor (one number) for every batch",
                     obtained=f"{sum(1 for s in scalar if not s)} of {len(cases)} results were not 0-d tensors"
                     + (f" ({next(iter(errors.values()))})" if errors else ""),
                     hint="Average the 2N per-row losses (F.cross_entropy does); do not call .item().")]

    def compare(indices):
        for i in indices:
            want = nt_xent_definition(*cases[i], temps[i])
            if str(i) in errors:
                return f"{errors[str(i)]} (expected {want:.4f})"
            got = values[i]
            if got.numel() != 1:
                return f"a tensor of shape {fmt_shape(got.shape)}, not one number (expected {want:.4f})"
            got = float(got.reshape(-1)[0])
            if not close(got, want):
                n, d = cases[i][0].shape
                return (f"{got:.4f} instead of {want:.4f} for N={n} pairs of dimension {d} at temperature "
                        f"{temps[i]:g}. " + loss_mistake(got, cases[i], temps[i]))
        return ""

    main, temp, other = compare(inputs["main"]), compare(inputs["other_temperatures"]), compare(inputs["other_shapes"])
    results += [
        check(NTXentChecks.VALUE, 0.35, not main, expected="the mean over the 2N rows of -log softmax of the positive's "
              "similarity among the 2N - 1 others, similarities cos(z_i, z_k) / temperature (relative tolerance 1e-4)",
              obtained=main, hint="Normalise, stack both views (2N rows), z @ z.T / temperature, mask the diagonal, "
              "targets i + N for row i and i for row i + N, F.cross_entropy."),
        check(NTXentChecks.TEMPERATURE, 0.15, not temp, expected="the same formula at temperatures 0.5 and 1.0",
              obtained=temp, hint="Divide the cosine similarities by the temperature argument."),
        check(NTXentChecks.SHAPES, 0.1, not other, expected="the same formula for N = 1, an odd N and other dimensions",
              obtained=other, hint="Take N from z1.shape[0]; build the mask and targets from it."),
    ]
    grads = obs.get("grads")
    if grads is not None:
        grads = tensor_list(grads, "the gradients")
        z1, z2 = (t.clone().requires_grad_(True) for t in cases[inputs["grad_case"]])
        nt_xent_loss(z1, z2, temps[inputs["grad_case"]]).backward()
        finite = all(bool(torch.isfinite(g).all()) for g in grads)
        nonzero = len(grads) == 2 and all(bool(g.abs().max() > 0) for g in grads)
        same = len(grads) == 2 and all(g.shape == w.shape and torch.allclose(g, w, atol=1e-5, rtol=1e-3)
                                       for g, w in zip(grads, (z1.grad, z2.grad)))
        ok, obtained = finite and nonzero and (same or bool(main)), (
            "gradients that are not finite" if not finite else "a zero gradient for z1 or z2" if not nonzero
            else "gradients that differ from those of NT-Xent")
    else:
        ok, obtained = False, str(obs.get("grad_error", "no gradients"))
    results.append(check(NTXentChecks.GRADIENTS, 0.15, ok, expected="loss.backward() to reach z1 and z2",
                         obtained=obtained, hint="Use torch operations only (no .item(), .detach() or numpy)."))
    ops = obs.get("ops") or {}
    small, large = ops.get("small"), ops.get("large")
    ok = isinstance(small, int) and isinstance(large, int) and large <= small + 8
    results.append(check(NTXentChecks.LOOPS, 0.15, ok, expected="as many tensor operations for N=64 as for N=4 "
                         "(one matrix of similarities for the whole batch)",
                         obtained=(f"{small} tensor operations for N=4 and {large} for N=64" if ops
                                   else str(obs.get("ops_error", "no count"))),
                         hint="Replace the loop over rows by one 2N x 2N matrix product, a masked diagonal and "
                              "F.cross_entropy."))
    return results


# ---- SimCLR -----------------------------------------------------------------------------------------------------

SIZES = ((128, 64), (32, 16))  # (width, projection_dim) the grader builds


def parameter_count(width: int, projection_dim: int) -> int:
    return sum(p.numel() for p in SimCLR(width, projection_dim).parameters())


class SimCLRChecks(CheckNames):
    PARAMS = "SimCLR has the stated layers (parameter count and shapes)"
    ENCODER = "SimCLR.encoder maps images to (B, width) features as the report's 4 conv layers do"
    HEAD = "SimCLR.projection_head is Linear, ReLU, Linear"
    FORWARD = "SimCLR.forward returns the projections of both views"
    SIZES = "SimCLR works for 64x64 and 96x96 images"


def _reference(width: int, projection_dim: int, weights: dict) -> SimCLR:
    from course_utils.probes.simclr import load_parts

    model = SimCLR(width, projection_dim).eval()
    load_parts(model, weights)
    return model


def judge_simclr(obs: dict, inputs: dict) -> list:
    problems = {k: [] for k in ("params", "encoder", "head", "forward", "sizes")}
    for (width, pdim), weights, x64, x96 in zip(inputs["sizes"], inputs["weights"], inputs["x64"], inputs["x96"]):
        key = f"{width}x{pdim}"
        seen = (obs.get("sizes") or {}).get(key) or {"error": "no observations"}
        label = f"SimCLR(width={width}, projection_dim={pdim})"
        if seen.get("error"):
            for k in problems:
                problems[k].append(f"{label}: {seen['error']}")
            continue
        shapes = [fmt_shape(s) for s in seen.get("shapes", [])]
        want = [fmt_shape(p.shape) for p in SimCLR(width, pdim).parameters()]
        if sorted(shapes) != sorted(want) or not seen.get("loaded"):
            got, need = sum(seen.get("sizes_n", [0])), parameter_count(width, pdim)
            problems["params"].append(f"{label}: {got:,} parameters (expected {need:,}); shapes {', '.join(shapes)} "
                                      f"(expected {', '.join(want)})")
            continue
        ref = _reference(width, pdim, weights)
        with torch.no_grad():
            feats = ref.encoder(x64)
            proj = ref.projection_head(feats)
            z1, z2 = ref(x64, x96)

        def same(name, want_t, what, bucket):
            got = seen.get(name)
            if not torch.is_tensor(got):
                problems[bucket].append(f"{label}: {what} gave "
                                        f"{seen.get(name + '_kind') or seen.get(name + '_error') or 'nothing'}")
            elif got.shape != want_t.shape:
                problems[bucket].append(f"{label}: {what} has shape {fmt_shape(got.shape)}, expected "
                                        f"{fmt_shape(want_t.shape)}")
            elif not torch.allclose(got, want_t, atol=1e-4, rtol=1e-3):
                problems[bucket].append(f"{label}: {what} differs from the stated layers' output by up to "
                                        f"{(got - want_t).abs().max().item():.3g} with the grader's weights")
        same("features", feats, "encoder(64x64 images)", "encoder")
        same("head", proj, "projection_head(features)", "head")
        out = seen.get("forward")
        if not isinstance(out, list) or len(out) != 2:
            problems["forward"].append(f"{label}: forward(x1, x2) returned {seen.get('forward_kind', 'nothing')}, "
                                       "expected a pair (z1, z2)")
        else:
            for got, w, name in zip(out, (z1, z2), ("z1 (64x64 views)", "z2 (96x96 views)")):
                if torch.is_tensor(got) and got.shape == w.shape and torch.allclose(got, w, atol=1e-4, rtol=1e-3):
                    continue
                features = torch.is_tensor(got) and got.ndim == 2 and got.shape[-1] == width and width != pdim
                hint = " (these are the encoder's features: apply the projection head)" if features else ""
                if not torch.is_tensor(got) or got.shape != w.shape:
                    what = f"shape {fmt_shape(got.shape)}" if torch.is_tensor(got) else "no tensor"
                    problems["forward"].append(f"{label}: {name} is {what}, expected the projections of shape "
                                               f"{fmt_shape(w.shape)}{hint}")
                else:
                    problems["forward"].append(f"{label}: {name} differs from projection_head(encoder(x))")
                break
        f96 = seen.get("features96")
        if not torch.is_tensor(f96) or tuple(f96.shape) != (x96.shape[0], width):
            problems["sizes"].append(f"{label}: encoder(96x96 images) gave "
                                     f"{fmt_shape(f96.shape) if torch.is_tensor(f96) else seen.get('features96_error', 'nothing')}")
    msg = lambda k: "; ".join(problems[k][:2])  # noqa: E731
    return [
        check(SimCLRChecks.PARAMS, 0.2, not problems["params"], expected="the parameters of 4 Conv2d(kernel 3, stride 2, "
              "padding 1) of `width` channels, Linear(width, width) in the encoder and Linear(width, width), "
              f"Linear(width, projection_dim) in the head ({parameter_count(128, 64):,} for the defaults)",
              obtained=msg("params"), hint="See the table of layers in Part 3."),
        check(SimCLRChecks.ENCODER, 0.25, not problems["encoder"] and not problems["params"], expected="conv, ReLU, "
              "max-pool (x3), conv, ReLU, flatten, Linear, ReLU", obtained=msg("encoder") or msg("params"),
              hint="Every conv is followed by a ReLU, the first three by MaxPool2d(2); the encoder ends with a ReLU."),
        check(SimCLRChecks.HEAD, 0.2, not problems["head"] and not problems["params"], expected="Linear, ReLU, Linear "
              "(nothing after the last Linear)", obtained=msg("head") or msg("params"),
              hint="Without the ReLU the head is one linear map."),
        check(SimCLRChecks.FORWARD, 0.2, not problems["forward"] and not problems["params"],
              expected="(projection_head(encoder(x1)), projection_head(encoder(x2)))",
              obtained=msg("forward") or msg("params"), hint="Return the projections z1, z2, not the features."),
        check(SimCLRChecks.SIZES, 0.15, not problems["sizes"] and not problems["params"], expected="(B, width) "
              "features for 96x96 images too", obtained=msg("sizes") or msg("params"),
              hint="The three max-pools and four stride-2 convs bring 64x64 and 96x96 images to 1x1."),
    ]


# ---- dunn_index -------------------------------------------------------------------------------------------------

def dunn_definition(features, labels) -> float:
    """Min over cluster pairs of the single-linkage distance over the max cluster diameter (Euclidean), in float64."""
    x, y = features.double(), labels.long()
    clusters = [x[y == k] for k in torch.unique(y)]
    diam = max(float(torch.cdist(c, c).max()) for c in clusters)
    sep = min(float(torch.cdist(a, b).min()) for i, a in enumerate(clusters) for b in clusters[i + 1:])
    return sep / diam


def _dunn_variants(x, y) -> dict:
    x, y = x.double(), y.long()
    d = torch.cdist(x, x)
    same = y[:, None] == y[None, :]
    inter, intra = d[~same].min(), d[same].max()
    cents = torch.stack([x[y == k].mean(0) for k in torch.unique(y)])
    dc = torch.cdist(cents, cents)
    dc = dc[~torch.eye(len(cents), dtype=torch.bool)]
    return {
        "min and max are swapped (the largest separation over the smallest distance within a cluster)":
            d[~same].max() / d[same & ~torch.eye(len(y), dtype=torch.bool)].min(),
        "the ratio is inverted (the diameter over the separation)": intra / inter,
        "the distances are squared (torch.cdist gives Euclidean distances; do not square them)": (inter / intra) ** 2,
        "the diameter is taken over all points, not within clusters": inter / d.max(),
        "the separation uses the clusters' centroids instead of the closest pair of points": dc.min() / intra,
        "the diameter is a mean distance instead of the largest one": inter / d[same].mean(),
    }


def dunn_mistake(value: float, x, y) -> str:
    right = dunn_definition(x, y)
    if math.isinf(value):
        return ("It is infinite: a distance of 0 is in the denominator (each point's distance to itself is 0; the "
                "diameter is the largest distance within a cluster). ")
    for mistake, v in _dunn_variants(x, y).items():
        if close(value, float(v)) and not close(value, right):
            return f"It looks like {mistake}. "
    return ""


class DunnChecks(CheckNames):
    VALUE = "dunn_index is the smallest distance between clusters over the largest cluster diameter"
    CASES = "dunn_index works for any number of clusters, labels and dimensions"
    LOOPS = "dunn_index has no Python loop over the points"


def judge_dunn_index(obs: dict, inputs: dict) -> list:
    values, errors = obs.get("values") or [], obs.get("errors") or {}

    def compare(indices):
        for i in indices:
            x, y = inputs["cases"][i]
            want = dunn_definition(x, y)
            if str(i) in errors:
                return f"{errors[str(i)]} (expected {want:.4f})"
            got = values[i] if i < len(values) else None
            if not isinstance(got, float):
                return f"{got!r} is not a number (expected {want:.4f}; return a float or a 0-d tensor)"
            if not close(got, want):
                k = len(torch.unique(y))
                return (f"{got:.4f} instead of {want:.4f} for {len(y)} points of dimension {x.shape[1]} in {k} "
                        f"clusters. " + dunn_mistake(got, x, y))
        return ""

    main, other = compare(inputs["main"]), compare(inputs["other"])
    ops = obs.get("ops") or {}
    small, large = ops.get("small"), ops.get("large")
    return [
        check(DunnChecks.VALUE, 0.5, not main, expected="min over pairs of clusters of the smallest Euclidean distance "
              "between their points, divided by the largest distance between two points of one cluster "
              "(relative tolerance 1e-4)", obtained=main,
              hint="d = torch.cdist(features, features); same = labels[:, None] == labels[None, :]; "
                   "separation from d where not same, diameter from d where same."),
        check(DunnChecks.CASES, 0.25, not other, expected="the same for 2 and 7 clusters, labels that are not 0..K-1, "
              "and other dimensions", obtained=other, hint="Compare labels with each other rather than with range(K)."),
        check(DunnChecks.LOOPS, 0.25, isinstance(small, int) and isinstance(large, int) and large <= small + 8,
              expected="as many tensor operations for 400 points as for 40 (3 clusters both times)",
              obtained=(f"{small} tensor operations for 40 points and {large} for 400" if ops
                        else str(obs.get("ops_error", "no count"))),
              hint="One torch.cdist of all points and boolean masks replace the loops over points."),
    ]
