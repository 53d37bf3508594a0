"""`python -m ranker train` end to end on the demo index, with judgments made up from the
catalog itself (a title query's own product is a perfect match, same-category products
are partial matches, others irrelevant)."""

from __future__ import annotations

import csv
import json
import random
import time
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from ranker.__main__ import main
from ranker.features import FEATURE_NAMES


@pytest.fixture
def judgments(tmp_path: Path, demo_products: list[dict]) -> Path:
    rng = random.Random(3)
    path = tmp_path / "judgments.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["query", "product_id", "relevance"])
        for product in rng.sample(demo_products, 120):
            query = " ".join(product["title"].split()[1:]).lower()  # drop the brand
            writer.writerow([query, product["id"], 3])
            same = [p for p in demo_products if p["category"] == product["category"] and p["id"] != product["id"]]
            for other in rng.sample(same, 3):
                writer.writerow([query, other["id"], 2])
            for other in rng.sample(demo_products, 3):
                if other["category"] != product["category"]:
                    writer.writerow([query, other["id"], 1])
    return path


def test_train_reports_cross_validation_and_saves_a_versioned_model(
        fresh_index: Path, judgments: Path, capsys: pytest.CaptureFixture[str], demo_reader, demo_searcher) -> None:  # type: ignore[no-untyped-def]
    out = fresh_index / "train.json"
    assert main(["train", "--judgments", str(judgments), "--data-dir", str(fresh_index), "--folds", "3",
                 "--depth", "50", "--json", str(out), "--combine", "feature"]) == 0
    printed = capsys.readouterr().out
    assert "3-fold cross-validation by query" in printed
    method_column = [line[:36].strip() for line in printed.splitlines()]
    for method in ("bm25", "vector", "hybrid", "hybrid + neural", "hybrid + xgboost",
                   "hybrid + xgboost + neural (feature)", "hybrid + xgboost + neural (blend)",
                   "hybrid + xgboost (LTR feature set)"):
        assert method_column.count(method) == 2  # one row per task

    meta = json.loads(out.read_text())
    report = (fresh_index / "rankers" / f"xgb-{meta['version']}.report.html").read_text()
    for section in ("Cross-validated quality", "Biggest wins", "Biggest losses", "Feature importance", "<svg"):
        assert section in report
    assert "log_recall_rank" in report or "bm25_combined" in report
    assert meta["features"] == list(FEATURE_NAMES)
    assert set(meta["cross_validation"]) == {"retrieval", "rerank"}
    models = sorted((fresh_index / "rankers").glob("xgb-*.json"))
    assert [m.name for m in models if not m.name.endswith(".meta.json")] == [f"xgb-{meta['version']}.json"]
    assert f"report: {fresh_index / 'rankers' / ('xgb-' + meta['version'] + '.report.html')}" in printed

    assert meta["combine"] == "feature" and meta["inputs"] == [*FEATURE_NAMES, "neural_score"]
    assert set(meta["feature_importance_gain"]) <= set(meta["inputs"])
    assert xgb.Booster(model_file=str(fresh_index / "rankers" / f"xgb-{meta['version']}.json")).num_features() == len(
        meta["inputs"])  # the tree model was trained with the neural score as an input column
    folds = meta["fold_trees"]["xgboost + neural feature"]
    chosen = meta["fold_params"]["xgboost + neural feature"]
    assert len(folds) == len(chosen) == 3 and meta["params"] in chosen  # settings chosen on validation queries
    assert meta["trees"] == int(np.median([n for n, p in zip(folds, chosen, strict=True) if p == meta["params"]]))

    from ranker.features import GenerationFeatures
    from ranker.recall import FusionConfig
    from ranker.rerank import LearnedRanker
    from ranker.training import FeatureBuilder

    builder = FeatureBuilder(demo_reader, demo_searcher.encoder, FusionConfig(), depth=50)
    ranker = LearnedRanker(fresh_index / "rankers" / f"xgb-{meta['version']}.json",
                           GenerationFeatures(demo_reader, builder.table))
    assert ranker.depth == 50 and ranker.neural is not None
    # the query encoder tuned on the judgments ships with the version and is the one used
    assert meta["index_encoder"] == demo_reader.encoder_variant and ranker.query_encoder is not None
    assert float(ranker.query_encoder.encode_query("wireless headphones")
                 @ demo_searcher.encoder.encode_query("wireless headphones")) < 0.9999
    recalled = builder.recall("wireless headphones")
    c = recalled.candidates
    result = ranker.rerank("wireless headphones", recalled.vector, c.ids, list(c.bm25_rank), list(c.vector_rank))
    assert sorted(result.ids) == sorted(c.ids) and np.isfinite(result.scores).all()
    # stacked: the tree model's input includes the ONNX neural score, and its output is the final score
    tree = xgb.Booster()
    tree.load_model(fresh_index / "rankers" / f"xgb-{meta['version']}.json")
    inputs = np.hstack([result.features, result.model_scores["neural"][:, None]])
    np.testing.assert_allclose(tree.inplace_predict(inputs), result.scores, atol=1e-5)

    # the same version carries the Learning-to-Rank plugin bodies: a feature set and a model over it
    from ranker.ltr_export import LTR_FEATURES, plugin_values
    from tests.ranking_helpers import score_with_dump

    featureset = json.loads((fresh_index / "rankers" / meta["ltr_featureset"]).read_text())["featureset"]
    model = json.loads((fresh_index / "rankers" / meta["ltr_model"]).read_text())["model"]
    assert featureset["name"] == model["name"] == meta["ltr_name"] == f"shoprank-{meta['version']}"
    assert [f["name"] for f in featureset["features"]] == list(LTR_FEATURES)
    trees = json.loads(model["model"]["definition"])
    ltr_scores = [score_with_dump(trees, dict(zip(LTR_FEATURES, map(float, v), strict=True)))
                  for v in plugin_values(result.features)]
    assert np.isfinite(ltr_scores).all() and np.ptp(ltr_scores) > 0


def test_neural_scorer_onnx_graph_matches_torch(demo_reader, demo_searcher, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Trained in torch, served by onnxruntime: the exported graph must score as torch does,
    with the standardization of the features inside the graph."""
    import torch

    from ranker.neural import NeuralScorerSession
    from ranker.neural_train import QueryBatch, export_onnx, train_neural
    from ranker.recall import FusionConfig
    from ranker.training import FeatureBuilder

    builder = FeatureBuilder(demo_reader, demo_searcher.encoder, FusionConfig(), depth=30)
    products = demo_reader.all_products()
    rows = [builder.query_rows(" ".join(p["title"].lower().split()[1:]), {p["id"]: 3.0}) for p in products[:40]]
    model = train_neural(QueryBatch.from_rows(rows[:30]), QueryBatch.from_rows(rows[30:]), demo_reader.vectors,
                         epochs=2, progress=False)
    export_onnx(model, tmp_path / "neural.onnx")
    session = NeuralScorerSession(tmp_path / "neural.onnx")
    r = rows[35]
    vectors = np.asarray(demo_reader.vectors[r.ordinals], dtype=np.float32)
    with torch.no_grad():
        expected = model(torch.tensor(r.query_vector[None]), torch.tensor(vectors),
                         torch.zeros(1, vectors.shape[1]), torch.from_numpy(r.features)).numpy()
    got = session.score(r.query_vector, vectors, r.features)
    assert got.shape == (len(r.ids),) and expected.std() > 0
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_judged_view_ranks_within_the_judged_list(demo_reader, demo_searcher) -> None:  # type: ignore[no-untyped-def]
    """Re-ranking judged products: rank features are relative to that list, as at serving
    time, not to a catalog-wide recall that may have missed some of them."""
    from ranker.features import FEATURE_INDEX
    from ranker.recall import FusionConfig
    from ranker.training import FeatureBuilder, judged_view

    builder = FeatureBuilder(demo_reader, demo_searcher.encoder, FusionConfig(), depth=20)
    products = demo_reader.all_products()
    judged = {products[i]["id"]: r for i, r in ((5, 3.0), (50, 2.0), (300, 1.0), (450, 2.33))}
    rows = builder.query_rows("black leather sofa", judged)
    view = judged_view(rows)
    assert sorted(view.ids) == sorted(judged) and (view.labels == [rows.labels[rows.ids.index(i)] for i in view.ids]).all()
    bm25 = view.features[:, FEATURE_INDEX["bm25_combined"]]
    bm25_ranks = np.expm1(view.features[:, FEATURE_INDEX["log_bm25_rank"]]).round()
    assert sorted(bm25_ranks) == [1, 2, 3, 4]
    assert bm25_ranks[np.argmax(bm25)] == 1
    assert np.expm1(view.features[:, FEATURE_INDEX["log_recall_rank"]]).round().max() == 4
    untouched = [i for n, i in enumerate(FEATURE_INDEX.values()) if "rank" not in list(FEATURE_INDEX)[n]]
    original = rows.features[[rows.ids.index(i) for i in view.ids]]
    assert np.array_equal(view.features[:, untouched], original[:, untouched])


def test_server_ranks_with_a_new_model_without_restart(fresh_index: Path, judgments: Path, make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server(fresh_index, workers=1)
    status, before = server.get("/search?q=wireless+headphones&k=5&explain=true")
    assert status == 200 and "model" not in before["results"][0]["explain"]  # no model yet: recall order

    assert main(["train", "--judgments", str(judgments), "--data-dir", str(fresh_index), "--folds", "2",
                 "--depth", "50", "--combine", "blend"]) == 0
    meta = json.loads(next((fresh_index / "rankers").glob("xgb-*.meta.json")).read_text())
    assert meta["combine"] == "blend" and (fresh_index / "rankers" / meta["neural"]).is_file()
    deadline = time.monotonic() + 20
    while True:
        status, after = server.get("/search?q=wireless+headphones&k=5&explain=true")
        if "model" in after["results"][0]["explain"]:
            break
        assert time.monotonic() < deadline, "the server never loaded the new model"
        time.sleep(0.1)
    explain = after["results"][0]["explain"]
    assert set(explain["features"]) == set(FEATURE_NAMES)
    model = explain["model"]
    assert model["final"] == pytest.approx(after["results"][0]["score"], abs=1e-6)
    assert model["final"] == pytest.approx(model["xgboost"] + meta["blend_weight"] * model["neural"], abs=1e-5)
    scores = [r["score"] for r in after["results"]]
    assert scores == sorted(scores, reverse=True)
    _, recall_order = server.get("/search?q=wireless+headphones&k=5&explain=true&rerank=false")
    assert "model" not in recall_order["results"][0]["explain"]
    assert [r["id"] for r in recall_order["results"]] == [r["id"] for r in before["results"]]


def test_feature_log_records_what_was_returned(fresh_index: Path, judgments: Path, make_server,  # type: ignore[no-untyped-def]
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["train", "--judgments", str(judgments), "--data-dir", str(fresh_index), "--folds", "2",
                 "--depth", "50", "--no-neural", "--no-query-tuning"]) == 0
    monkeypatch.setenv("SHOPRANK_FEATURE_LOG_RATE", "1")
    server = make_server(fresh_index, workers=2)
    returned = []
    for query in ("wireless headphones", "yoga mat", "cordless drill"):
        status, body = server.get(f"/search?q={query.replace(' ', '+')}&k=4&in_stock=true")
        assert status == 200
        returned.append((query, [r["id"] for r in body["results"]]))
    lines = [json.loads(line) for f in (fresh_index / "feature-log").glob("*.jsonl") for line in f.read_text().splitlines()]
    assert sorted((entry["query"], [r["id"] for r in entry["results"]]) for entry in lines) == sorted(returned)
    entry = lines[0]
    assert entry["filters"]["in_stock"] is True and entry["model"] and entry["generation"]
    assert [e["name"] for e in entry["results"][0]["log_entry"]] == list(FEATURE_NAMES)
    assert [r["rank"] for r in entry["results"]] == [1, 2, 3, 4]


def test_feature_log_is_off_by_default_and_checks_its_rate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ranker.feature_log import FeatureLog

    monkeypatch.delenv("SHOPRANK_FEATURE_LOG_RATE", raising=False)
    assert FeatureLog.from_env(tmp_path) is None
    with pytest.raises(ValueError, match="between 0 and 1"):
        FeatureLog(tmp_path, 1.5)


def test_a_new_model_reuses_the_loaded_generation(fresh_index: Path, judgments: Path, models_dir: Path) -> None:
    """Only the model is loaded again: the generation's reader (and its feature table) stay."""
    from web.serving import ServingState

    state = ServingState(fresh_index, models_dir)
    reader = state.searcher().reader
    assert state.searcher().ranker is None
    assert main(["train", "--judgments", str(judgments), "--data-dir", str(fresh_index), "--folds", "2",
                 "--depth", "50", "--combine", "blend"]) == 0
    meta = json.loads(next((fresh_index / "rankers").glob("xgb-*.meta.json")).read_text())
    assert meta["combine"] == "blend" and (fresh_index / "rankers" / meta["neural"]).is_file()
    deadline = time.monotonic() + 20
    while state.searcher().ranker is None:
        assert time.monotonic() < deadline, "the new model was never loaded"
        time.sleep(0.05)
    assert state.searcher().reader is reader
    searcher = state.searcher()
    assert searcher.query_encoder(50) is searcher.ranker.query_encoder is not None  # re-ranked searches: tuned
    assert searcher.query_encoder(0) is searcher.encoder  # rerank=false: recall as without a model

    from ranker.features import GenerationFeatures
    from ranker.rerank import LearnedRanker

    model = next(p for p in (fresh_index / "rankers").glob("xgb-*.json") if not p.name.endswith(".meta.json"))
    meta_path = model.with_name(model.stem + ".meta.json")
    meta_path.write_text(json.dumps({**meta, "index_encoder": "fp32"}))  # as if the index were re-encoded since
    assert LearnedRanker(model, GenerationFeatures(reader, searcher.ranker.source.table)).query_encoder is None


def test_served_settings_follow_the_folds_majority_and_prefer_the_cheaper_on_a_tie() -> None:
    from ranker.training import XGB_GRID, CrossValidation

    shallow, middle, deep = XGB_GRID
    cv = CrossValidation({}, {}, [], {}, rounds={"m": [100, 300, 200, 50]}, params={"m": [deep, middle, deep, shallow]})
    assert cv.served_settings("m") == (deep, 150)  # the median of the two folds that chose it
    cv.params["m"] = [deep, shallow, deep, shallow]
    assert cv.served_settings("m") == (shallow, 175)


def test_ndcg_of_scores_agrees_with_the_id_based_metric() -> None:
    from ranker.metrics import ndcg_at, ndcg_of_scores

    rng = np.random.default_rng(1)
    relevance = rng.choice([1.0, 1.67, 2.33, 3.0], size=30)
    scores = rng.random(30)
    ids = [f"p{i}" for i in range(30)]
    ranked = [ids[i] for i in np.argsort(-scores)]
    judged = dict(zip(ids, relevance.tolist(), strict=True))
    assert ndcg_of_scores(relevance - 1.0, scores) == pytest.approx(ndcg_at(ranked, judged, 10))
    assert ndcg_of_scores(np.zeros(5), np.arange(5.0)) == 0.0


def test_evaluate_writes_the_ablation_and_the_fusion_grid(fresh_index: Path, judgments: Path,  # type: ignore[no-untyped-def]
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out, report = fresh_index / "ablation.json", fresh_index / "ablation.html"
    assert main(["evaluate", "--judgments", str(judgments), "--data-dir", str(fresh_index), "--folds", "2",
                 "--depth", "40", "--no-neural", "--json", str(out), "--report", str(report)]) == 0
    summary = json.loads(out.read_text())
    assert summary["query_encoder"] == "tuned out of fold"
    for task in ("retrieval", "rerank"):
        assert list(summary["results"][task]) == ["bm25", "vector", "hybrid", "hybrid + xgboost",  # no neural asked
                                                  "hybrid + xgboost (LTR feature set)"]
        for figures in summary["results"][task].values():
            assert set(figures) == {"ndcg@5", "ndcg@10", "mrr", "recall@100", "queries"}
            assert 0.0 <= figures["ndcg@10"] <= 1.0 and figures["queries"] == summary["queries"]
    assert summary["results"]["rerank"]["hybrid"]["recall@100"] == 1.0  # judged lists hold every judged product
    # 40 candidates, so the model's top 100 is all of them: its recall is the candidates' own
    assert summary["candidate_pool_recall"] == summary["results"]["retrieval"]["hybrid + xgboost"]["recall@100"]
    assert "Feature importance" in report.read_text()
    assert not (fresh_index / "rankers").exists()  # evaluate measures; only train saves models

    grid = fresh_index / "grid.json"
    assert main(["evaluate", "--fusion-grid", "--judgments", str(judgments), "--data-dir", str(fresh_index),
                 "--json", str(grid)]) == 0
    methods = json.loads(grid.read_text())["methods"]
    assert {"bm25", "vector", "weighted bm25=0.7", "rrf k=60"} <= set(methods)
    assert "<- best on tune" in capsys.readouterr().out
