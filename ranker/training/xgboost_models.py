"""XGBoost LambdaMART over the feature rows: training, early stopping, the settings grid."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xgboost as xgb

from ranker.metrics import ndcg_of_scores
from ranker.training.dataset import QueryRows

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

# What a fit chooses between on its validation queries (best nDCG@10): model capacity is
# the setting that moved the figures in trial runs. Shallower trees get a higher learning
# rate, so every point early-stops after a few hundred trees. The cheapest point (fewest
# tree levels to walk per candidate) comes first and wins ties.
XGB_GRID: tuple[dict[str, Any], ...] = (
    {"max_depth": 4, "eta": 0.2},
    {"max_depth": 6, "eta": 0.1},
    {"max_depth": 8, "eta": 0.1},
)
MAX_ROUNDS = 500


def _matrix(rows: Sequence[QueryRows]) -> xgb.DMatrix:
    matrix = xgb.DMatrix(np.vstack([r.features for r in rows]), label=np.concatenate([r.labels for r in rows]))
    matrix.set_group([len(r.ids) for r in rows])
    return matrix


def train_xgboost(train: Sequence[QueryRows], valid: Sequence[QueryRows] | None, params: dict[str, Any],
                  rounds: int = MAX_ROUNDS, threads: int = 0) -> xgb.Booster:
    """With `valid`: early stopping on its queries' nDCG@10, the model cut at its best
    iteration, so every later use is the same. Without: exactly `rounds` trees."""
    params = {**XGB_PARAMS, **params, "nthread": threads}
    if valid is None:
        return xgb.train(params, _matrix(train), num_boost_round=rounds)
    model = xgb.train(params, _matrix(train), num_boost_round=rounds, evals=[(_matrix(valid), "valid")],
                      early_stopping_rounds=30, verbose_eval=False)
    return model[: model.best_iteration + 1]


def predict(model: xgb.Booster, features: np.ndarray) -> np.ndarray:
    """In-place prediction, no DMatrix (much faster per query)."""
    return model.inplace_predict(features)


def mean_ndcg10(rows: Sequence[QueryRows], scores: Sequence[np.ndarray]) -> float:
    """Mean over the queries, counting those with no gain as 0 (as the metric itself does)."""
    return sum(ndcg_of_scores(r.labels, s) for r, s in zip(rows, scores, strict=True)) / max(1, len(rows))


@dataclass
class Tuned:
    model: xgb.Booster
    params: dict[str, Any]  # the grid point chosen
    valid_ndcg10: float
    valid_scores: list[np.ndarray]  # its scores of the validation queries

    @property
    def trees(self) -> int:
        return self.model.num_boosted_rounds()


def tune_xgboost(train: Sequence[QueryRows], valid: Sequence[QueryRows],
                 grid: tuple[dict[str, Any], ...] = XGB_GRID) -> Tuned:
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


def mean_importance(models: Sequence[xgb.Booster], inputs: Sequence[str]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for model in models:
        for key, value in model.get_score(importance_type="gain").items():
            name = inputs[int(key[1:])]  # XGBoost names unnamed columns f0, f1, ...
            totals[name] = totals.get(name, 0.0) + value / len(models)
    return {k: round(v, 3) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}
