"""The learned ranker at serving time: features for the fused candidates, one call of the
trees (XGBoost's model run by onnxruntime, `ranker.tree_session`), a new order. Loaded per
model version, over the generation's feature table.

One thread per request: on two cores a second thread per call costs more in start-up and
contention than it saves on 100 rows.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ranker.features import FEATURE_NAMES, Candidates, GenerationFeatures, RequestFeatures, features_for
from ranker.neural import NeuralScorerSession
from ranker.tree_session import TreeScorer

log = logging.getLogger(__name__)

DEFAULT_DEPTH = 100  # for a model whose meta does not say how deep it was evaluated


def meta_path(model_path: Path) -> Path:
    """`xgb-<version>.json` -> `xgb-<version>.meta.json`: what goes with the model."""
    return model_path.with_name(model_path.stem + ".meta.json")


def latest_model(data_dir: Path) -> Path | None:
    """The newest `DATA/rankers/xgb-<version>.json` (versions sort by time)."""
    models = sorted(p for p in (data_dir / "rankers").glob("xgb-*.json") if not p.name.endswith(".meta.json"))
    return models[-1] if models else None


@dataclass
class Reranked:
    ids: list[str]
    scores: np.ndarray
    features: np.ndarray  # rows in the new order
    model_scores: dict[str, np.ndarray]  # each model's own score, rows in the new order


class LearnedRanker:
    def __init__(self, model_path: Path, source: GenerationFeatures | RequestFeatures):
        """`source` gives the candidates' feature inputs: the generation's feature table
        (embedded; built once per generation, shared across model versions) or one request
        per query to the cluster (OpenSearch)."""
        meta_file = meta_path(model_path)
        meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
        if meta.get("features", list(FEATURE_NAMES)) != list(FEATURE_NAMES):
            raise ValueError(f"{model_path.name} was trained on other features; retrain it (python -m ranker train)")
        self.path = model_path
        self.version = meta.get("version", model_path.stem)
        self.combine = meta.get("combine")
        self.blend_weight = float(meta.get("blend_weight") or 0.0)
        self.neural = NeuralScorerSession(model_path.with_name(meta["neural"])) if meta.get("neural") else None
        if self.combine not in (None, "feature", "blend") or (self.combine and self.neural is None):
            raise ValueError(f"{meta_file.name}: combine {self.combine!r} needs a neural model file")
        self.trees = TreeScorer(model_path, len(FEATURE_NAMES) + (self.combine == "feature"))
        self.depth = int(meta.get("depth", DEFAULT_DEPTH))  # candidates it was evaluated on; serving re-ranks as many
        self.source = source
        self.query_encoder = None
        if meta.get("query_encoder"):
            # Tuned against the index's product vectors of one encoder variant: with
            # another variant its queries would land in the wrong space, so it stays off.
            if meta.get("index_encoder") == source.reader.encoder_variant:
                from indexer.encoder import TextEncoder

                self.query_encoder = TextEncoder(model_path.parent, files=(
                    model_path.with_name(meta["query_encoder"]), model_path.with_name(meta["query_tokenizer"])))
            else:
                log.warning("event=query_encoder_skipped model=%s trained_for=%s index=%s", model_path.name,
                            meta.get("index_encoder"), source.reader.encoder_variant)

    def rerank(self, query: str, vector: np.ndarray, ids: list[str], bm25_ranks: list[float | None],
               vector_ranks: list[float | None]) -> Reranked:
        """`ids` in fused order; ranks None where that side did not return the product."""
        candidates = Candidates(
            ids,
            np.arange(1, len(ids) + 1, dtype=np.float64),
            np.array([np.nan if r is None else r for r in bm25_ranks], dtype=np.float64),
            np.array([np.nan if r is None else r for r in vector_ranks], dtype=np.float64),
        )
        features, vectors = features_for(self.source, query, vector, candidates)
        model_scores = {}
        if self.neural is not None:
            model_scores["neural"] = self.neural.score(vector, vectors, features)
        if self.combine == "feature":
            model_scores["xgboost"] = self.trees.score(np.hstack([features, model_scores["neural"][:, None]]))
            scores = model_scores["xgboost"]
        else:
            model_scores["xgboost"] = self.trees.score(features)
            scores = model_scores["xgboost"] + self.blend_weight * model_scores.get("neural", 0.0)
        order = np.argsort(-scores, kind="stable")
        return Reranked([ids[i] for i in order], scores[order], features[order],
                        {name: s[order] for name, s in model_scores.items()})
