"""Fusing ranked lists: pure functions, no I/O, so they are trivially testable.

Both methods return (id, fused score) best first, ties broken by first appearance
(the BM25 list is passed first, so lexical order wins ties).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from indexer.mapping import load_fusion_defaults
from indexer.store.base import Hit
from ranker.candidates import Candidate

RankedList = Sequence[tuple[str, float]]
FUSION_METHODS = ("rrf", "weighted")
_DEFAULTS = load_fusion_defaults()


@dataclass(frozen=True)
class FusionConfig:
    """The numbers live in mappings/search-pipeline-*.json, which OpenSearch uses too;
    how they were chosen is in docs/relevance.md."""

    method: str = "weighted"
    rrf_k: float = _DEFAULTS.rrf_k
    lexical_weight: float = _DEFAULTS.lexical_weight
    vector_weight: float = _DEFAULTS.vector_weight

    def __post_init__(self) -> None:
        if self.method not in FUSION_METHODS:
            raise ValueError(f"unknown fusion method {self.method!r}; use one of {', '.join(FUSION_METHODS)}")

    def fuse(self, runs: Sequence[RankedList]) -> list[tuple[str, float]]:
        weights = [self.lexical_weight, self.vector_weight]
        if self.method == "rrf":
            return reciprocal_rank_fusion(runs, k=self.rrf_k, weights=weights)
        return weighted_score_fusion(runs, weights)


def reciprocal_rank_fusion(runs: Sequence[RankedList], k: float = 60.0,
                           weights: Sequence[float] | None = None) -> list[tuple[str, float]]:
    """score(d) = sum over runs of w / (k + rank(d)), rank starting at 1 (Cormack et al.)."""
    weights = weights or [1.0] * len(runs)
    scores: dict[str, float] = {}
    for run, weight in zip(runs, weights, strict=True):
        for rank, (doc_id, _score) in enumerate(run, start=1):
            scores[doc_id] = scores.get(doc_id, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda item: -item[1])


def min_max(run: RankedList) -> dict[str, float]:
    """Scores scaled to [0, 1] within one run; a run of equal scores maps to 1."""
    if not run:
        return {}
    scores = [s for _, s in run]
    low, high = min(scores), max(scores)
    span = high - low
    return {doc_id: (s - low) / span if span > 0 else 1.0 for doc_id, s in run}


def weighted_score_fusion(runs: Sequence[RankedList], weights: Sequence[float]) -> list[tuple[str, float]]:
    """Min-max normalise each run, then a weighted sum; a document a run did not return
    gets 0 from it (that run's minimum), as OpenSearch's normalization processor does."""
    if len(weights) != len(runs):
        raise ValueError(f"{len(runs)} runs but {len(weights)} weights")
    scores: dict[str, float] = {}
    for run, weight in zip(runs, weights, strict=True):
        for doc_id, norm in min_max(run).items():
            scores[doc_id] = scores.get(doc_id, 0.0) + weight * norm
    for run in runs:  # make sure documents seen anywhere are present even with weight 0
        for doc_id, _ in run:
            scores.setdefault(doc_id, 0.0)
    return sorted(scores.items(), key=lambda item: -item[1])


def minmax_scale(values: np.ndarray) -> np.ndarray:
    """min_max for an array of scores: [0, 1], a constant array maps to 1."""
    if len(values) == 0:
        return values
    span = values.max() - values.min()
    return (values - values.min()) / span if span > 0 else np.ones_like(values)


def blend_scores(lexical: np.ndarray, vector: np.ndarray, lexical_weight: float, vector_weight: float) -> np.ndarray:
    """weighted_score_fusion for score arrays over one fixed candidate list."""
    return lexical_weight * minmax_scale(lexical) + vector_weight * minmax_scale(vector)


def fuse_hits(bm25: Sequence[Hit], vector: Sequence[Hit], config: FusionConfig) -> list[Candidate]:
    """Both sides' hits as one candidate list, best first, each carrying its ranks and scores."""
    fused = config.fuse([[(h.id, h.score) for h in bm25], [(h.id, h.score) for h in vector]])
    lexical = {h.id: (rank, h.score) for rank, h in enumerate(bm25, start=1)}
    semantic = {h.id: (rank, h.score) for rank, h in enumerate(vector, start=1)}
    none = (None, None)
    return [Candidate(doc_id, score, *lexical.get(doc_id, none), *semantic.get(doc_id, none), fused_score=score)
            for doc_id, score in fused]

