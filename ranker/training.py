"""Learning-to-rank data and models: recall + judgments -> features -> XGBoost.

Training data is built by the serving code path (the same recall, the same
`compute_features`), so training and serving cannot disagree. For every judged query the
candidates are the fused recall list (depth `depth`) plus any judged product recall
missed; labels are `relevance - 1` (0-2 on the Home Depot scale) and an unjudged
candidate is labelled 0, not relevant — the usual, slightly pessimistic assumption.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import xgboost as xgb
from tqdm import tqdm

from indexer.store.base import Filters
from ranker.features import Candidates, ProductTable, features_for
from ranker.fusion import blend_scores
from ranker.metrics import gain
from ranker.recall import FusionConfig, fuse


@dataclass
class QueryRows:
    query: str
    ids: list[str]
    features: np.ndarray
    labels: np.ndarray
    in_recall: np.ndarray
    judged: np.ndarray
    bm25_ids: list[str]
    vector_ids: list[str]
    fused_ids: list[str]


@dataclass
class Recalled:
    """One query's recall: the candidates to rank and each side's own list."""

    candidates: Candidates
    vector: np.ndarray
    bm25_ids: list[str]
    vector_ids: list[str]
    fused_ids: list[str]


class FeatureBuilder:
    """Recall + features for one query, exactly as serving computes them."""

    def __init__(self, reader: Any, encoder: Any, fusion: FusionConfig, depth: int):
        self.reader = reader
        self.encoder = encoder
        self.fusion = fusion
        self.depth = depth
        self.table = ProductTable(reader.all_products(), reader.analyze, reader.definition)

    def recall(self, query: str, extra_ids: list[str] | None = None) -> Recalled:
        vector = self.encoder.encode_query(query)
        bm25 = self.reader.bm25(query, self.depth, Filters())
        knn = self.reader.knn(vector, self.depth, Filters())
        fused = fuse(bm25, knn, self.fusion)[: self.depth]
        ids = [c.id for c in fused]
        seen = set(ids)
        ids += [i for i in extra_ids or [] if i not in seen and i in self.table.ord_by_id]
        index = {i: n for n, i in enumerate(ids)}

        def ranks(hits: list) -> np.ndarray:  # type: ignore[type-arg]
            out = np.full(len(ids), np.nan)
            for rank, hit in enumerate(hits, start=1):
                if hit.id in index:
                    out[index[hit.id]] = rank
            return out

        return Recalled(Candidates(ids, ranks(fused), ranks(bm25), ranks(knn)), vector,
                        [h.id for h in bm25], [h.id for h in knn], [c.id for c in fused])

    def features(self, query: str, recalled: Recalled) -> np.ndarray:
        return features_for(self.reader, self.table, query, recalled.vector, recalled.candidates)

    def query_rows(self, query: str, judged: dict[str, float]) -> QueryRows:
        recalled = self.recall(query, sorted(judged))
        candidates = recalled.candidates
        features = self.features(query, recalled)
        labels = np.array([gain(judged[i]) if i in judged else 0.0 for i in candidates.ids], dtype=np.float32)
        in_recall = ~np.isnan(candidates.recall_rank)
        return QueryRows(query, candidates.ids, features, labels, in_recall,
                         np.array([i in judged for i in candidates.ids]), recalled.bm25_ids, recalled.vector_ids,
                         recalled.fused_ids)


def build_dataset(builder: FeatureBuilder, judgments: dict[str, dict[str, float]], queries: list[str]) -> list[QueryRows]:
    return [builder.query_rows(q, judgments[q]) for q in tqdm(queries, desc="features", unit="query", disable=None)]


def fold_of(query: str, folds: int) -> int:
    return int(hashlib.sha1(query.encode()).hexdigest(), 16) % folds


XGB_PARAMS: dict[str, Any] = {
    "objective": "rank:ndcg",
    "ndcg_exp_gain": False,  # graded labels 0-2 used as they are
    "eval_metric": "ndcg@10",
    "eta": 0.1,
    "max_depth": 6,
    "min_child_weight": 1.0,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "tree_method": "hist",
    "lambdarank_pair_method": "topk",
    "lambdarank_num_pair_per_sample": 16,
}


def _ranks(scores: np.ndarray) -> np.ndarray:
    ranks = np.empty(len(scores), dtype=np.float32)
    ranks[np.argsort(-scores, kind="stable")] = np.arange(1, len(scores) + 1)
    return ranks


def judged_view(r: QueryRows, fusion: FusionConfig | None = None) -> QueryRows:
    """The query's judged products as a candidate list of their own (the re-ranking task).

    Rank features are defined relative to the candidate list, as at serving time, so
    they are recomputed within this list: BM25 rank, vector rank and fused rank among the
    judged products, not their ranks in a catalog-wide recall that may have missed them."""
    from ranker.features import FEATURE_INDEX

    fusion = fusion or FusionConfig()
    judged = np.flatnonzero(r.judged)
    features = r.features[judged].copy()
    bm25 = features[:, FEATURE_INDEX["bm25_combined"]]
    cosine = features[:, FEATURE_INDEX["vector_cosine"]]

    fused = blend_scores(bm25, cosine, fusion.lexical_weight, fusion.vector_weight)
    features[:, FEATURE_INDEX["log_bm25_rank"]] = np.log1p(_ranks(bm25))
    features[:, FEATURE_INDEX["log_vector_rank"]] = np.log1p(_ranks(cosine))
    features[:, FEATURE_INDEX["log_recall_rank"]] = np.log1p(_ranks(fused))
    return QueryRows(r.query, [r.ids[i] for i in judged], features, r.labels[judged], r.in_recall[judged],
                     r.judged[judged], [], [], [])


def _matrix(rows: list[QueryRows]) -> xgb.DMatrix:
    matrix = xgb.DMatrix(np.vstack([r.features for r in rows]), label=np.concatenate([r.labels for r in rows]))
    matrix.set_group([len(r.ids) for r in rows])
    return matrix


def train_xgboost(train: list[QueryRows], valid: list[QueryRows], params: dict[str, Any] | None = None,
                  rounds: int = 500, threads: int = 0) -> xgb.Booster:
    """Early stopping on the validation queries' nDCG@10; returns the model cut at its best
    iteration, so every later use (cross-validation, the saved file, serving) is the same."""
    params = {**XGB_PARAMS, **(params or {}), "nthread": threads}
    dtrain, dvalid = _matrix(train), _matrix(valid)
    model = xgb.train(params, dtrain, num_boost_round=rounds, evals=[(dvalid, "valid")],
                      early_stopping_rounds=30, verbose_eval=False)
    return model[: model.best_iteration + 1]


def predict(model: xgb.Booster, features: np.ndarray) -> np.ndarray:
    """Serving-style scoring: in-place prediction, no DMatrix (much faster per query)."""
    return model.inplace_predict(features)


def cross_validated_scores(rows: list[QueryRows], folds: int = 5, params: dict[str, Any] | None = None,
                           progress: bool = True) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[xgb.Booster]]:
    """Scores for every query from the fold model that never saw it: for its recall
    candidates (retrieval task) and for its judged products as their own list (re-ranking)."""
    scores: dict[str, np.ndarray] = {}
    judged_scores: dict[str, np.ndarray] = {}
    models = []
    for fold in tqdm(range(folds), desc="cross-validation", unit="fold", disable=None if progress else True):
        test = [r for r in rows if fold_of(r.query, folds) == fold]
        rest = [r for r in rows if fold_of(r.query, folds) != fold]
        # early-stopping queries: an independent hash, so the split works for any fold count
        valid = [r for r in rest if fold_of("valid:" + r.query, 4) == 0]
        train = [r for r in rest if fold_of("valid:" + r.query, 4) != 0]
        model = train_xgboost(train, valid, params)
        models.append(model)
        for r in test:
            scores[r.query] = predict(model, r.features)
            judged_scores[r.query] = predict(model, judged_view(r).features)
    return scores, judged_scores, models
