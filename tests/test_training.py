"""`python -m ranker evaluate` and `train` end to end on the demo index, with judgments
made up from the catalog itself (tests/conftest.py: a title query's own product is a
perfect match, same-category products partial matches, others irrelevant). One run of
each is shared by these tests (the `trained` fixture)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from indexer.backends import open_backend
from ranker.__main__ import main
from ranker.features.names import FEATURE_INDEX, FEATURE_NAMES
from tests.conftest import TRAIN_DEPTH, Trained, copy_data_dir
from tests.ranking_helpers import copy_model, row_builder

RETRIEVAL_ROWS = ["bm25", "vector", "hybrid", "vector, tuned query encoder", "hybrid, tuned query encoder",
                  "hybrid + neural", "hybrid + xgboost", "hybrid + xgboost + neural (feature)",
                  "hybrid + xgboost + neural (blend)", "hybrid + xgboost (LTR feature set)",
                  "hybrid + xgboost, re-ranking 30", "hybrid + xgboost + neural (feature), re-ranking 30",
                  "hybrid + xgboost + neural (blend), re-ranking 30"]
RERANK_ROWS = ["bm25", "vector", "hybrid", "hybrid + neural", "hybrid + xgboost",
               "hybrid + xgboost + neural (feature)", "hybrid + xgboost + neural (blend)",
               "hybrid + xgboost (LTR feature set)"]
# On these judgments a title query finds its own product near the top; a model that
# orders candidates backwards (tests below) scores far under this.
NDCG10_FLOOR = 0.6


def test_evaluate_cross_validates_every_model_through_the_pipeline(trained: Trained) -> None:
    summary = trained.evaluation
    assert list(summary["results"]["retrieval"]) == RETRIEVAL_ROWS
    assert list(summary["results"]["rerank"]) == RERANK_ROWS
    for task in ("retrieval", "rerank"):
        for figures in summary["results"][task].values():
            assert set(figures) == {"ndcg@5", "ndcg@10", "mrr", "recall@100", "queries"}
            assert figures["queries"] == summary["queries"] > 100
    retrieval = summary["results"]["retrieval"]
    served = next(row for row in RETRIEVAL_ROWS[6:9] if row.endswith(_row_suffix(summary["settings"]["combine"])))
    assert retrieval[served]["ndcg@10"] >= NDCG10_FLOOR
    assert retrieval[served]["ndcg@10"] == max(retrieval[row]["ndcg@10"] for row in RETRIEVAL_ROWS[6:9])
    # served shallower than trained (`--serve-depths 30`): what each depth buys, all through the pipeline
    shallow = retrieval[served + ", re-ranking 30"]
    assert shallow["queries"] == summary["queries"] and shallow["ndcg@10"] >= NDCG10_FLOOR
    assert summary["results"]["rerank"]["hybrid"]["recall@100"] == 1.0  # judged lists hold every judged product
    # the settings the next `train` uses: what the folds chose, aggregated
    saved = json.loads((trained.data_dir / "evaluation" / "settings.json").read_text())
    assert saved == summary["settings"] and saved["chosen_by"].startswith("python -m ranker evaluate")
    assert sum(summary["fold_choices"]["combine"].values()) == 2
    for key, choices in summary["fold_choices"]["xgboost"].items():
        chosen = [c for c in choices if c["params"] == saved["xgboost"][key]["params"]]
        assert chosen and saved["xgboost"][key]["trees"] == int(np.median([c["trees"] for c in chosen]))
    report = (trained.data_dir / "evaluation" / "evaluation.report.html").read_text()
    for section in ("Cross-validated quality", "Biggest wins", "Biggest losses", "Feature importance", "<svg"):
        assert section in report
    assert "log_recall_rank" in report and not (trained.data_dir / "evaluation" / "fold-0").exists()


def _row_suffix(combine_key: str) -> str:
    from ranker.training.variants import BY_KEY

    return BY_KEY[combine_key].row.removeprefix("hybrid")


def test_train_fits_with_the_evaluated_settings_and_saves_one_version(trained: Trained) -> None:
    meta, settings = trained.meta, trained.evaluation["settings"]
    assert f"settings from {trained.data_dir / 'evaluation' / 'settings.json'}" in trained.train_output
    from ranker.training.variants import BY_KEY

    served = BY_KEY[settings["combine"]]
    assert meta["combine"] == served.combine and meta["depth"] == meta["serve_depth"] == TRAIN_DEPTH
    assert meta["features"] == list(FEATURE_NAMES)
    tree_key = "xgboost + neural feature" if served.combine == "feature" else "xgboost"
    assert meta["trees"] == settings["xgboost"][tree_key]["trees"]
    assert meta["settings"] == {**settings, "combine": served.key}
    booster = xgb.Booster(model_file=str(trained.model))
    assert booster.num_features() == len(meta["inputs"]) == len(FEATURE_NAMES) + (served.combine == "feature")
    rankers = trained.model.parent
    version = meta["version"]
    expected = {f"xgb-{version}.json", f"xgb-{version}.meta.json", f"ltr-featureset-{version}.json",
                f"ltr-model-{version}.json", f"query-encoder-{version}.onnx", f"query-encoder-{version}.tokenizer.json"}
    if served.uses_neural:
        expected.add(f"neural-{version}.onnx")
    assert {p.name for p in rankers.iterdir()} == expected
    assert meta["index_encoder"] == "int8" and set(meta["seconds"]) >= {"query encoder", "features", "xgboost"}


def test_the_served_model_ranks_every_search_through_its_own_parts(trained: Trained, demo_reader) -> None:  # type: ignore[no-untyped-def]
    from ranker.features.sources import feature_source
    from ranker.pipeline import SearchPipeline
    from ranker.request import SearchRequest
    from ranker.rerank import LearnedRanker

    ranker = LearnedRanker(trained.model, feature_source(demo_reader), demo_reader.encoder_variant)
    assert ranker.depth == TRAIN_DEPTH and ranker.query_encoder is not None
    pipeline = SearchPipeline(demo_reader, ranker.query_encoder, ranker=ranker)
    response = pipeline.search(SearchRequest("wireless headphones", k=10, explain=True, timings=True))
    scores = [r["score"] for r in response.results]
    assert scores == sorted(scores, reverse=True)
    assert response.timings is not None and response.timings["rerank"] > 0
    for result in response.results:
        assert result["explain"]["model"]["final"] == pytest.approx(result["score"], abs=1e-5)
        assert set(result["explain"]["features"]) == set(FEATURE_NAMES)
    # the final score is the trees' (and the neural scorer's) own, on the exact feature rows
    tree = xgb.Booster(model_file=str(trained.model))
    head = pipeline.rank(SearchRequest("wireless headphones", k=10)).candidates[:TRAIN_DEPTH]
    rows = np.stack([c.feature_row for c in head])
    neural = np.array([c.model_scores.get("neural", 0.0) for c in head], dtype=np.float32)
    finals = np.array([c.model_score for c in head])
    if ranker.combine == "feature":
        np.testing.assert_allclose(tree.inplace_predict(np.hstack([rows, neural[:, None]])), finals, atol=1e-4)
    elif ranker.combine == "blend":
        np.testing.assert_allclose(tree.inplace_predict(rows) + ranker.blend_weight * neural, finals, atol=1e-4)
    else:
        np.testing.assert_allclose(tree.inplace_predict(rows), finals, atol=1e-4)
    assert list(finals) == sorted(finals, reverse=True) and np.ptp(finals) > 0


def test_a_model_ordering_backwards_falls_under_the_floor(trained: Trained, judgments: Path) -> None:
    """The quality floor the tests hold the served model to is one a broken model misses."""
    from indexer.backends import EmbeddedBackend
    from indexer.mapping import load_definition
    from ranker.evaluate import evaluate_search, pipeline_search, read_judgments
    from ranker.serving import ServingState

    pipeline = ServingState(EmbeddedBackend(trained.data_dir, load_definition())).pipeline()
    assert pipeline.ranker is not None
    judged = read_judgments(judgments)
    served = pipeline_search(pipeline)

    def backwards(query: str, k: int) -> list[str]:
        return served(query, TRAIN_DEPTH)[::-1][:k]

    good, _ = evaluate_search(served, judged, sorted(judged), progress=False)
    bad, _ = evaluate_search(backwards, judged, sorted(judged), progress=False)
    assert good.ndcg10 >= NDCG10_FLOOR > bad.ndcg10 + 0.2


def test_evaluating_the_served_model_over_http_agrees_with_in_process(trained: Trained, judgments: Path,
                                                                      make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = make_server(trained.data_dir, workers=1)
    figures = {}
    for name, how in (("served", ["--served"]), ("http", ["--url", server.base])):
        out = tmp_path / f"{name}.json"
        assert main(["evaluate", *how, "--judgments", str(judgments), "--data-dir", str(trained.data_dir),
                     "--json", str(out)]) == 0
        figures[name] = json.loads(out.read_text())
    served, http = ({k: v for k, v in f.items() if k != "source"} for f in (figures["served"], figures["http"]))
    assert served == http and served["queries"] > 100 and served["ndcg@10"] >= NDCG10_FLOOR


def test_neural_scorer_onnx_graph_matches_torch(demo_reader, shipped_encoder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Trained in torch, served by onnxruntime: the exported graph must score as torch does,
    with the standardization of the features inside the graph."""
    import torch

    from ranker.neural import NeuralScorerSession
    from ranker.training.neural import QueryBatch, export_onnx, train_neural

    rows = _some_rows(demo_reader, shipped_encoder, 40)
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


def _some_rows(reader, encoder, count: int):  # type: ignore[no-untyped-def]
    builder = row_builder(reader, encoder)
    products = reader.catalog().products
    return [builder.rows(" ".join(p["title"].lower().split()[1:]), {p["id"]: 3.0}) for p in products[:count]]


def test_rows_come_from_the_pipeline_with_judged_products_recall_missed(demo_reader, shipped_encoder) -> None:  # type: ignore[no-untyped-def]
    from ranker.request import SearchRequest

    builder = row_builder(demo_reader, shipped_encoder, depth=20)
    products = demo_reader.catalog().products
    missed = next(p for p in products if "Sofa" not in p["title"] and "Leather" not in p["title"])
    rows = builder.rows("black leather sofa", {missed["id"]: 2.0, products[5]["id"]: 3.0})
    recalled = [c.id for c in builder.pipeline.rank(SearchRequest("black leather sofa", rerank=False)).candidates[:20]]
    assert rows.ids[:20] == recalled and missed["id"] in rows.ids[20:]
    assert rows.in_recall.tolist() == [True] * 20 + [False] * (len(rows.ids) - 20)
    assert rows.labels[rows.ids.index(missed["id"])] == 1.0 and rows.judged.sum() == 2
    assert np.allclose(rows.features[:20, FEATURE_INDEX["log_recall_rank"]], np.log1p(np.arange(1, 21)))


def test_judged_view_ranks_within_the_judged_list(demo_reader, shipped_encoder) -> None:  # type: ignore[no-untyped-def]
    """Re-ranking judged products: rank features are relative to that list, as at serving
    time, not to a catalog-wide recall that may have missed some of them."""
    from ranker.training.dataset import judged_view

    builder = row_builder(demo_reader, shipped_encoder, depth=20)
    products = demo_reader.catalog().products
    judged = {products[i]["id"]: r for i, r in ((5, 3.0), (50, 2.0), (300, 1.0), (450, 2.33))}
    rows = builder.rows("black leather sofa", judged)
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


def test_server_ranks_with_a_new_model_without_restart(fresh_index: Path, trained: Trained, make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server(fresh_index, workers=1)
    status, before = server.get("/search?q=wireless+headphones&k=5&explain=true")
    assert status == 200 and "model" not in before["results"][0]["explain"]  # no model yet: recall order
    copy_model(trained, fresh_index)
    deadline = time.monotonic() + 20
    while True:
        status, after = server.get("/search?q=wireless+headphones&k=5&explain=true")
        if "model" in after["results"][0]["explain"]:
            break
        assert time.monotonic() < deadline, "the server never loaded the new model"
        time.sleep(0.1)
    assert set(after["results"][0]["explain"]["features"]) == set(FEATURE_NAMES)
    scores = [r["score"] for r in after["results"]]
    assert scores == sorted(scores, reverse=True)
    _, recall_order = server.get("/search?q=wireless+headphones&k=5&explain=true&rerank=false")
    assert "model" not in recall_order["results"][0]["explain"]
    assert [r["id"] for r in recall_order["results"]] == [r["id"] for r in before["results"]]


def test_feature_log_lines_carry_the_responses_query_id(fresh_index: Path, trained: Trained, make_server) -> None:  # type: ignore[no-untyped-def]
    copy_model(trained, fresh_index)
    server = make_server(fresh_index, workers=2, env={"SHOPRANK_FEATURE_LOG_RATE": "1"})
    returned = {}
    for query in ("wireless headphones", "yoga mat", "cordless drill"):
        status, body = server.get(f"/search?q={query.replace(' ', '+')}&k=4&in_stock=true")
        assert status == 200
        returned[body["query_id"]] = (query, [r["id"] for r in body["results"]])
    assert len(returned) == 3  # a query id per search
    lines = [json.loads(line) for f in (fresh_index / "feature-log").glob("*.jsonl") for line in f.read_text().splitlines()]
    assert {line["query_id"]: (line["query"], [r["id"] for r in line["results"]]) for line in lines} == returned
    entry = lines[0]
    assert entry["filters"]["in_stock"] is True and entry["model"] == trained.meta["version"] and entry["generation"]
    assert [e["name"] for e in entry["results"][0]["log_entry"]] == list(FEATURE_NAMES)
    assert [r["rank"] for r in entry["results"]] == [1, 2, 3, 4]


def test_feature_log_is_off_by_default_and_checks_its_rate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from indexer.settings import SettingsError
    from ranker.feature_log import FeatureLog

    monkeypatch.delenv("SHOPRANK_FEATURE_LOG_RATE", raising=False)
    assert FeatureLog.from_env(tmp_path) is None
    monkeypatch.setenv("SHOPRANK_FEATURE_LOG_RATE", "1.5")
    with pytest.raises(SettingsError, match=r"SHOPRANK_FEATURE_LOG_RATE='1\.5': must be between 0 and 1"):
        FeatureLog.from_env(tmp_path)


def test_a_new_model_reuses_the_loaded_generation(fresh_index: Path, trained: Trained, models_dir: Path) -> None:
    """Only the model is loaded again: the generation's reader (and its feature table) stay."""
    from indexer.backends import EmbeddedBackend
    from indexer.mapping import load_definition
    from ranker.features.sources import feature_source
    from ranker.rerank import LearnedRanker
    from ranker.serving import ServingState

    state = ServingState(EmbeddedBackend(fresh_index, load_definition()))
    reader = state.pipeline().reader
    assert state.pipeline().ranker is None
    copy_model(trained, fresh_index)
    deadline = time.monotonic() + 20
    while state.pipeline().ranker is None:
        assert time.monotonic() < deadline, "the new model was never loaded"
        time.sleep(0.05)
    pipeline = state.pipeline()
    assert pipeline.reader is reader
    from ranker.request import SearchRequest

    assert pipeline.plan(SearchRequest("x")).embedder is pipeline.ranker.query_encoder is not None  # re-ranked: tuned
    assert pipeline.plan(SearchRequest("x", rerank=False)).embedder is pipeline.embedder  # as without a model
    model = trained.model.name
    meta_file = fresh_index / "rankers" / model.replace(".json", ".meta.json")
    meta_file.write_text(json.dumps({**trained.meta, "index_encoder": "fp32"}))  # as if the index were re-encoded since
    assert LearnedRanker(fresh_index / "rankers" / model, feature_source(reader), reader.encoder_variant).query_encoder is None


def test_settings_follow_the_folds_majority_and_prefer_the_cheaper_on_a_tie() -> None:
    from ranker.training.cross_validation import Evaluation
    from ranker.training.fit import Settings
    from ranker.training.xgboost_models import XGB_GRID

    shallow, middle, deep = XGB_GRID

    def folds(choices: list[tuple[dict, int]], weights: list[float]) -> Evaluation:
        runs = {"retrieval": {"hybrid + xgboost": {"q": ["a"]}}, "rerank": {}}
        return Evaluation(runs, [Settings("xgboost", {"xgboost": {"params": p, "trees": n}}, w, "fold")
                                 for (p, n), w in zip(choices, weights, strict=True)])

    judgments = {"q": {"a": 3.0}}
    chosen = folds([(deep, 100), (middle, 300), (deep, 200), (shallow, 50)], [0.0, 0.5, 0.1, 0.2]).settings(judgments, "x")
    assert chosen.xgboost["xgboost"] == {"params": deep, "trees": 150}  # the median of the two folds that chose it
    assert chosen.blend_weight == pytest.approx(0.15) and chosen.combine == "xgboost"
    tie = folds([(deep, 100), (shallow, 300), (deep, 200), (shallow, 50)], [0, 0, 0, 0]).settings(judgments, "x")
    assert tie.xgboost["xgboost"] == {"params": shallow, "trees": 175}


def test_train_without_an_evaluation_chooses_on_a_validation_quarter(fresh_index: Path, judgments: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = fresh_index / "train.json"
    assert main(["train", "--judgments", str(judgments), "--data-dir", str(fresh_index), "--depth", "30",
                 "--serve-depth", "20", "--no-neural", "--no-query-tuning", "--json", str(out)]) == 0
    meta = json.loads(out.read_text())
    assert meta["settings"]["chosen_by"] == "a validation quarter of the training queries"
    assert meta["combine"] is None and meta["depth"] == 30 and "query_encoder" not in meta
    from ranker.features.sources import feature_source
    from ranker.rerank import LearnedRanker, latest_model

    reader = open_backend(fresh_index).reader()
    model = latest_model(fresh_index)
    assert model is not None and meta["serve_depth"] == 20  # trained on 30 candidates a query, serves 20
    assert LearnedRanker(model, feature_source(reader), reader.encoder_variant).depth == 20
    assert meta["trees"] == meta["settings"]["xgboost"]["xgboost"]["trees"] >= 1
    assert "settings from" not in capsys.readouterr().err


@pytest.mark.parametrize(("flag", "value", "problem"), [("--serve-depth", "0", "0 must be at least 1"),
                                                      ("--depth", "deep", "'deep' is not a whole number")])
def test_train_refuses_a_depth_that_is_not_a_count(flag: str, value: str, problem: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--judgments", "judgments.csv", flag, value])
    assert exit_.value.code == 2 and f"argument {flag}: {problem}" in capsys.readouterr().err


def test_fusion_grid_scores_every_setting_on_held_out_queries(fresh_index: Path, judgments: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    grid = fresh_index / "grid.json"
    assert main(["evaluate", "--fusion-grid", "--judgments", str(judgments), "--data-dir", str(fresh_index),
                 "--json", str(grid)]) == 0
    found = json.loads(grid.read_text())
    from ranker.__main__ import fusion_grid

    assert set(found["methods"]) == {"bm25", "vector", *fusion_grid()}
    tune = {name: m["tune"]["ndcg@10"] for name, m in found["methods"].items() if name not in ("bm25", "vector")}
    assert found["best_on_tune"] == max(tune, key=lambda n: tune[n])
    halves = [found["methods"]["bm25"][half]["queries"] for half in ("tune", "held_out", "all")]
    assert halves[0] + halves[1] == halves[2] == found["queries"] and min(halves) > 30
    assert f"{found['best_on_tune']:<24}" in capsys.readouterr().out


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


def test_training_refuses_a_backend_without_a_local_catalog(trained: Trained, judgments: Path,
                                                            monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from indexer.store.base import Capabilities
    from indexer.store.embedded import EmbeddedReader

    copy = copy_data_dir(trained.data_dir, tmp_path / "copy")
    monkeypatch.setattr(EmbeddedReader, "capabilities", Capabilities(local_catalog=False))
    with pytest.raises(SystemExit, match="reads every product and vector in process"):
        main(["train", "--judgments", str(judgments), "--data-dir", str(copy)])
