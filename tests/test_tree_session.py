"""Serving runs XGBoost's trees through onnxruntime: it must order exactly as XGBoost does,
and refuse a model whose converted trees would not."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from ranker.features.names import FEATURE_NAMES
from ranker.training.xgboost_models import train_xgboost
from ranker.tree_session import TreeScorer
from tests.ranking_helpers import synthetic_rows


@pytest.mark.parametrize("early_stopped", [False, True])
def test_onnx_trees_score_as_xgboost(tmp_path: Path, early_stopped: bool) -> None:
    rows = synthetic_rows(queries=40)
    valid = rows[30:] if early_stopped else None
    model = train_xgboost(rows[:30], valid, {"max_depth": 4, "eta": 0.3}, rounds=40)
    path = tmp_path / "xgb-test.json"
    model.save_model(path)
    scorer = TreeScorer(path, len(FEATURE_NAMES))
    features = np.vstack([r.features for r in rows[30:]])
    features[::5, ::4] = np.nan  # features a backend could not compute go down XGBoost's default branch
    expected = model.inplace_predict(features)
    scores = scorer.score(features)
    assert scores.shape == expected.shape
    assert np.allclose(scores, expected, atol=1e-5)
    assert (np.argsort(-scores, kind="stable") == np.argsort(-expected, kind="stable")).all()


def test_a_model_with_other_features_is_refused(tmp_path: Path) -> None:
    model = train_xgboost(synthetic_rows(queries=10), None, {"max_depth": 2}, rounds=3)
    path = tmp_path / "xgb-test.json"
    model.save_model(path)
    with pytest.raises(ValueError, match=re.escape(f"xgb-test.json takes {len(FEATURE_NAMES)} features, not 5")):
        TreeScorer(path, 5)


def test_a_conversion_that_changes_scores_is_refused(tmp_path: Path) -> None:
    """A logistic model's output is a probability; converted as a regression it would be
    the raw margin. The load-time check is what stops such a model from being served."""
    rng = np.random.default_rng(0)
    features = rng.normal(size=(200, len(FEATURE_NAMES))).astype(np.float32)
    labels = (features[:, 0] > 0).astype(np.float32)
    model = xgb.train({"objective": "binary:logistic", "max_depth": 2}, xgb.DMatrix(features, labels), 5)
    path = tmp_path / "xgb-logistic.json"
    model.save_model(path)
    with pytest.raises(ValueError, match=re.escape("xgb-logistic.json: the ONNX trees do not score as XGBoost does")):
        TreeScorer(path, len(FEATURE_NAMES))
