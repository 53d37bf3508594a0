"""Training rows, built by the search pipeline itself.

For every judged query the pipeline's correct, recall and fuse stages give the candidate
list exactly as serving recalls it at the depth the model will re-rank; the judged
products recall missed are added after them (with no recall ranks), and the features
are the rerank stage's own (`ranker.rerank.candidate_ranks`, `features_for`). So
training and serving cannot disagree. Labels are `relevance - 1` (0-2 on the Home Depot
scale); an unjudged candidate is labelled 0, not relevant — the usual, slightly
pessimistic assumption.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from tqdm import tqdm

from ranker.features.names import FEATURE_INDEX
from ranker.features.sources import FeatureSource, features_for
from ranker.fusion import FusionConfig, blend_scores
from ranker.ltr_export import plugin_values
from ranker.metrics import gain
from ranker.pipeline import SearchPipeline
from ranker.request import SearchRequest
from ranker.rerank import candidate_ranks

Judgments = dict[str, dict[str, float]]  # query -> product id -> relevance


@dataclass
class QueryRows:
    query: str  # as typed: the judgments' key and the folds'
    ids: list[str]
    features: np.ndarray
    labels: np.ndarray
    in_recall: np.ndarray  # bool: recall found it (the rest are judged products it missed)
    judged: np.ndarray  # bool
    ordinals: np.ndarray  # the candidates' rows in the catalog's product and vector tables
    query_vector: np.ndarray


class RowBuilder:
    def __init__(self, pipeline: SearchPipeline, source: FeatureSource, ord_by_id: Mapping[str, int], depth: int):
        """`pipeline` recalls `depth` deep from each side and has no model (what a model of
        that depth is served with); `source` gives the rerank stage's feature inputs."""
        self.pipeline = pipeline
        self.source = source
        self.ord_by_id = ord_by_id
        self.depth = depth

    def rows(self, query: str, judged: Mapping[str, float], vector: np.ndarray | None = None) -> QueryRows:
        ranked = self.pipeline.rank(SearchRequest(query, k=1, rerank=False), vector=vector)
        search = ranked.search
        assert search.vector is not None
        head = ranked.candidates[: self.depth]
        seen = {c.id for c in head}
        extra = sorted(i for i in judged if i not in seen and i in self.ord_by_id)
        ranks = candidate_ranks(head, extra)
        features, _vectors = features_for(self.source, search.text, search.vector, ranks)
        ids = ranks.ids
        return QueryRows(query, ids, features,
                         np.array([gain(judged[i]) if i in judged else 0.0 for i in ids], dtype=np.float32),
                         ~np.isnan(ranks.recall_rank), np.array([i in judged for i in ids]),
                         np.array([self.ord_by_id[i] for i in ids], dtype=np.int64), search.vector)


def build_rows(builder: RowBuilder, judgments: Judgments, queries: Sequence[str],
               vectors: Mapping[str, np.ndarray] | None = None, progress: bool = True) -> list[QueryRows]:
    """`vectors`: query as typed -> its vector from an encoder that never saw it (None: the
    pipeline's own encoder)."""
    return [builder.rows(q, judgments[q], vectors.get(q) if vectors else None)
            for q in tqdm(queries, desc="features", unit="query", disable=None if progress else True, leave=False)]


def ltr_view(rows: Sequence[QueryRows]) -> list[QueryRows]:
    """The rows with the exported model's features, as a cluster computes them (ranker.ltr_export)."""
    return [replace(r, features=plugin_values(r.features)) for r in rows]


def _ranks(scores: np.ndarray) -> np.ndarray:
    ranks = np.empty(len(scores), dtype=np.float32)
    ranks[np.argsort(-scores, kind="stable")] = np.arange(1, len(scores) + 1)
    return ranks


def judged_view(r: QueryRows, fusion: FusionConfig | None = None) -> QueryRows:
    """The query's judged products as a candidate list of their own (the re-ranking task).

    Rank features are defined relative to the candidate list, as at serving time, so
    they are recomputed within this list: BM25 rank, vector rank and fused rank among the
    judged products, not their ranks in a catalog-wide recall that may have missed them."""
    fusion = fusion or FusionConfig()
    judged = np.flatnonzero(r.judged)
    features = r.features[judged].copy()
    bm25 = features[:, FEATURE_INDEX["bm25_combined"]]
    cosine = features[:, FEATURE_INDEX["vector_cosine"]]
    fused = blend_scores(bm25, cosine, fusion.lexical_weight, fusion.vector_weight)
    features[:, FEATURE_INDEX["log_bm25_rank"]] = np.log1p(_ranks(bm25))
    features[:, FEATURE_INDEX["log_vector_rank"]] = np.log1p(_ranks(cosine))
    features[:, FEATURE_INDEX["log_recall_rank"]] = np.log1p(_ranks(fused))
    return replace(r, ids=[r.ids[i] for i in judged], features=features, labels=r.labels[judged],
                   in_recall=r.in_recall[judged], judged=r.judged[judged], ordinals=r.ordinals[judged])
