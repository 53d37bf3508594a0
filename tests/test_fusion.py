"""Fusion functions: the arithmetic, ties, and documents only one side returned."""

from __future__ import annotations

import pytest

from indexer.store.base import Hit
from ranker.fusion import FusionConfig, fuse_hits, min_max, reciprocal_rank_fusion, weighted_score_fusion


def test_rrf_scores_are_sums_of_reciprocal_ranks() -> None:
    fused = dict(reciprocal_rank_fusion([[("a", 9.0), ("b", 5.0)], [("b", 0.9), ("c", 0.8)]], k=60))
    assert fused["a"] == pytest.approx(1 / 61)
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert fused["c"] == pytest.approx(1 / 62)


def test_rrf_orders_by_agreement_and_breaks_ties_by_first_run() -> None:
    fused = reciprocal_rank_fusion([[("a", 1), ("b", 1)], [("b", 1), ("a", 1)], [("c", 1)]])
    assert [d for d, _ in fused][:2] == ["a", "b"]  # a and b tie; a came first in run 1
    assert fused[-1][0] == "c"


def test_rrf_weights_scale_each_run() -> None:
    fused = dict(reciprocal_rank_fusion([[("a", 1)], [("b", 1)]], k=0, weights=[2.0, 0.5]))
    assert fused == {"a": 2.0, "b": 0.5}


def test_min_max_handles_constant_and_empty_runs() -> None:
    assert min_max([]) == {}
    assert min_max([("a", 3.0), ("b", 3.0)]) == {"a": 1.0, "b": 1.0}
    assert min_max([("a", 10.0), ("b", 5.0), ("c", 0.0)]) == {"a": 1.0, "b": 0.5, "c": 0.0}


def test_weighted_fusion_gives_missing_documents_the_run_minimum() -> None:
    fused = dict(weighted_score_fusion([[("a", 10.0), ("b", 0.0)], [("c", 0.9), ("a", 0.5), ("d", 0.1)]], [0.3, 0.7]))
    assert fused["a"] == pytest.approx(0.3 * 1.0 + 0.7 * 0.5)
    assert fused["b"] == pytest.approx(0.0)
    assert fused["c"] == pytest.approx(0.7 * 1.0)
    assert fused["d"] == pytest.approx(0.0)


def test_weighted_fusion_rejects_mismatched_weights() -> None:
    with pytest.raises(ValueError, match="2 runs but 1 weights"):
        weighted_score_fusion([[("a", 1.0)], [("b", 1.0)]], [1.0])


def test_fuse_records_each_sides_rank_and_score() -> None:
    candidates = fuse_hits([Hit("a", 5.0), Hit("b", 4.0)], [Hit("b", 0.9)], FusionConfig(method="rrf"))
    by_id = {c.id: c for c in candidates}
    assert [c.id for c in candidates] == ["b", "a"]
    assert (by_id["b"].bm25_rank, by_id["b"].vector_rank, by_id["b"].vector_score) == (2, 1, 0.9)
    assert by_id["a"].vector_rank is None
    with pytest.raises(ValueError, match="unknown fusion method"):
        FusionConfig(method="nope")
