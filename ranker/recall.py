"""Hybrid recall: BM25 and vector k-NN on the same filters, fused into one list.

Backend-neutral: it talks to a `SearchReader`, so the embedded store and OpenSearch
give the same answers for the same index.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from indexer.mapping import load_fusion_defaults
from indexer.store.base import Filters, Hit, MatchSummary, SearchReader
from ranker.facets import shape_facets
from ranker.features import FEATURE_NAMES
from ranker.fusion import reciprocal_rank_fusion, weighted_score_fusion
from ranker.spelling import QueryCorrector

MODES = ("hybrid", "bm25", "vector")
FUSION_METHODS = ("rrf", "weighted")
MIN_RECALL_DEPTH = 100
MAX_RECALL_DEPTH = 1_000
RESULT_FIELDS = ("id", "title", "brand", "category", "price", "currency", "in_stock", "rating",
                 "review_count", "image_url", "attributes")


_DEFAULTS = load_fusion_defaults()


@dataclass(frozen=True)
class FusionConfig:
    """Defaults chosen on the Home Depot judgments (`make evaluate`; docs/relevance.md):
    weighted fusion at 0.7 / 0.3 had the best nDCG@10 on the tuning half of the queries
    and on the held-out half; with the same weights RRF is best at k=10. The numbers live
    in mappings/search-pipeline-*.json, which OpenSearch uses too."""

    method: str = "weighted"
    rrf_k: float = _DEFAULTS.rrf_k
    lexical_weight: float = _DEFAULTS.lexical_weight
    vector_weight: float = _DEFAULTS.vector_weight


class QueryEncoder(Protocol):
    def encode_query(self, text: str) -> np.ndarray: ...


@dataclass
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

    def features(self) -> dict[str, float]:
        """Named feature values; built only for results that are shown or logged."""
        return {name: round(float(v), 6) for name, v in zip(FEATURE_NAMES, self.feature_row, strict=True)}

    def explain(self) -> dict[str, Any]:
        out: dict[str, Any] = {"fused": self.fused_score if self.fused_score is not None else self.score,
                               "bm25": {"rank": self.bm25_rank, "score": self.bm25_score},
                               "vector": {"rank": self.vector_rank, "score": self.vector_score}}
        if self.model_score is not None and self.feature_row is not None:
            out["model"] = {**(self.model_scores or {}), "final": self.model_score}
            out["features"] = self.features()
        return out


@dataclass
class SearchRequest:
    query: str
    k: int = 10
    offset: int = 0
    filters: Filters = field(default_factory=Filters)
    mode: str = "hybrid"
    fusion: FusionConfig | None = None
    explain: bool = False
    rerank: bool = True
    correct: bool = True  # rewrite words the catalog does not know (ranker/spelling.py)


@dataclass
class SearchResponse:
    query: str
    total: int
    results: list[dict[str, Any]]
    facets: dict[str, list[dict[str, Any]]]
    took_ms: float
    generation: str
    corrected_query: str | None = None  # what was searched, when it differs from `query`

    def to_json(self) -> dict[str, Any]:
        return {"query": self.query, "corrected_query": self.corrected_query, "total": self.total,
                "results": self.results, "facets": self.facets, "took_ms": round(self.took_ms, 2),
                "generation": self.generation}


def fuse(bm25: list[Hit], vector: list[Hit], config: FusionConfig) -> list[Candidate]:
    runs = [[(h.id, h.score) for h in bm25], [(h.id, h.score) for h in vector]]
    if config.method == "rrf":
        fused = reciprocal_rank_fusion(runs, k=config.rrf_k, weights=[config.lexical_weight, config.vector_weight])
    elif config.method == "weighted":
        fused = weighted_score_fusion(runs, [config.lexical_weight, config.vector_weight])
    else:
        raise ValueError(f"unknown fusion method {config.method!r}; use one of {', '.join(FUSION_METHODS)}")
    candidates = {doc_id: Candidate(doc_id, score) for doc_id, score in fused}
    for rank, hit in enumerate(bm25, start=1):
        candidates[hit.id].bm25_rank, candidates[hit.id].bm25_score = rank, hit.score
    for rank, hit in enumerate(vector, start=1):
        candidates[hit.id].vector_rank, candidates[hit.id].vector_score = rank, hit.score
    return list(candidates.values())


class HybridSearcher:
    def __init__(self, reader: SearchReader, encoder: QueryEncoder, fusion: FusionConfig | None = None,
                 ranker: Any = None, feature_log: Any = None, corrector: QueryCorrector | None = None):
        self.reader = reader
        self.encoder = encoder
        self.fusion = fusion or FusionConfig()
        self.ranker = ranker  # a ranker.rerank.LearnedRanker, or None: recall order
        self.feature_log = feature_log  # a ranker.feature_log.FeatureLog, or None
        self.corrector = corrector  # None: search the words exactly as typed

    def searched_text(self, request: SearchRequest) -> str:
        """The query as recall, features and counts see it: corrected unless asked not to."""
        if self.corrector is None or not request.correct:
            return request.query
        return self.corrector.correct(request.query)

    def rerank_depth(self, request: SearchRequest) -> int:
        """Candidates the learned model orders: as many as it was trained and evaluated on."""
        if self.ranker is None or not request.rerank or request.mode != "hybrid":
            return 0
        return self.ranker.depth

    def rerank(self, query: str, vector: np.ndarray, candidates: list[Candidate], depth: int) -> list[Candidate]:
        """The learned model orders the top `depth` fused candidates; the rest follow."""
        head, tail = candidates[:depth], candidates[depth:]
        if not head:
            return candidates
        result = self.ranker.rerank(query, vector, [c.id for c in head],
                                    [c.bm25_rank for c in head], [c.vector_rank for c in head])
        by_id = {c.id: c for c in head}
        ordered = []
        for n, doc_id in enumerate(result.ids):
            candidate = by_id[doc_id]
            candidate.fused_score, candidate.model_score = candidate.score, float(result.scores[n])
            candidate.score = candidate.model_score
            candidate.feature_row = result.features[n]
            candidate.model_scores = {name: float(s[n]) for name, s in result.model_scores.items()}
            ordered.append(candidate)
        floor = float(result.scores.min()) if len(result.scores) else 0.0
        for candidate in tail:  # below every re-ranked candidate, in recall order
            candidate.fused_score, candidate.score = candidate.score, floor - 1.0
        return ordered + tail

    def query_encoder(self, rerank_depth: int) -> QueryEncoder:
        """The learned model's own query encoder when it has one and ranks this search;
        `rerank=false` is recall exactly as without a model."""
        tuned = getattr(self.ranker, "query_encoder", None) if rerank_depth else None
        return tuned or self.encoder

    def recall(self, query: str, depth: int, filters: Filters, mode: str = "hybrid",
               fusion: FusionConfig | None = None,
               encoder: QueryEncoder | None = None) -> tuple[list[Candidate], list[Hit], np.ndarray | None]:
        """Fused candidates best first, the vector hits (their ids join the matching set)
        and the query vector (None in BM25 mode), so nothing encodes the query twice."""
        bm25 = self.reader.bm25(query, depth, filters) if mode in ("hybrid", "bm25") else []
        encoder = encoder or self.encoder
        query_vector = encoder.encode_query(query) if mode in ("hybrid", "vector") else None
        vector = self.reader.knn(query_vector, depth, filters) if query_vector is not None else []
        if mode == "bm25":
            return ([Candidate(h.id, h.score, bm25_rank=r, bm25_score=h.score) for r, h in enumerate(bm25, 1)],
                    vector, query_vector)
        if mode == "vector":
            return ([Candidate(h.id, h.score, vector_rank=r, vector_score=h.score) for r, h in enumerate(vector, 1)],
                    vector, query_vector)
        return fuse(bm25, vector, fusion or self.fusion), vector, query_vector

    def _recall_and_summary(self, request: SearchRequest, depth: int) -> tuple[list[Candidate], MatchSummary]:
        server_side = getattr(self.reader, "hybrid_search", None)
        rerank_depth = self.rerank_depth(request)
        if request.mode == "hybrid" and server_side is not None and not rerank_depth:
            # OpenSearch fuses in its search pipeline and counts and facets in the same request.
            method = (request.fusion or self.fusion).method
            hits, summary = server_side(request.query, self.encoder.encode_query(request.query), depth,
                                        request.filters, method)
            return [Candidate(h.id, h.score) for h in hits], summary
        candidates, vector, query_vector = self.recall(request.query, depth, request.filters, request.mode,
                                                       request.fusion, self.query_encoder(rerank_depth))
        if rerank_depth and query_vector is not None:
            candidates = self.rerank(request.query, query_vector, candidates, rerank_depth)
        text = request.query if request.mode != "vector" else ""
        return candidates, self.reader.match_summary(text, [h.id for h in vector], request.filters)

    def search(self, request: SearchRequest) -> SearchResponse:
        started = time.perf_counter()
        text = self.searched_text(request)
        depth = min(MAX_RECALL_DEPTH, max(MIN_RECALL_DEPTH, request.offset + request.k, self.rerank_depth(request)))
        candidates, summary = self._recall_and_summary(replace(request, query=text), depth)
        corrected = text if text != request.query else None
        page = candidates[request.offset : request.offset + request.k]
        products = {p["id"]: p for p in self.reader.products([c.id for c in page])}
        results = []
        for candidate in page:
            product = products[candidate.id]
            item = {name: product[name] for name in RESULT_FIELDS if name in product}
            item["score"] = round(candidate.score, 6)
            if request.explain:
                item["explain"] = candidate.explain()
            results.append(item)
        if self.feature_log is not None and page and page[0].feature_row is not None and self.feature_log.sampled():
            self.feature_log.record(request.query, self.reader.generation, self.ranker.version,
                                    asdict(request.filters), [{"id": c.id, "features": c.features()} for c in page],
                                    corrected_query=corrected)
        return SearchResponse(
            query=request.query,
            total=summary.total,
            results=results,
            facets=shape_facets(summary.facets, request.filters),
            took_ms=(time.perf_counter() - started) * 1000,
            generation=self.reader.generation,
            corrected_query=corrected,
        )
