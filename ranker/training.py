"""Learning-to-rank data and models: recall + judgments -> features -> XGBoost.

Training data is built by the serving code path (the same recall, the same
`compute_features`), so training and serving cannot disagree. For every judged query the
candidates are the fused recall list (depth `depth`) plus any judged product recall
missed; labels are `relevance - 1` (0-2 on the Home Depot scale) and an unjudged
candidate is labelled 0, not relevant — the usual, slightly pessimistic assumption.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb
from tqdm import tqdm

from indexer.store.base import Filters
from ranker.features import Candidates, GenerationFeatures, ProductTable, features_for
from ranker.fusion import blend_scores
from ranker.ltr_export import LTR_MODEL, ltr_view
from ranker.metrics import gain, ndcg_of_scores
from ranker.recall import FusionConfig, fuse
from ranker.spelling import query_corrector


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
    ordinals: np.ndarray  # the candidates' rows in the product and vector tables
    query_vector: np.ndarray


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

    def __init__(self, reader: Any, encoder: Any, fusion: FusionConfig, depth: int, correct: bool = True):
        self.reader = reader
        self.encoder = encoder
        # query as typed -> its vector from a tuned query encoder that never saw it
        # (ranker.query_tuning.out_of_fold_vectors); None: the encoder's vectors
        self.query_vectors: dict[str, np.ndarray] | None = None
        self.fusion = fusion
        self.depth = depth
        self.corrector = query_corrector(reader) if correct else None
        self.table = ProductTable(reader.all_products(), reader.analyze, reader.definition)
        self.source = GenerationFeatures(reader, self.table)

    def recall(self, query: str, extra_ids: list[str] | None = None, vector: np.ndarray | None = None) -> Recalled:
        vector = self.encoder.encode_query(query) if vector is None else vector
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
        return features_for(self.source, query, recalled.vector, recalled.candidates)[0]

    def searched_text(self, query: str) -> str:
        return self.corrector.correct(query) if self.corrector is not None else query

    def query_rows(self, query: str, judged: dict[str, float]) -> QueryRows:
        """`query` as typed (the judgments' key); recall and features see it corrected."""
        text = self.searched_text(query)
        recalled = self.recall(text, sorted(judged), self.query_vectors.get(query) if self.query_vectors else None)
        candidates = recalled.candidates
        features = self.features(text, recalled)
        labels = np.array([gain(judged[i]) if i in judged else 0.0 for i in candidates.ids], dtype=np.float32)
        in_recall = ~np.isnan(candidates.recall_rank)
        ordinals = np.array([self.table.ord_by_id[i] for i in candidates.ids], dtype=np.int64)
        return QueryRows(query, candidates.ids, features, labels, in_recall,
                         np.array([i in judged for i in candidates.ids]), recalled.bm25_ids, recalled.vector_ids,
                         recalled.fused_ids, ordinals, recalled.vector)


def build_dataset(builder: FeatureBuilder, judgments: dict[str, dict[str, float]], queries: list[str]) -> list[QueryRows]:
    return [builder.query_rows(q, judgments[q]) for q in tqdm(queries, desc="features", unit="query", disable=None)]


def fold_of(query: str, folds: int) -> int:
    return int(hashlib.sha1(query.encode()).hexdigest(), 16) % folds


XGB_PARAMS: dict[str, Any] = {
    "objective": "rank:ndcg",
    "ndcg_exp_gain": False,  # graded labels 0-2 used as they are
    "eval_metric": "ndcg@10",
    "min_child_weight": 1.0,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "tree_method": "hist",
    "lambdarank_pair_method": "topk",
    "lambdarank_num_pair_per_sample": 16,
}


# What each fold chooses between on its validation queries (best nDCG@10): model capacity
# is the setting that moved the figures in trial runs. Shallower trees get a higher
# learning rate, so every point early-stops after a few hundred trees. The cheapest point
# (fewest tree levels to walk per candidate) comes first and wins ties.
XGB_GRID: tuple[dict[str, Any], ...] = (
    {"max_depth": 4, "eta": 0.2},
    {"max_depth": 6, "eta": 0.1},
    {"max_depth": 8, "eta": 0.1},
)


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
                     r.judged[judged], [], [], [], r.ordinals[judged], r.query_vector)


def _matrix(rows: list[QueryRows]) -> xgb.DMatrix:
    matrix = xgb.DMatrix(np.vstack([r.features for r in rows]), label=np.concatenate([r.labels for r in rows]))
    matrix.set_group([len(r.ids) for r in rows])
    return matrix


def train_xgboost(train: list[QueryRows], valid: list[QueryRows] | None, params: dict[str, Any],
                  rounds: int = 500, threads: int = 0) -> xgb.Booster:
    """With `valid`: early stopping on its queries' nDCG@10, the model cut at its best
    iteration, so every later use is the same. Without: exactly `rounds` trees (the served
    model, sized by cross-validation)."""
    params = {**XGB_PARAMS, **params, "nthread": threads}
    if valid is None:
        return xgb.train(params, _matrix(train), num_boost_round=rounds)
    model = xgb.train(params, _matrix(train), num_boost_round=rounds, evals=[(_matrix(valid), "valid")],
                      early_stopping_rounds=30, verbose_eval=False)
    return model[: model.best_iteration + 1]


@dataclass
class Tuned:
    model: xgb.Booster
    params: dict[str, Any]  # the grid point chosen
    valid_ndcg10: float
    valid_scores: list[np.ndarray]  # its scores of the validation queries (the blend weight is chosen on them)


def tune_xgboost(train: list[QueryRows], valid: list[QueryRows], grid: tuple[dict[str, Any], ...] = XGB_GRID) -> Tuned:
    """One early-stopped model per grid point; the best nDCG@10 on `valid` wins, judged by
    the same metric the figures report (not XGBoost's own, which breaks ties differently)."""
    best: Tuned | None = None
    for params in grid:
        model = train_xgboost(train, valid, params)
        scores = [predict(model, r.features) for r in valid]
        ndcg10 = mean_ndcg10(valid, scores)
        if best is None or ndcg10 > best.valid_ndcg10:
            best = Tuned(model, params, ndcg10, scores)
    assert best is not None, "empty grid"
    return best


def predict(model: xgb.Booster, features: np.ndarray) -> np.ndarray:
    """Serving-style scoring: in-place prediction, no DMatrix (much faster per query)."""
    return model.inplace_predict(features)


NEURAL_FEATURE = "neural_score"
BLEND_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)


def with_neural(r: QueryRows, neural_scores: np.ndarray) -> QueryRows:
    """The rows with the neural score as one more feature column (the stacked model's input)."""
    return replace(r, features=np.hstack([r.features, neural_scores[:, None].astype(np.float32)]))


def mean_ndcg10(rows: list[QueryRows], scores: list[np.ndarray]) -> float:
    """Mean over the queries, counting those with no gain as 0 (as the metric itself does)."""
    return sum(ndcg_of_scores(r.labels, s) for r, s in zip(rows, scores, strict=True)) / max(1, len(rows))


def choose_blend_weight(rows: list[QueryRows], xgb_scores: list[np.ndarray], neural_scores: list[np.ndarray]) -> float:
    """The weight w of `xgboost + w * neural` with the best nDCG@10 on `rows`."""
    return max(BLEND_WEIGHTS, key=lambda w: mean_ndcg10(rows, [x + w * n for x, n in zip(xgb_scores, neural_scores,
                                                                                      strict=True)]))


@dataclass
class CrossValidation:
    """Held-out scores per model: model -> query -> scores, over each query's candidates
    (`retrieval`) and over its judged products as their own list (`rerank`)."""

    retrieval: dict[str, dict[str, np.ndarray]]
    rerank: dict[str, dict[str, np.ndarray]]
    blend_weights: list[float]
    importance: dict[str, float]  # mean gain per input of the folds' XGBoost models (stacked ones with neural)
    rounds: dict[str, list[int]] = field(default_factory=dict)  # trees each fold's early stopping kept
    params: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # the grid point each fold chose

    def served_settings(self, name: str) -> tuple[dict[str, Any], int]:
        """What the served model of `name` uses: the grid point most folds chose (the
        cheaper on a tie) and the median tree count of the folds that chose it."""
        chosen = self.params[name]
        params = max(XGB_GRID, key=lambda p: (chosen.count(p), -XGB_GRID.index(p)))
        return params, int(np.median([n for n, p in zip(self.rounds[name], chosen, strict=True) if p == params]))

    @property
    def neural(self) -> dict[str, np.ndarray]:
        """Out-of-fold neural scores over each query's candidates: the stacked model's input."""
        return self.retrieval["neural"]


def fold_splits(rows: list[QueryRows], folds: int) -> list[tuple[list[QueryRows], list[QueryRows], list[QueryRows]]]:
    """(train, early-stopping validation, test) per fold; the validation queries come from
    an independent hash, so the split works for any fold count."""
    out = []
    for fold in range(folds):
        test = [r for r in rows if fold_of(r.query, folds) == fold]
        rest = [r for r in rows if fold_of(r.query, folds) != fold]
        out.append(([r for r in rest if fold_of("valid:" + r.query, 4) != 0],
                    [r for r in rest if fold_of("valid:" + r.query, 4) == 0], test))
    return out


def cross_validate(rows: list[QueryRows], product_vectors: np.ndarray, folds: int = 5, neural: bool = True,
                   progress: bool = True) -> CrossValidation:
    """Every query is scored by models that never saw it.

    The neural scorer is cross-validated first; its out-of-fold scores are then a feature of
    the stacked XGBoost model (standard stacking: a query's neural score never comes from a
    model trained on that query) and the other half of the learned blend, whose weight is
    chosen on each fold's validation queries."""
    splits = fold_splits(rows, folds)
    judged = {r.query: judged_view(r) for r in rows}
    # the exported model's inputs, as a cluster computes them: converted once, not per fold
    ltr_rows = dict(zip((r.query for r in rows), ltr_view(rows), strict=True))
    ltr_judged = dict(zip(judged, ltr_view(list(judged.values())), strict=True))
    cv = CrossValidation({"xgboost": {}, LTR_MODEL: {}}, {"xgboost": {}, LTR_MODEL: {}}, [], {})
    fold_models = []
    if neural:
        import torch

        from ranker.neural_train import QueryBatch, predict_batch, train_neural

        vectors = torch.from_numpy(np.array(product_vectors, dtype=np.float32))
        cv.retrieval["neural"], cv.rerank["neural"] = {}, {}
        for train, valid, test in tqdm(splits, desc="neural cross-validation", unit="fold",
                                       disable=None if progress else True):
            model = train_neural(QueryBatch.from_rows(train), QueryBatch.from_rows(valid), product_vectors,
                                 progress=False)
            for task, views in (("retrieval", test), ("rerank", [judged[r.query] for r in test])):
                scores = predict_batch(model, QueryBatch.from_rows(views), vectors)
                for r, s in zip(views, scores, strict=True):
                    getattr(cv, task)["neural"][r.query] = s[: len(r.ids)]
        for name in ("xgboost + neural feature", "xgboost + neural blend"):
            cv.retrieval[name], cv.rerank[name] = {}, {}

    for train, valid, test in tqdm(splits, desc="xgboost cross-validation", unit="fold",
                                   disable=None if progress else True):
        tuned = tune_xgboost(train, valid)
        model = _record(cv, "xgboost", tuned)
        ltr = _record(cv, LTR_MODEL, tune_xgboost([ltr_rows[r.query] for r in train],
                                                  [ltr_rows[r.query] for r in valid]))
        for r in test:
            cv.retrieval["xgboost"][r.query] = predict(model, r.features)
            cv.rerank["xgboost"][r.query] = predict(model, judged[r.query].features)
            cv.retrieval[LTR_MODEL][r.query] = predict(ltr, ltr_rows[r.query].features)
            cv.rerank[LTR_MODEL][r.query] = predict(ltr, ltr_judged[r.query].features)
        if not neural:
            fold_models.append(model)
            continue
        stacked = _record(cv, "xgboost + neural feature", tune_xgboost(
            [with_neural(r, cv.neural[r.query]) for r in train], [with_neural(r, cv.neural[r.query]) for r in valid]))
        weight = choose_blend_weight(valid, tuned.valid_scores, [cv.neural[r.query] for r in valid])
        cv.blend_weights.append(weight)
        fold_models.append(stacked)
        for r in test:
            for task, view in (("retrieval", r), ("rerank", judged[r.query])):
                neural_scores = getattr(cv, task)["neural"][r.query]
                getattr(cv, task)["xgboost + neural feature"][r.query] = predict(
                    stacked, with_neural(view, neural_scores).features)
                getattr(cv, task)["xgboost + neural blend"][r.query] = (
                    getattr(cv, task)["xgboost"][r.query] + weight * neural_scores)
    cv.importance = mean_importance(fold_models, model_inputs(neural))
    return cv


def _record(cv: CrossValidation, name: str, tuned: Tuned) -> xgb.Booster:
    cv.rounds.setdefault(name, []).append(tuned.model.num_boosted_rounds())
    cv.params.setdefault(name, []).append(tuned.params)
    return tuned.model


def model_inputs(neural_feature: bool) -> list[str]:
    from ranker.features import FEATURE_NAMES

    return [*FEATURE_NAMES, NEURAL_FEATURE] if neural_feature else list(FEATURE_NAMES)


def mean_importance(models: list[xgb.Booster], inputs: list[str]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for model in models:
        for key, value in model.get_score(importance_type="gain").items():
            name = inputs[int(key[1:])]  # XGBoost names unnamed columns f0, f1, ...
            totals[name] = totals.get(name, 0.0) + value / len(models)
    return {k: round(v, 3) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}


@dataclass
class ServedModels:
    xgboost: xgb.Booster
    neural: Any  # a ranker.neural_train.NeuralScorer, or None
    meta: dict[str, Any]


def train_served_models(rows: list[QueryRows], product_vectors: np.ndarray, cv: CrossValidation,
                        combine: str | None) -> ServedModels:
    """The models `/search` loads. XGBoost is trained on every query with the grid point
    most folds chose and as many trees as those folds' early stopping kept (their median):
    early stopping on one small held-out set is noisy (it once kept 4 trees where the
    folds kept 100+), and the blend weight was chosen for models of the folds' size. The
    neural scorer holds out a tenth of the queries for its early stopping. `combine`: "feature" (the neural score is an XGBoost
    input; trained on the out-of-fold neural scores, as in cross-validation), "blend"
    (xgboost + w * neural, w the median of the folds' choices) or None (XGBoost alone)."""
    neural = None
    if combine is not None:
        from ranker.neural_train import QueryBatch, train_neural

        train = [r for r in rows if fold_of(r.query, 10) != 0]
        valid = [r for r in rows if fold_of(r.query, 10) == 0]
        neural = train_neural(QueryBatch.from_rows(train), QueryBatch.from_rows(valid), product_vectors)
    name = "xgboost + neural feature" if combine == "feature" else "xgboost"
    params, rounds = cv.served_settings(name)
    train = [with_neural(r, cv.neural[r.query]) for r in rows] if combine == "feature" else rows
    model = train_xgboost(train, None, params, rounds=rounds)
    inputs = model_inputs(combine == "feature")
    meta = {"features": model_inputs(False), "inputs": inputs, "combine": combine,
            "blend_weight": float(np.median(cv.blend_weights)) if combine == "blend" else None,
            "trees": model.num_boosted_rounds(), "params": params, "fold_trees": cv.rounds,
            "fold_params": cv.params, "xgboost": xgb.__version__,
            "feature_importance_gain": mean_importance([model], inputs)}
    return ServedModels(model, neural, meta)


def save_served_models(out_dir: Path, version: str, served: ServedModels, meta: dict[str, Any]) -> Path:
    """Neural graph and meta first, the XGBoost file last and atomically: a server that
    sees `xgb-<version>.json` (what it looks for) sees everything that goes with it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if served.neural is not None:
        from ranker.neural_train import export_onnx

        export_onnx(served.neural, out_dir / f"neural-{version}.onnx")
        meta = {**meta, "neural": f"neural-{version}.onnx"}
    (out_dir / f"xgb-{version}.meta.json").write_text(json.dumps(meta, indent=2))
    tmp = out_dir / f".xgb-{version}.tmp.json"  # the extension picks the format: keep .json
    served.xgboost.save_model(tmp)
    tmp.replace(out_dir / f"xgb-{version}.json")
    return out_dir / f"xgb-{version}.json"
