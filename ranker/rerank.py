"""The learned re-ranking stage: features for the top fused candidates, the trees
(XGBoost's model run by onnxruntime, `ranker.tree_session`) and the neural scorer, a new
order. A `LearnedRanker` is loaded per model version over the generation's feature source.

One thread per request: on two cores a second thread per call costs more in start-up and
contention than it saves on a few hundred rows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ranker.candidates import Candidate
from ranker.features.compute import CandidateRanks, compute_features
from ranker.features.names import FEATURE_NAMES
from ranker.features.sources import FeatureSource
from ranker.neural import NeuralScorerSession
from ranker.stages import HeadFeatures, QueryEmbedder, SearchContext
from ranker.tree_session import TreeScorer

log = logging.getLogger(__name__)

DEFAULT_DEPTH = 100  # for a model whose meta does not say how deep it was evaluated
COMBINES = (None, "feature", "blend")  # how the trees use the neural score (ranker.training.variants)


def meta_path(model_path: Path) -> Path:
    """`xgb-<version>.json` -> `xgb-<version>.meta.json`: what goes with the model."""
    return model_path.with_name(model_path.stem + ".meta.json")


def model_path(data_dir: Path, version: str) -> Path:
    return data_dir / "rankers" / f"xgb-{version}.json"


def latest_model(data_dir: Path, excluding: str | None = None) -> Path | None:
    """The newest `DATA/rankers/xgb-<version>.json` (versions sort by time), other than
    version `excluding` (a candidate under test is not served)."""
    models = sorted(p for p in (data_dir / "rankers").glob("xgb-*.json") if not p.name.endswith(".meta.json")
                    and p.stem != f"xgb-{excluding}")
    return models[-1] if models else None


def candidate_ranks(candidates: Sequence[Candidate], extra_ids: Sequence[str] = ()) -> CandidateRanks:
    """What recall knew about each candidate, in list order (NaN: that side missed it);
    `extra_ids` follow with no ranks at all (training adds judged products recall missed)."""
    def ranks(values: list[int | None]) -> np.ndarray:
        return np.array([np.nan if r is None else r for r in values] + [np.nan] * len(extra_ids), dtype=np.float64)

    recall = np.concatenate([np.arange(1, len(candidates) + 1, dtype=np.float64), np.full(len(extra_ids), np.nan)])
    return CandidateRanks([c.id for c in candidates] + list(extra_ids), recall,
                          ranks([c.bm25_rank for c in candidates]), ranks([c.vector_rank for c in candidates]))


@dataclass
class Scored:
    scores: np.ndarray
    model_scores: dict[str, np.ndarray]  # each model's own score, in candidate order


class LearnedRanker:
    def __init__(self, model_path: Path, source: FeatureSource, index_encoder: str):
        """`source` gives the candidates' feature inputs (ranker.features.sources);
        `index_encoder` is the serving index's encoder variant."""
        meta_file = meta_path(model_path)
        meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
        if meta.get("features", list(FEATURE_NAMES)) != list(FEATURE_NAMES):
            raise ValueError(f"{model_path.name} was trained on other features; retrain it (python -m ranker train)")
        self.path = model_path
        self.version = meta.get("version", model_path.stem)
        self.combine = meta.get("combine")
        self.blend_weight = float(meta.get("blend_weight") or 0.0)
        self.neural = NeuralScorerSession(model_path.with_name(meta["neural"])) if meta.get("neural") else None
        if self.combine not in COMBINES or (self.combine and self.neural is None):
            raise ValueError(f"{meta_file.name}: combine {self.combine!r} needs a neural model file")
        self.trees = TreeScorer(model_path, len(FEATURE_NAMES) + (self.combine == "feature"))
        # The candidates serving re-ranks: what `train --serve-depth` chose, else the depth
        # its training rows had (a model is sound at any depth up to that one).
        self.depth = int(meta.get("serve_depth") or meta.get("depth", DEFAULT_DEPTH))
        # Trees of their own for searches whose profile the gate admits (train --events): the
        # trees above never saw a profile, so they rank every other search.
        self.personal_trees = (TreeScorer(model_path.with_name(meta["personal_trees"]), len(FEATURE_NAMES))
                               if meta.get("personal_trees") else None)
        # …and a neural scorer fed the shopper's profile embedding, blended with them.
        self.personal_neural = (NeuralScorerSession(model_path.with_name(meta["personal_neural"]))
                                if meta.get("personal_neural") and self.personal_trees is not None else None)
        self.personal_blend = float(meta.get("personal_blend") or 0.0)
        # Columns the model was trained with set to 0 (train --events --ignore): scored so here too.
        self.ignored = [FEATURE_NAMES.index(name) for name in meta.get("ignored_features", [])]
        self.source = source
        self.query_encoder: QueryEmbedder | None = None
        if meta.get("query_encoder"):
            # Tuned against the index's product vectors of one encoder variant: with
            # another variant its queries would land in the wrong space, so it stays off.
            if meta.get("index_encoder") == index_encoder:
                from indexer.encoder import TextEncoder

                self.query_encoder = TextEncoder(model_path.parent, files=(
                    model_path.with_name(meta["query_encoder"]), model_path.with_name(meta["query_tokenizer"])))
            else:
                log.warning("event=query_encoder_skipped model=%s trained_for=%s index=%s", model_path.name,
                            meta.get("index_encoder"), index_encoder)

    @property
    def personal(self) -> bool:
        """Whether this version re-ranks admitted searches with personal trees."""
        return self.personal_trees is not None

    def _visible(self, features: np.ndarray) -> np.ndarray:
        if not self.ignored:
            return features
        features = features.copy()
        features[:, self.ignored] = 0.0
        return features

    def score_personal(self, features: np.ndarray, query_vector: np.ndarray | None = None,
                       vectors: np.ndarray | None = None, profile: np.ndarray | None = None) -> Scored:
        """The personal trees' scores of a head whose personal columns are filled in, plus
        the personal neural scorer's (query, products, profile embedding) when the version
        has one and the vectors are at hand."""
        assert self.personal_trees is not None
        features = self._visible(features)
        scores = self.personal_trees.score(features)
        if self.personal_neural is None or query_vector is None or vectors is None:
            return Scored(scores, {"personal": scores})
        neural = self.personal_neural.score(query_vector, vectors, features, profile)
        return Scored(scores + self.personal_blend * neural, {"personal": scores, "personal_neural": neural})

    def score(self, query_vector: np.ndarray, features: np.ndarray, vectors: np.ndarray) -> Scored:
        features = self._visible(features)
        model_scores = {}
        if self.neural is not None:
            model_scores["neural"] = self.neural.score(query_vector, vectors, features)
        if self.combine == "feature":
            model_scores["xgboost"] = self.trees.score(np.hstack([features, model_scores["neural"][:, None]]))
            return Scored(model_scores["xgboost"], model_scores)
        model_scores["xgboost"] = self.trees.score(features)
        return Scored(model_scores["xgboost"] + self.blend_weight * model_scores.get("neural", 0.0), model_scores)


class RerankStage:
    """The learned model orders the top `rerank_depth` fused candidates; the rest follow in
    recall order, below every re-ranked one."""

    name = "rerank"

    def __init__(self, ranker: LearnedRanker | None):
        self.ranker = ranker

    def __call__(self, search: SearchContext, candidates: list[Candidate]) -> list[Candidate]:
        depth, ranker = search.rerank_depth, self.ranker
        head, tail = candidates[:depth], candidates[depth:]
        if ranker is None or not head or search.vector is None:
            return candidates
        with search.timing("rerank.features"):
            ranks = candidate_ranks(head)
            inputs = ranker.source.inputs(search.text, ranks.ids)
            features = compute_features(search.text, search.vector, ranks, inputs, ranker.source.definition)
        search.head = HeadFeatures(ranks.ids, inputs, features)
        with search.timing("rerank.models"):
            scored = ranker.score(search.vector, features, inputs.vectors)
        assign(head, scored, features)
        return reorder(head, scored.scores, tail)


def assign(head: list[Candidate], scored: Scored, features: np.ndarray) -> None:
    """Each candidate's model scores and feature row, in list order."""
    finals = scored.scores.tolist()
    each = {name: s.tolist() for name, s in scored.model_scores.items()}
    for n, candidate in enumerate(head):
        candidate.model_score = candidate.score = finals[n]
        candidate.feature_row = features[n]
        candidate.model_scores = {name: values[n] for name, values in each.items()}


def reorder(head: list[Candidate], scores: np.ndarray, tail: list[Candidate]) -> list[Candidate]:
    """The head by `scores` (best first, ties in list order), then the tail, scored below it."""
    order = np.argsort(-scores, kind="stable").tolist()
    floor = float(scores.min())
    for candidate in tail:
        candidate.score = floor - 1.0
    return [head[i] for i in order] + tail
