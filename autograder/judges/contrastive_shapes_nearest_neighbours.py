"""Problem set "contrastive_shapes": the judge of ``nearest_neighbours`` (its check names, and the rankings of
the classic mistakes that its messages name)."""
from __future__ import annotations

import torch
from torch.nn import functional as F

from ..core import CheckNames, check
from .contrastive_shapes import nearest_neighbours


# ---- Part 4: nearest_neighbours ----------------------------------------------------------------------------

def cosine_topk(emb: torch.Tensor, q: int, k: int) -> list:
    return [int(i) for i in nearest_neighbours(emb, q, k)]


def _farthest(emb: torch.Tensor, q: int, k: int) -> list:
    unit = F.normalize(emb, dim=-1)
    s = -(unit @ unit[q])
    s[q] = float("-inf")
    return s.topk(k).indices.tolist()


def _batch_normalised_topk(emb: torch.Tensor, q: int, k: int) -> list:
    unit = F.normalize(emb, dim=0)  # every dimension scaled over the batch, the rows left at their lengths
    s = unit @ unit[q]
    s[q] = float("-inf")
    return s.topk(k).indices.tolist()


def l2_topk(emb: torch.Tensor, q: int, k: int) -> list:
    d = (emb - emb[q]).norm(dim=1)
    d[q] = float("inf")
    return (-d).topk(k).indices.tolist()


def dot_topk(emb: torch.Tensor, q: int, k: int) -> list:
    s = emb @ emb[q]
    s[q] = float("-inf")
    return s.topk(k).indices.tolist()


class NearestNeighboursChecks(CheckNames):
    K = "nearest_neighbours returns k indices"
    QUERY = "nearest_neighbours leaves out the query, and only the query"
    FIRST = "nearest_neighbours ranks the nearest first"
    COSINE = "nearest_neighbours uses the cosine similarity"


def judge_nearest_neighbours(obs: dict, inputs: dict) -> list:
    got = obs.get("results")
    cases = inputs["cases"]
    if not isinstance(got, list) or len(got) != len(cases):
        raise ValueError("no result for every query")
    embeddings = inputs["embeddings"]

    def want(case):
        return cosine_topk(embeddings[case["embeddings"]], int(case["query"]), 5 if case["k"] is None else int(case["k"]))

    # 1. k distinct valid indices.
    problems = []
    for case, result in zip(cases, got):
        k = 5 if case["k"] is None else int(case["k"])
        n = embeddings[case["embeddings"]].shape[0]
        if not all(isinstance(i, int) for i in result):
            problems.append(f"{result[:3]} (expected a tensor or list of k integer indices)")
            break
        if len(result) != k or len(set(result)) != k or not all(0 <= i < n for i in result):
            problems.append(f"{result} with k={'5 (the default)' if case['k'] is None else k}")
            break
    results = [check(NearestNeighboursChecks.K, 0.2, not problems, expected="k different row indices (k=5 by default)",
                     obtained="; ".join(problems),
                     hint="Return torch.topk(...).indices (a LongTensor of k indices), not the similarities.")]
    formed = not problems

    # 2. The query left out; a duplicate of it kept.
    problems = []
    if formed:
        with_query = [c["query"] for c, r in zip(cases, got) if c["query"] in r]
        if with_query:
            problems.append(f"the query itself among its neighbours (query {with_query[0]})")
        for case, result in zip(cases, got):
            dup = inputs["duplicates"].get(str(case["query"])) if case["embeddings"] == "dups" else None
            if dup is not None and dup not in result:
                problems.append(f"row {dup}, an exact copy of query {case['query']}'s embedding (cosine similarity 1), "
                                f"left out: {result}")
                break
    else:
        problems.append("the results could not be read (see the check above)")
    results.append(check(NearestNeighboursChecks.QUERY, 0.2, not problems,
                         expected="the query's own row never among the results, every other row eligible",
                         obtained="; ".join(problems),
                         hint="Set the query's own similarity to -inf before torch.topk; do not drop the first "
                              "result instead (when another image has the same embedding, the first result need not "
                              "be the query)."))

    # 3. Ranking on unit rows (where cosine, L2 and dot product agree).
    problems = []
    for case, result in zip(cases, got):
        if case["embeddings"] != "unit":
            continue
        w = want(case)
        if result != w:
            emb, q = embeddings["unit"], int(case["query"])
            words = ("the ranking of embeddings normalised over the batch (dim=0) instead of one by one (dim=-1)"
                     if result == _batch_normalised_topk(emb, q, len(w)) else
                     "the right images, but not nearest first" if sorted(result) == sorted(w) else
                     "the farthest images, not the nearest" if sorted(result) == sorted(_farthest(emb, q, len(w)))
                     else "not the nearest images")
            problems.append(f"{result} for query {case['query']} (k={case['k'] or 5}): {words}; expected {w}")
            break
    results.append(check(NearestNeighboursChecks.FIRST, 0.3, formed and not problems,
                         expected="the k most similar rows, most similar first", obtained="; ".join(problems)
                         or "the results could not be read",
                         hint="torch.topk returns the largest values first."))

    # 4. Cosine on rows of different lengths.
    problems = []
    for case, result in zip(cases, got):
        if case["embeddings"] != "scaled":
            continue
        emb, q = embeddings["scaled"], int(case["query"])
        w = want(case)
        if result != w:
            words = ("the ranking by L2 distance on the raw embeddings" if result == l2_topk(emb, q, 5) else
                     "the ranking by raw dot products (the embeddings were not normalised)"
                     if result == dot_topk(emb, q, 5) else
                     "the ranking of embeddings normalised over the batch (dim=0) instead of one by one (dim=-1)"
                     if result == _batch_normalised_topk(emb, q, 5) else "not the ranking by cosine similarity")
            problems.append(f"{result} for query {q}: {words}; expected {w}")
            break
    results.append(check(NearestNeighboursChecks.COSINE, 0.3, formed and not problems,
                         expected="the ranking by cosine similarity when the embeddings have different lengths",
                         obtained="; ".join(problems) or "the results could not be read",
                         hint="L2-normalise every embedding first (F.normalize(embeddings, dim=-1)); then the dot "
                              "products are cosine similarities."))
    return results
