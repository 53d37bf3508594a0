"""The XGBoost model at serving time, run by onnxruntime.

`Booster.inplace_predict` spends most of its time per call in Python (argument checks,
a JSON config per call) before it walks a tree; onnxruntime's `TreeEnsembleRegressor`
does not (docs/ranking.md has both timings). The model file stays XGBoost's own JSON (the
one artefact `train` writes and the LTR export reads); onnxmltools converts it when the
server loads it.

The conversion goes through `XGBRegressor` because onnxmltools knows no ranking
objectives; a ranking model's margin is a regression output (no link function), so the
trees and base score carry over unchanged. `TreeScorer` checks that on rows of its own
before it is used, and refuses the model otherwise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xgboost as xgb

from indexer.onnx_session import open_session

INPUT_NAME = "features"
TOLERANCE = 1e-4  # float32 sums of ~100s of leaves in another order


class TreeScorer:
    def __init__(self, model_path: Path, n_features: int):
        from onnxmltools.convert import convert_xgboost  # only a process that serves a model needs it
        from onnxmltools.convert.common.data_types import FloatTensorType

        regressor = xgb.XGBRegressor()
        regressor.load_model(model_path)
        booster = regressor.get_booster()
        if booster.num_features() != n_features:
            raise ValueError(f"{model_path.name} takes {booster.num_features()} features, not {n_features}")
        graph = convert_xgboost(regressor, initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
                                target_opset=15)
        # onnxruntime has no CUDA kernel for tree ensembles: CPU even where a GPU is present.
        self.session = open_session(graph.SerializeToString(), threads=1, cpu_only=True)
        booster.set_param({"nthread": 1})
        self._check_against(booster, n_features, model_path)

    def score(self, features: np.ndarray) -> np.ndarray:
        (scores,) = self.session.run(None, {INPUT_NAME: np.ascontiguousarray(features, dtype=np.float32)})
        return scores.reshape(-1)

    def _check_against(self, booster: xgb.Booster, n_features: int, model_path: Path) -> None:
        """Scores of random rows (with missing values) must be XGBoost's own."""
        rows = np.random.default_rng(0).normal(0.0, 3.0, size=(64, n_features)).astype(np.float32)
        rows[::7, ::3] = np.nan
        expected = booster.inplace_predict(rows)
        if not np.allclose(self.score(rows), expected, atol=TOLERANCE, rtol=TOLERANCE):
            raise ValueError(f"{model_path.name}: the ONNX trees do not score as XGBoost does")
