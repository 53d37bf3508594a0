"""Ranking metrics over graded judgments: pure functions.

Gain is `relevance - 1` on the Home Depot 1-3 scale (1 = irrelevant gains nothing);
unjudged products gain 0. "Relevant" for recall and MRR means relevance ≥ 2.5, the
threshold the project's reference figures use.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

RELEVANT_AT = 2.5


def gain(relevance: float) -> float:
    return max(0.0, relevance - 1.0)


def dcg(gains: Sequence[float]) -> float:
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def ndcg_at(ranked: Sequence[str], judgments: Mapping[str, float], k: int) -> float:
    ideal = dcg(sorted((gain(r) for r in judgments.values()), reverse=True)[:k])
    if ideal == 0:
        return 0.0
    return dcg([gain(judgments[d]) if d in judgments else 0.0 for d in ranked[:k]]) / ideal


def recall_at(ranked: Sequence[str], judgments: Mapping[str, float], k: int) -> float | None:
    relevant = {d for d, r in judgments.items() if r >= RELEVANT_AT}
    if not relevant:
        return None  # the query has nothing to recall: left out of the mean
    return len(relevant & set(ranked[:k])) / len(relevant)


def ndcg_of_scores(gains: np.ndarray, scores: np.ndarray, k: int = 10) -> float:
    """nDCG@k of one candidate list ordered by `scores`, from its gains: the array form
    model selection uses (early stopping, blend weights) where ids are not at hand."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = float((np.sort(gains)[::-1][:k] * discounts[: min(k, len(gains))]).sum())
    if ideal == 0:
        return 0.0
    top = gains[np.argsort(-scores, kind="stable")][:k]
    return float((top * discounts[: len(top)]).sum()) / ideal


def reciprocal_rank(ranked: Sequence[str], judgments: Mapping[str, float]) -> float:
    for rank, doc_id in enumerate(ranked, start=1):
        if judgments.get(doc_id, 0.0) >= RELEVANT_AT:
            return 1.0 / rank
    return 0.0
