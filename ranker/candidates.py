"""A candidate product on its way through the ranking stages, with what each stage knew
about it (for `explain` and the feature log)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ranker.features.names import FEATURE_NAMES


@dataclass(slots=True)
class Candidate:
    id: str
    score: float
    bm25_rank: int | None = None
    bm25_score: float | None = None
    vector_rank: int | None = None
    vector_score: float | None = None
    fused_score: float | None = None
    model_score: float | None = None
    model_scores: dict[str, float] | None = None  # each model's own score (xgboost, neural)
    feature_row: np.ndarray | None = None  # the ranker's features, in FEATURE_NAMES order
    rules: list[dict[str, Any]] | None = None  # the merchandising rules that touched it, in the order applied
    named: tuple[str, ...] = ()  # the query's phrases naming an attribute or brand value it has (a text match)

    def features(self) -> dict[str, float]:
        """Named feature values; built only for results that are shown or logged."""
        assert self.feature_row is not None
        return {name: round(float(v), 6) for name, v in zip(FEATURE_NAMES, self.feature_row, strict=True)}

    def explain(self) -> dict[str, Any]:
        out: dict[str, Any] = {"fused": self.fused_score if self.fused_score is not None else self.score,
                               "bm25": {"rank": self.bm25_rank, "score": self.bm25_score},
                               "vector": {"rank": self.vector_rank, "score": self.vector_score}}
        if self.model_score is not None and self.feature_row is not None:
            out["model"] = {**(self.model_scores or {}), "final": self.model_score}
            out["features"] = self.features()
        if self.named:
            out["understood"] = {"values_matched": len(self.named), "phrases": list(self.named)}
        if self.rules:
            out["rules"] = self.rules
        return out
