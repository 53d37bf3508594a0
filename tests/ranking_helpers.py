"""Small learned-ranking models, rows and copies for tests, shared by several test modules."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from indexer.mapping import load_definition
from ranker.features.names import FEATURE_INDEX, FEATURE_NAMES
from ranker.ltr_export import write_ltr_bodies
from ranker.training.dataset import QueryRows, ltr_view
from ranker.training.xgboost_models import train_xgboost


def synthetic_rows(queries: int = 60, per_query: int = 12, seed: int = 0) -> list[QueryRows]:
    """Feature rows whose labels follow title BM25, cosine and rating, with products with
    no price (-1) among them: enough for trees that split on several exported features."""
    rng = np.random.default_rng(seed)
    rows = []
    for q in range(queries):
        features = rng.normal(size=(per_query, len(FEATURE_NAMES))).astype(np.float32)
        features[:, FEATURE_INDEX["vector_cosine"]] = rng.uniform(-0.2, 0.9, per_query)
        features[:, FEATURE_INDEX["log_price"]] = np.where(rng.random(per_query) < 0.3, -1.0,
                                                           rng.uniform(0, 7, per_query))
        signal = (features[:, FEATURE_INDEX["bm25_title"]] + 2 * features[:, FEATURE_INDEX["vector_cosine"]]
                  + 0.3 * features[:, FEATURE_INDEX["rating"]] + 0.5 * (features[:, FEATURE_INDEX["log_price"]] < 0))
        labels = np.digitize(signal, np.quantile(signal, [0.5, 0.8])).astype(np.float32)
        ids = [f"q{q}-p{i}" for i in range(per_query)]
        rows.append(QueryRows(f"query {q}", ids, features, labels, np.ones(per_query, bool), np.ones(per_query, bool),
                              np.arange(per_query), np.zeros(4, np.float32)))
    return rows


def exported_ranker(data_dir: Path, version: str = "20260101T000000") -> dict:
    """A ranker version on disk as `train` leaves it, with a small model over synthetic rows."""
    rankers = data_dir / "rankers"
    rankers.mkdir(parents=True)
    model = train_xgboost(ltr_view(synthetic_rows(queries=20)), None, {"max_depth": 3}, rounds=5)
    meta = write_ltr_bodies(rankers, version, load_definition(), model)
    (rankers / f"xgb-{version}.meta.json").write_text(json.dumps(meta))
    model.save_model(rankers / f"xgb-{version}.json")
    return meta


def score_with_dump(trees: list[dict], values: dict[str, float]) -> float:
    """How the plugin walks an XGBoost JSON dump: `value < split_condition` goes to `yes`,
    compared as Java floats (float32), as XGBoost compares: a split sits on a data value, and
    in float64 its printed threshold can fall on the other side of that value."""
    total = 0.0
    for node in trees:
        while "leaf" not in node:
            below = np.float32(values[node["split"]]) < np.float32(node["split_condition"])
            target = node["yes"] if below else node["no"]
            node = next(child for child in node["children"] if child["nodeid"] == target)
        total += node["leaf"]
    return total


def row_builder(reader: Any, encoder: Any, depth: int = 30) -> Any:
    """Training rows as `train` builds them: the pipeline without a model, `depth` deep."""
    from ranker.features.sources import feature_source, product_table
    from ranker.pipeline import SearchPipeline
    from ranker.spelling import query_corrector
    from ranker.training.dataset import RowBuilder

    table = product_table(reader)
    assert table is not None
    pipeline = SearchPipeline(reader, encoder, corrector=query_corrector(reader), recall_window=depth)
    return RowBuilder(pipeline, feature_source(reader, table), table.ord_by_id, depth)


def copy_model(trained: Any, data_dir: Path) -> None:
    """A trained version into another data dir the way `train` writes it: the tree file last."""
    target = data_dir / "rankers"
    target.mkdir(exist_ok=True)
    for path in sorted(trained.model.parent.iterdir(), key=lambda p: p == trained.model):
        shutil.copy(path, target / path.name)


def save_tree_model(rankers: Path, depth: int, version: str = "1") -> Path:
    """A real (tiny) XGBoost ranking model over the feature vector, as `train` saves one."""
    import xgboost as xgb

    rng = np.random.default_rng(0)
    features = rng.random((400, len(FEATURE_NAMES)), dtype=np.float32)
    labels = (features[:, FEATURE_INDEX["bm25_title"]] > 0.5).astype(np.float32)
    matrix = xgb.DMatrix(features, label=labels)
    matrix.set_group([40] * 10)
    model = xgb.train({"objective": "rank:ndcg"}, matrix, num_boost_round=5)
    rankers.mkdir(parents=True, exist_ok=True)
    (rankers / f"xgb-{version}.meta.json").write_text(json.dumps({"version": version, "features": list(FEATURE_NAMES),
                                                                  "combine": None, "depth": depth}))
    model.save_model(rankers / f"xgb-{version}.json")
    return rankers / f"xgb-{version}.json"
