"""One fit of every model `python -m ranker train` serves, on a given set of judged queries.

`train` runs it on all queries; `evaluate` runs the very same fit on each fold's training
queries and measures what it produced on the held-out fold through the search pipeline,
so the held-out figures are figures of what `train` would serve.

A fit, in order:
1. the query encoder tuned on the queries (the one the served model embeds with);
2. each query's vector from an encoder tuned without it (two folds), so the rows'
   vector features look like serving's for a query the encoder never met;
3. the training rows (ranker.training.dataset: the search pipeline's own recall and
   features);
4. the settings — XGBoost's grid point and tree count, the blend weight, how the trees
   use the neural score — from `Settings` given (the last `evaluate`), or chosen on a
   validation quarter of the queries;
5. the models on every row with those settings.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from indexer import settings
from indexer.backends import Backend
from indexer.encoder import TextEncoder
from indexer.publish import ensure_indexed
from indexer.store.base import LocalCatalog, SearchReader
from ranker.evaluate import known_judgments, read_judgments
from ranker.features.names import FEATURE_NAMES
from ranker.features.product_table import ProductTable
from ranker.features.sources import FeatureSource, feature_source, product_table
from ranker.pipeline import SearchPipeline
from ranker.spelling import QueryCorrector, query_corrector
from ranker.training import variants
from ranker.training.dataset import Judgments, QueryRows, RowBuilder, build_rows, ltr_view
from ranker.training.folds import fold_of, validation_split
from ranker.training.variants import ModelVariant
from ranker.training.xgboost_models import (
    XGB_GRID,
    mean_importance,
    mean_ndcg10,
    predict,
    train_xgboost,
    tune_xgboost,
)

log = logging.getLogger(__name__)

NEURAL_FEATURE = "neural_score"
BLEND_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
VECTOR_FOLDS = 2  # encoders tuned for the rows' out-of-fold query vectors


@dataclass
class TrainingSet:
    """What every fit reads: an index that holds its catalog in process, its judgments,
    and the search pipeline that recalls candidates for the rows."""

    reader: SearchReader
    catalog: LocalCatalog
    table: ProductTable
    shipped: TextEncoder  # the shipped query encoder of the index's variant
    corrector: QueryCorrector | None
    judgments: Judgments
    depth: int  # candidates a model re-ranks (recall goes as deep)

    @property
    def source(self) -> FeatureSource:
        return feature_source(self.reader, self.table)

    @property
    def ord_by_id(self) -> dict[str, int]:
        return self.table.ord_by_id

    def pipeline(self, embedder: Any = None, ranker: Any = None, recall_window: int | None = None) -> SearchPipeline:
        return SearchPipeline(self.reader, embedder or self.shipped, ranker=ranker, corrector=self.corrector,
                              recall_window=recall_window or self.depth)

    @functools.cached_property
    def _rows_pipeline(self) -> SearchPipeline:
        return self.pipeline()

    def searched_text(self, query: str) -> str:
        """The query as the pipeline's correct stage rewrites it."""
        return self._rows_pipeline.searched_text(query)

    def row_builder(self) -> RowBuilder:
        return RowBuilder(self._rows_pipeline, self.source, self.ord_by_id, self.depth)

    class NeedsLocalCatalog(RuntimeError):
        pass

    @classmethod
    def open(cls, backend: Backend, judgments: Path | None, *, catalog: Path | None = None,
             encoder: str | None = None, depth: int = 200, correct: bool = True,
             limit: int = 0) -> tuple[TrainingSet, list[str]]:
        """The index (built from `catalog` first when it does not serve it yet), its shipped
        query encoder, and the judgments of products it holds (none without `judgments`);
        the judged queries."""
        if catalog is not None:
            ensure_indexed(backend, catalog, encoder)
        reader = backend.reader()
        if not reader.capabilities.local_catalog:
            raise cls.NeedsLocalCatalog(
                "reads every product and vector in process, which this backend does not hold: run it on an "
                "embedded index of the same catalog (SHOPRANK_BACKEND=embedded); `evaluate --url` measures any "
                "running server")
        table = product_table(reader)
        assert table is not None
        known, queries = known_judgments(read_judgments(judgments), reader, limit) if judgments else ({}, [])
        shipped = TextEncoder(settings.models_dir(backend.data_dir), reader.encoder_variant, threads=1)
        return cls(reader, reader.catalog(), table, shipped, query_corrector(reader) if correct else None, known,
                   depth), queries


@dataclass(frozen=True)
class Settings:
    """What a fit uses instead of choosing on a validation split."""

    combine: str  # the served variant's key (ranker.training.variants)
    xgboost: dict[str, dict[str, Any]]  # variant key -> {"params": grid point, "trees": n}
    blend_weight: float
    chosen_by: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Settings:
        return cls(str(data["combine"]), dict(data["xgboost"]), float(data["blend_weight"]), str(data["chosen_by"]))


@dataclass
class Fitted:
    settings: Settings
    rows: list[QueryRows]  # the fit's training rows (vectors out of fold)
    trees: dict[str, xgb.Booster]  # variant key -> model (xgboost, stacked, LTR)
    neural: Any = None  # a ranker.training.neural.NeuralScorer
    tower: Any = None  # a ranker.training.query_encoder.QueryTower; None: the shipped encoder
    seconds: dict[str, float] = field(default_factory=dict)  # step -> seconds

    def importance(self, variant: ModelVariant) -> dict[str, float]:
        return mean_importance([self.trees[variant.key]], model_inputs(variant))


def model_inputs(variant: ModelVariant) -> list[str]:
    if variant is variants.LTR:
        from ranker.ltr_export import LTR_FEATURES

        return list(LTR_FEATURES)
    return [*FEATURE_NAMES, NEURAL_FEATURE] if variant is variants.NEURAL_FEATURE else list(FEATURE_NAMES)


def with_neural(r: QueryRows, neural_scores: np.ndarray) -> QueryRows:
    """The rows with the neural score as one more feature column (the stacked model's input)."""
    return replace(r, features=np.hstack([r.features, neural_scores[:, None].astype(np.float32)]))


def choose_blend_weight(rows: Sequence[QueryRows], xgb_scores: Sequence[np.ndarray],
                        neural_scores: Sequence[np.ndarray]) -> float:
    """The weight w of `xgboost + w * neural` with the best nDCG@10 on `rows`."""
    return max(BLEND_WEIGHTS, key=lambda w: mean_ndcg10(rows, [x + w * n for x, n in zip(xgb_scores, neural_scores,
                                                                                      strict=True)]))


def _neural_split(rows: Sequence[QueryRows]) -> tuple[list[QueryRows], list[QueryRows]]:
    """A tenth of the queries for the neural scorer's early stopping (at least one)."""
    held = {r.query for r in rows if fold_of(r.query, 10, "early stopping:") == 0} or {rows[0].query}
    return [r for r in rows if r.query not in held], [r for r in rows if r.query in held]


def train_neural_scorer(rows: Sequence[QueryRows], vectors: np.ndarray, progress: bool = False) -> Any:
    from ranker.training.neural import QueryBatch, train_neural

    train, valid = _neural_split(rows)
    return train_neural(QueryBatch.from_rows(train), QueryBatch.from_rows(valid), vectors, progress=progress)


def neural_scores(model: Any, rows: Sequence[QueryRows], vectors: np.ndarray) -> dict[str, np.ndarray]:
    import torch

    from ranker.training.neural import QueryBatch, predict_batch

    if not rows:
        return {}
    scores = predict_batch(model, QueryBatch.from_rows(rows), torch.from_numpy(np.array(vectors, dtype=np.float32)))
    return {r.query: s[: len(r.ids)] for r, s in zip(rows, scores, strict=True)}


def out_of_fold_neural(rows: Sequence[QueryRows], vectors: np.ndarray) -> dict[str, np.ndarray]:
    """Each query's neural scores from a scorer trained without it: the stacked model's
    input (standard stacking)."""
    out: dict[str, np.ndarray] = {}
    for fold in range(VECTOR_FOLDS):
        held = [r for r in rows if fold_of(r.query, VECTOR_FOLDS, "neural:") == fold]
        rest = [r for r in rows if fold_of(r.query, VECTOR_FOLDS, "neural:") != fold]
        if not held:
            continue
        model = train_neural_scorer(rest or held, vectors)  # `or held`: only a set too small to split
        out.update(neural_scores(model, held, vectors))
    return out


def choose_settings(rows: Sequence[QueryRows], vectors: np.ndarray, neural: bool,
                    oof_neural: Mapping[str, np.ndarray] | None) -> Settings:
    """Every setting chosen on a validation quarter of the queries (early stopping, the
    grid point, the blend weight), and the served combination: the best validation
    nDCG@10."""
    queries = [r.query for r in rows]
    train_q, valid_q = (set(part) for part in validation_split(queries))
    train, valid = [r for r in rows if r.query in train_q], [r for r in rows if r.query in valid_q]
    chosen: dict[str, dict[str, Any]] = {}
    quality: dict[str, float] = {}
    plain = tune_xgboost(train, valid)
    chosen[variants.XGBOOST.key] = {"params": plain.params, "trees": plain.trees}
    quality[variants.XGBOOST.key] = plain.valid_ndcg10
    ltr = tune_xgboost(ltr_view(train), ltr_view(valid))
    chosen[variants.LTR.key] = {"params": ltr.params, "trees": ltr.trees}
    weight = 0.0
    if neural:
        assert oof_neural is not None
        stacked = tune_xgboost([with_neural(r, oof_neural[r.query]) for r in train],
                               [with_neural(r, oof_neural[r.query]) for r in valid])
        chosen[variants.NEURAL_FEATURE.key] = {"params": stacked.params, "trees": stacked.trees}
        quality[variants.NEURAL_FEATURE.key] = stacked.valid_ndcg10
        neural_valid = [oof_neural[r.query] for r in valid]
        weight = choose_blend_weight(valid, plain.valid_scores, neural_valid)
        quality[variants.NEURAL_BLEND.key] = mean_ndcg10(valid, [x + weight * n for x, n in zip(
            plain.valid_scores, neural_valid, strict=True)])
    combine = max(quality, key=lambda key: quality[key])
    return Settings(combine, chosen, weight, "a validation quarter of the training queries")


def fit(data: TrainingSet, queries: Sequence[str], settings: Settings | None = None, *, neural: bool = True,
        tune_encoder: bool = True, every_variant: bool = False, progress: bool = True) -> Fitted:
    """The models for `queries` (see the module doc). `every_variant`: fit every learned
    variant, not only the one served (evaluate compares them)."""
    from ranker.training.query_encoder import judged_queries, out_of_fold_vectors, tune_query_encoder

    seconds: dict[str, float] = {}
    marks = [time.perf_counter()]

    def mark(step: str) -> None:
        marks.append(time.perf_counter())
        seconds[step] = seconds.get(step, 0.0) + marks[-1] - marks[-2]

    vectors = data.catalog.vectors
    tower, oof_vectors = None, None
    if tune_encoder:
        judged = judged_queries({q: data.judgments[q] for q in queries}, {q: data.searched_text(q) for q in queries},
                                data.ord_by_id)
        tower = tune_query_encoder(judged, vectors, progress=progress)
        mark("query encoder")
        oof_vectors = out_of_fold_vectors(judged, vectors, VECTOR_FOLDS, progress=progress)
        mark("query encoder, out of fold")
    rows = build_rows(data.row_builder(), data.judgments, queries, oof_vectors, progress=progress)
    mark("features")

    wants_stacked = neural and (every_variant or settings is None or settings.combine == variants.NEURAL_FEATURE.key)
    oof_neural = out_of_fold_neural(rows, vectors) if wants_stacked else None
    if settings is None:
        settings = choose_settings(rows, vectors, neural, oof_neural)
    mark("settings")

    served = variants.BY_KEY[settings.combine]
    wanted = set(variants.BY_KEY) if every_variant else {served.key, variants.LTR.key}
    trees: dict[str, xgb.Booster] = {}
    for variant in (variants.XGBOOST, variants.NEURAL_FEATURE, variants.LTR):
        needed = variant.key in wanted or (variant is variants.XGBOOST and served is variants.NEURAL_BLEND)
        if not needed or variant.key not in settings.xgboost:
            continue
        choice = settings.xgboost[variant.key]
        train = rows
        if variant is variants.LTR:
            train = ltr_view(rows)
        elif variant is variants.NEURAL_FEATURE:
            assert oof_neural is not None
            train = [with_neural(r, oof_neural[r.query]) for r in rows]
        trees[variant.key] = train_xgboost(train, None, choice["params"], rounds=int(choice["trees"]))
    mark("xgboost")
    scorer = train_neural_scorer(rows, vectors, progress=progress) if neural and (
        every_variant or served.uses_neural) else None
    mark("neural scorer")
    log.info("event=fitted queries=%d combine=%s seconds=%s", len(queries), settings.combine,
             {k: round(v) for k, v in seconds.items()})
    return Fitted(settings, rows, trees, scorer, tower, seconds)


def default_settings() -> Settings:
    """Used only when a fit has too few queries to hold a quarter out (tests, smoke runs)."""
    point = {"params": XGB_GRID[0], "trees": 100}
    return Settings(variants.XGBOOST.key, {variants.XGBOOST.key: point, variants.LTR.key: point}, 0.0, "defaults")


def scored(variant: ModelVariant, fitted: Fitted, rows: Sequence[QueryRows], vectors: np.ndarray,
           neural: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Each row's scores by one fitted variant, offline (no pipeline): the re-ranking task
    and the variants the server does not run. `neural`: the scorer's scores of `rows`."""
    if variant.uses_neural and neural is None:
        neural = neural_scores(fitted.neural, rows, vectors)
    out = {}
    for r in rows:
        if variant is variants.NEURAL:
            out[r.query] = neural[r.query]  # type: ignore[index]
        elif variant is variants.LTR:
            out[r.query] = predict(fitted.trees[variant.key], ltr_view([r])[0].features)
        elif variant is variants.NEURAL_FEATURE:
            out[r.query] = predict(fitted.trees[variant.key], with_neural(r, neural[r.query]).features)  # type: ignore[index]
        elif variant is variants.NEURAL_BLEND:
            out[r.query] = (predict(fitted.trees[variants.XGBOOST.key], r.features)
                            + fitted.settings.blend_weight * neural[r.query])  # type: ignore[index]
        else:
            out[r.query] = predict(fitted.trees[variant.key], r.features)
    return out
