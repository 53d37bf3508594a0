"""`evaluate`: what `train` would serve, measured on queries it never saw.

Each fold's training queries get the very fit `train` runs (ranker.training.fit), saved
as model versions the way `train` saves them, loaded by the server's own loader, and the
held-out queries are searched through the search pipeline with them: the retrieval
figures are figures of the served path. The variants the server does not run (the neural
scorer alone, the Learning-to-Rank export) and the re-ranking task (each query's judged
products as a list of their own) are scored offline from the same fit's rows.

The settings each fold chose are aggregated into the `Settings` the next `train` uses.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from indexer.encoder import TextEncoder
from ranker.evaluate import Judgments, pipeline_search, score_runs
from ranker.features.names import FEATURE_INDEX
from ranker.fusion import FusionConfig, blend_scores
from ranker.metrics import recall_at
from ranker.recall import MIN_RECALL_WINDOW
from ranker.rerank import LearnedRanker
from ranker.training import variants
from ranker.training.dataset import QueryRows, build_rows, judged_view
from ranker.training.fit import Fitted, Settings, TrainingSet, fit, neural_scores, scored
from ranker.training.folds import fold_splits
from ranker.training.saving import export_query_encoder, save_version
from ranker.training.xgboost_models import XGB_GRID

DEPTH_SHOWN = 100  # retrieval figures are of the top 100
TASKS = ("retrieval", "rerank")
RECALL_ROWS: dict[str, dict[str, Any]] = {  # recall as served without a model, shipped query encoder
    "bm25": {"mode": "bm25", "rerank": False},
    "vector": {"mode": "vector", "rerank": False},
    "hybrid": {"rerank": False},
}
TUNED_ROWS: dict[str, dict[str, Any]] = {  # the same with the fold's tuned query encoder
    "vector, tuned query encoder": {"mode": "vector", "rerank": False},
    "hybrid, tuned query encoder": {"rerank": False},
}


@dataclass
class Evaluation:
    runs: dict[str, dict[str, dict[str, list[str]]]]  # task -> row -> query -> ranked ids
    fold_settings: list[Settings] = field(default_factory=list)
    pool_recall: list[float] = field(default_factory=list)  # per query: relevant products among the candidates
    seconds: dict[str, float] = field(default_factory=dict)
    importance: dict[str, float] = field(default_factory=dict)  # the served variant's, mean over folds

    def results(self, judgments: Judgments) -> dict[str, dict[str, dict[str, float]]]:
        return {task: {row: score_runs(runs, judgments).as_dict() for row, runs in rows.items() if runs}
                for task, rows in self.runs.items()}

    def best_served(self, judgments: Judgments) -> variants.ModelVariant:
        """The servable variant with the best retrieval nDCG@10 through the pipeline."""
        retrieval = self.results(judgments)["retrieval"]
        candidates = [v for v in variants.SERVABLE if v.row in retrieval]
        return max(candidates, key=lambda v: retrieval[v.row]["ndcg@10"])

    def settings(self, judgments: Judgments, chosen_by: str) -> Settings:
        """For `train`: the best served variant, each model's grid point most folds chose
        (the cheaper on a tie) with the median tree count of those folds, the median blend
        weight."""
        xgboost: dict[str, dict[str, Any]] = {}
        for key in {k for s in self.fold_settings for k in s.xgboost}:
            choices = [s.xgboost[key] for s in self.fold_settings if key in s.xgboost]
            params = max(XGB_GRID, key=lambda p: (sum(c["params"] == p for c in choices), -XGB_GRID.index(p)))
            xgboost[key] = {"params": params,
                            "trees": int(np.median([c["trees"] for c in choices if c["params"] == params]))}
        weights = [s.blend_weight for s in self.fold_settings]
        return Settings(self.best_served(judgments).key, xgboost, float(statistics.median(weights)), chosen_by)

    def fold_choices(self) -> dict[str, Any]:
        return {"combine": dict(Counter(s.combine for s in self.fold_settings)),
                "blend_weights": [s.blend_weight for s in self.fold_settings],
                "xgboost": {key: [s.xgboost.get(key) for s in self.fold_settings]
                            for key in sorted({k for s in self.fold_settings for k in s.xgboost})}}


def _top(ids: Sequence[str], scores: np.ndarray, k: int | None = None) -> list[str]:
    return [ids[i] for i in np.argsort(-scores, kind="stable")][:k]


def _offline_runs(evaluation: Evaluation, fitted: Fitted, rows: list[QueryRows], data: TrainingSet,
                  neural: bool) -> None:
    """The re-ranking task for every variant, and retrieval for the variants the server
    does not run, from the held-out rows."""
    vectors = data.catalog.vectors
    neural_of = neural_scores(fitted.neural, rows, vectors) if neural else None
    judged_rows = [judged_view(r) for r in rows]
    neural_judged = neural_scores(fitted.neural, judged_rows, vectors) if neural else None
    fusion = FusionConfig()
    bm25_col, cos_col = FEATURE_INDEX["bm25_combined"], FEATURE_INDEX["vector_cosine"]
    rerank = evaluation.runs["rerank"]
    for j in judged_rows:
        bm25, cosine = j.features[:, bm25_col], j.features[:, cos_col]
        rerank["bm25"][j.query] = _top(j.ids, bm25)
        rerank["vector"][j.query] = _top(j.ids, cosine)
        rerank["hybrid"][j.query] = _top(j.ids, blend_scores(bm25, cosine, fusion.lexical_weight,
                                                            fusion.vector_weight))
    for variant in variants.ALL:
        if variant.uses_neural and not neural:
            continue
        for j, scores in zip(judged_rows, scored(variant, fitted, judged_rows, vectors, neural_judged).values(),
                             strict=True):
            rerank[variant.row][j.query] = _top(j.ids, scores)
        if not variant.served:
            for r, scores in zip(rows, scored(variant, fitted, rows, vectors, neural_of).values(), strict=True):
                recalled = np.flatnonzero(r.in_recall)
                evaluation.runs["retrieval"][variant.row][r.query] = _top([r.ids[i] for i in recalled],
                                                                          scores[recalled], DEPTH_SHOWN)
    for r in rows:
        found = recall_at([r.ids[i] for i in np.flatnonzero(r.in_recall)], data.judgments[r.query], len(r.ids))
        if found is not None:
            evaluation.pool_recall.append(found)


def depth_row(variant: variants.ModelVariant, depth: int) -> str:
    return f"{variant.row}, re-ranking {depth}"


def cross_validate(data: TrainingSet, queries: Sequence[str], folds: int, work_dir: Any, *, neural: bool = True,
                   tune_encoder: bool = True, serve_depths: Sequence[int] = (), progress: bool = True) -> Evaluation:
    """`serve_depths`: also serve each fold's models re-ranking (and recalling) this many
    candidates, not the depth they were trained at: what quality each depth buys."""
    rows = ["bm25", "vector", "hybrid", *(TUNED_ROWS if tune_encoder else ()),
            *(v.row for v in variants.ALL if neural or not v.uses_neural),
            *(depth_row(v, d) for v in variants.servable(neural) for d in serve_depths)]
    evaluation = Evaluation({task: {row: {} for row in rows} for task in TASKS})
    started = time.perf_counter()
    served_without_model = data.pipeline(recall_window=MIN_RECALL_WINDOW)
    for row, options in RECALL_ROWS.items():
        search = pipeline_search(served_without_model, **options)
        evaluation.runs["retrieval"][row] = {q: search(q, DEPTH_SHOWN) for q in queries}
    evaluation.seconds["recall rows"] = time.perf_counter() - started
    importance: list[dict[str, float]] = []
    for fold, train_q, test_q in tqdm(fold_splits(queries, folds), total=folds, desc="cross-validation", unit="fold",
                                      disable=None if progress else True):
        fitted = fit(data, train_q, None, neural=neural, tune_encoder=tune_encoder, every_variant=True,
                     progress=progress)
        for step, seconds in fitted.seconds.items():
            evaluation.seconds[step] = evaluation.seconds.get(step, 0.0) + seconds
        evaluation.fold_settings.append(fitted.settings)
        started = time.perf_counter()
        fold_dir = work_dir / f"fold-{fold}"
        encoder_files = export_query_encoder(fitted, fold_dir, f"fold-{fold}")
        if encoder_files:
            tuned = TextEncoder(fold_dir, files=(fold_dir / encoder_files["query_encoder"],
                                                 fold_dir / encoder_files["query_tokenizer"]))
            pipeline = data.pipeline(embedder=tuned, recall_window=MIN_RECALL_WINDOW)
            for row, options in TUNED_ROWS.items():
                search = pipeline_search(pipeline, **options)
                evaluation.runs["retrieval"][row].update({q: search(q, DEPTH_SHOWN) for q in test_q})
        for variant in variants.servable(neural):
            path = save_version(fold_dir, f"fold-{fold}-{variant.key.replace(' ', '-')}", fitted, data,
                                variant=variant, query_encoder=encoder_files)
            ranker = LearnedRanker(path, data.source, data.reader.encoder_variant)
            search = pipeline_search(data.pipeline(ranker=ranker, recall_window=MIN_RECALL_WINDOW))
            evaluation.runs["retrieval"][variant.row].update({q: search(q, DEPTH_SHOWN) for q in test_q})
            for depth in serve_depths:
                shallower = copy.copy(ranker)
                shallower.depth = depth
                search = pipeline_search(data.pipeline(ranker=shallower, recall_window=MIN_RECALL_WINDOW))
                evaluation.runs["retrieval"][depth_row(variant, depth)].update(
                    {q: search(q, DEPTH_SHOWN) for q in test_q})
        served = variants.BY_KEY[fitted.settings.combine]
        importance.append(fitted.importance(variants.NEURAL_FEATURE if served is variants.NEURAL_FEATURE
                                            else variants.XGBOOST))
        evaluation.seconds["pipeline runs"] = evaluation.seconds.get("pipeline runs", 0.0) + (
            time.perf_counter() - started)
        started = time.perf_counter()
        vectors = fitted.tower.encode([data.searched_text(q) for q in test_q]) if fitted.tower is not None else None
        held_out = build_rows(data.row_builder(), data.judgments, test_q,
                              dict(zip(test_q, vectors, strict=True)) if vectors is not None else None,
                              progress=progress)
        _offline_runs(evaluation, fitted, held_out, data, neural)
        evaluation.seconds["offline scoring"] = evaluation.seconds.get("offline scoring", 0.0) + (
            time.perf_counter() - started)
    names = {name for scores in importance for name in scores}
    evaluation.importance = dict(sorted(((n, round(float(np.mean([s.get(n, 0.0) for s in importance])), 3))
                                         for n in names), key=lambda kv: -kv[1]))
    return evaluation
