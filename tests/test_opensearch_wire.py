"""The OpenSearch backend's real requests, as opensearch-py puts them on the wire,
checked against the spec: operation, query parameters and body (tests/opensearch_wire.py).
Flows run through the real CLI and searcher; only the socket is replaced."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from opensearchpy import OpenSearch

from indexer.__main__ import EXIT_FAILED, EXIT_OK, main
from tests.conftest import SHARED
from tests.ranking_helpers import exported_ranker, save_tree_model

pytestmark = pytest.mark.skipif(not (SHARED / "opensearch-api-spec" / "spec").is_dir(),
                                reason="../shared/opensearch-api-spec is not here")


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch, models_dir: Path):  # type: ignore[no-untyped-def]
    from indexer.store import opensearch_client as backend
    from tests.opensearch_wire import SpecConnection, reset

    cluster = reset()
    monkeypatch.setenv("SHOPRANK_BACKEND", "opensearch")
    monkeypatch.setenv("OPENSEARCH_URL", "http://opensearch.test:9200")
    monkeypatch.setattr(backend, "connect",
                        lambda settings: OpenSearch(hosts=[settings.url], connection_class=SpecConnection))
    return cluster


@pytest.mark.parametrize("fusion_where", ["client", "pipeline"])
def test_every_request_of_every_flow_is_a_valid_spec_request(wire, tmp_path: Path, demo_catalog: Path,  # type: ignore[no-untyped-def]
                                                             models_dir: Path, capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch, fusion_where: str) -> None:
    """Both ways to fuse: in ShopRank (the default, what the live suite runs) and in a
    search pipeline (the neural-search plugin, which Maven Central does not carry: these
    bodies are checked against the spec only)."""
    monkeypatch.setenv("OPENSEARCH_FUSION", fusion_where)
    monkeypatch.setenv("SHOPRANK_VECTOR_THRESHOLD", "none")  # the fake scores every hit 1 (similarity 0)
    from indexer.backends import open_backend
    from indexer.encoder import TextEncoder
    from indexer.store.base import Filters
    from ranker.fusion import FusionConfig
    from ranker.pipeline import SearchPipeline
    from ranker.request import SearchRequest
    from ranker.spelling import query_corrector

    data = str(tmp_path)
    assert main(["reindex", "--catalog", str(demo_catalog), "--data-dir", data, "-q"]) == EXIT_OK
    first = sorted(wire.aliases["products"])
    changes = tmp_path / "changes.jsonl"
    changes.write_text(json.dumps({"id": "NEW-1", "title": "Quokka Lamp", "price": 40.0}) + "\n")
    assert main(["upsert", "--catalog", str(changes), "--data-dir", data, "-q"]) == EXIT_OK
    assert "NEW-1" in wire.indices[first[0]]["docs"]
    vocabulary = wire.indices[first[0]]["mappings"]["_meta"]["shoprank"]["vocabulary"]
    assert vocabulary["quokka"] == 1 and vocabulary["sofa"] > 10  # new words join the reindex's dictionary
    assert wire.indices[first[0]]["mappings"]["_meta"]["shoprank"]["search_fields"]  # `_meta` kept whole
    capsys.readouterr()
    assert main(["delete", "--ids", "NEW-1", "missing-id", "--data-dir", data]) == EXIT_OK
    assert "NEW-1" not in wire.indices[first[0]]["docs"]
    outcome = capsys.readouterr()
    assert "nothing to delete): missing-id" in outcome.err and "deleted 1 products" in outcome.out
    assert main(["reindex", "--catalog", str(demo_catalog), "--data-dir", data, "-q"]) == EXIT_OK
    second = sorted(wire.aliases["products"])
    assert second != first and len(wire.indices) == 2
    assert main(["rollback", "--data-dir", data]) == EXIT_OK
    assert sorted(wire.aliases["products"]) == first
    assert main(["status", "--data-dir", data]) == EXIT_OK
    assert main(["upsert", "--catalog", str(changes), "--data-dir", data, "--encoder", "fp32", "-q"]) == EXIT_FAILED

    backend = open_backend(tmp_path)
    reader = backend.reader()
    assert reader.generation == first[0] and reader.encoder_variant == "int8" and reader.document_count == 600
    searcher = SearchPipeline(reader, TextEncoder(models_dir, reader.encoder_variant))
    filters = Filters(category="Furniture", brands=("Ashford",), price_max=500, in_stock=True,
                      attributes=(("color", ("gray",)),))
    for mode in ("hybrid", "bm25", "vector"):
        for fusion in ("weighted", "rrf"):
            response = searcher.search(SearchRequest("gray sofa", k=5, filters=filters, mode=mode,
                                                     fusion=FusionConfig(method=fusion)))
            assert len(response.results) == 5  # the fake matches everything: this checks plumbing only
    assert set(wire.pipelines) == ({"shoprank-weighted", "shoprank-rrf"} if fusion_where == "pipeline" else set())
    assert any(query.get("search_pipeline") for query, _ in wire.searches) == (fusion_where == "pipeline")
    reader = backend.reader()
    assert reader._vocabulary is None and reader.vocabulary_words > 0  # the dictionary is not read until used
    assert "vocabulary," not in wire.mapping_reads[-1]["filter_path"] + ","  # nor sent along with the manifest
    before = len(wire.requests)
    corrector = query_corrector(reader)
    assert corrector is not None and corrector.known("quokka") and reader.term_counts() is reader.term_counts()
    assert [g for g, _, _ in wire.requests[before:]] == ["indices.get_mapping"]  # fetched once
    corrected = SearchPipeline(reader, TextEncoder(models_dir, reader.encoder_variant), corrector=corrector)
    wire.searches.clear()
    response = corrected.search(SearchRequest("gray sofaa", k=5))  # "sofaa": no catalog or English word
    assert response.corrected_query == "gray sofa"
    assert all("sofaa" not in json.dumps(body) for _, body in wire.searches)

    assert wire.violations == []
    groups = {group for group, _, _ in wire.requests}
    assert {"info", "indices.create", "bulk", "indices.refresh", "count", "indices.update_aliases",
            "indices.get_alias", "indices.get_mapping", "indices.get", "search", "mget", "indices.put_mapping",
            *(["search_pipeline.put"] if fusion_where == "pipeline" else [])} <= groups


def test_the_wire_check_catches_an_undeclared_parameter(wire, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from indexer.backends import open_backend

    client = open_backend(tmp_path).client
    client.search(index="x", body={"size": 1}, params={"no_such_param": "1"})
    client.search(index="x", body={"size": "one"})
    assert any("'no_such_param' is not in the spec" in v for v in wire.violations)
    assert any("size" in v and "integer" in v for v in wire.violations)


def test_bulk_failures_name_the_product_and_keep_the_alias(wire, tmp_path: Path, demo_catalog: Path,  # type: ignore[no-untyped-def]
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path)
    assert main(["reindex", "--catalog", str(demo_catalog), "--data-dir", data, "-q"]) == EXIT_OK
    serving = sorted(wire.aliases["products"])
    bad = tmp_path / "bad.csv"
    bad.write_text("id,title\nOK-1,Fine Lamp\nBAD-7,REJECT this title\n")
    capsys.readouterr()
    assert main(["reindex", "--catalog", str(bad), "--data-dir", data, "-q"]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert "1 documents were not indexed: BAD-7:" in err and "failed to parse field [title]" in err
    assert sorted(wire.aliases["products"]) == serving
    assert sorted(wire.indices) == serving  # the incomplete index was dropped


def test_api_serves_503_while_the_cluster_is_down_and_recovers(wire, tmp_path: Path, demo_catalog: Path,  # type: ignore[no-untyped-def]
                                                               models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from indexer.backends import OpenSearchBackend
    from ranker import serving
    from web.app import create_app

    monkeypatch.setattr(serving, "RECONNECT_SECONDS", 0.0)
    monkeypatch.setattr(OpenSearchBackend, "refresh_seconds", 0.0)
    assert main(["reindex", "--catalog", str(demo_catalog), "--data-dir", str(tmp_path), "-q"]) == EXIT_OK

    wire.down = True  # the cluster is unreachable before the first request
    client = create_app(tmp_path, models_dir=models_dir).test_client()
    response = client.get("/search?q=sofa")
    assert response.status_code == 503
    assert response.get_json()["error"] == "backend_unavailable"
    assert "cannot reach OpenSearch at http://opensearch.test:9200" in response.get_json()["message"]

    wire.down = False  # it comes back: no restart needed
    assert client.get("/search?q=sofa").status_code == 200
    assert client.get("/healthz").get_json()["documents"] == 600

    wire.down = True  # and goes away again while serving
    assert client.get("/search?q=lamp").status_code == 503
    wire.down = False
    assert client.get("/search?q=lamp").status_code == 200


def _serving(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from indexer.backends import OpenSearchBackend, open_backend
    from ranker.serving import ServingState

    monkeypatch.setattr(OpenSearchBackend, "refresh_seconds", 0.0)  # every request checks the cluster's stamp
    return ServingState(open_backend(tmp_path))


def test_learned_ranking_on_opensearch_gets_field_scores_from_named_queries(  # type: ignore[no-untyped-def]
        wire, tmp_path: Path, demo_catalog: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ranker.request import SearchRequest

    assert main(["reindex", "--catalog", str(demo_catalog), "--data-dir", str(tmp_path), "-q"]) == EXIT_OK
    save_tree_model(tmp_path / "rankers", depth=60)
    pipeline = _serving(tmp_path, monkeypatch).pipeline()
    assert pipeline.ranker is not None and pipeline.ranker.depth == 60
    wire.searches.clear()
    response = pipeline.search(SearchRequest("gray velvet sofa", k=5, explain=True))
    assert wire.violations == []
    feature_requests = [body for params, body in wire.searches if params.get("include_named_queries_score") == "true"]
    assert len(feature_requests) == 1
    assert len(feature_requests[0]["query"]["bool"]["filter"][0]["ids"]["values"]) == 60  # the model's depth
    for result in response.results:
        features = result["explain"]["features"]
        title_words = result["title"].lower().split()
        # the fake cluster scores a field by the query words it holds; the feature must be that score
        assert features["bm25_title"] == sum(w in title_words for w in ("gray", "velvet", "sofa"))
        assert result["explain"]["model"]["final"] == pytest.approx(result["score"], abs=1e-6)
    scores = [r["score"] for r in response.results]
    assert scores == sorted(scores, reverse=True)


def test_a_model_that_does_not_load_leaves_opensearch_search_in_recall_order(  # type: ignore[no-untyped-def]
        wire, tmp_path: Path, demo_catalog: Path, models_dir: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from ranker.request import SearchRequest

    assert main(["reindex", "--catalog", str(demo_catalog), "--data-dir", str(tmp_path), "-q"]) == EXIT_OK
    save_tree_model(tmp_path / "rankers", depth=60)
    (tmp_path / "rankers" / "xgb-1.json").write_text("{ not a model")
    state = _serving(tmp_path, monkeypatch)
    for _ in range(3):  # every request checks again; the broken file is not retried
        pipeline = state.pipeline()
        assert pipeline.ranker is None
        response = pipeline.search(SearchRequest("gray velvet sofa", k=5, explain=True))
        assert response.results and all("model" not in r["explain"] for r in response.results)
    assert "event=model_load_failed model=xgb-1.json" in caplog.text
    assert caplog.text.count("event=model_load_failed") == 1


def test_a_newer_model_that_does_not_load_keeps_the_loaded_one_on_a_new_index(  # type: ignore[no-untyped-def]
        wire, tmp_path: Path, demo_catalog: Path, models_dir: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["reindex", "--catalog", str(demo_catalog), "--data-dir", str(tmp_path), "-q"]) == EXIT_OK
    save_tree_model(tmp_path / "rankers", depth=60)
    state = _serving(tmp_path, monkeypatch)
    loaded = state.pipeline()
    assert loaded.ranker is not None and loaded.ranker.path.name == "xgb-1.json"
    (tmp_path / "rankers" / "xgb-2.json").write_text("{ not a model")
    assert state.pipeline().ranker is loaded.ranker  # same index: the model it had
    changes = tmp_path / "changes.jsonl"
    changes.write_text(json.dumps({"id": "NEW-1", "title": "Quokka Lamp", "price": 40.0}) + "\n")
    assert main(["upsert", "--catalog", str(changes), "--data-dir", str(tmp_path), "-q"]) == EXIT_OK
    import time

    deadline = time.monotonic() + 10
    while state.pipeline().reader is loaded.reader:  # the upsert's new words: a new reader, loaded in the background
        assert time.monotonic() < deadline, "the changed index was never loaded"
        time.sleep(0.02)
    refreshed = state.pipeline()
    assert refreshed.ranker is not None and refreshed.ranker.path.name == "xgb-1.json"
    assert refreshed.ranker.source.reader is refreshed.reader  # the kept model reads from the new reader
    assert caplog.text.count("event=model_load_failed model=xgb-2.json") == 1


def test_opensearch_features_match_the_embedded_ones_but_for_bm25(  # type: ignore[no-untyped-def]
        wire, tmp_path: Path, demo_catalog: Path, demo_reader, shipped_encoder) -> None:
    """Same catalog, same candidates: every feature that does not come from the engine's
    BM25 is computed identically from the cluster's documents and from the local table."""
    import numpy as np

    from indexer.backends import open_backend
    from indexer.store.base import Filters
    from ranker.features.compute import CandidateRanks
    from ranker.features.names import FEATURE_NAMES
    from ranker.features.sources import feature_source, features_for

    assert main(["reindex", "--catalog", str(demo_catalog), "--data-dir", str(tmp_path), "-q"]) == EXIT_OK
    query = "3/4 in. cordless drill 20v"
    vector = shipped_encoder.encode_query(query)
    ids = [h.id for h in demo_reader.knn(vector, 40, Filters())]
    ranks = np.arange(1, len(ids) + 1, dtype=np.float64)
    candidates = CandidateRanks(ids, ranks, ranks, ranks)
    local, _ = features_for(feature_source(demo_reader), query, vector, candidates)
    remote_source = feature_source(open_backend(tmp_path).reader())
    assert type(remote_source).__name__ == "RequestFeatures"  # chosen by the reader's declared capability
    remote, _ = features_for(remote_source, query, vector, candidates)
    engine_scores = [i for i, name in enumerate(FEATURE_NAMES) if name.startswith("bm25_")]
    others = [i for i in range(len(FEATURE_NAMES)) if i not in engine_scores]
    np.testing.assert_allclose(remote[:, others], local[:, others], atol=1e-5)
    assert local[:, others].std(axis=0).sum() > 0  # the comparison is not between constants


def test_ltr_upload_sends_the_feature_set_then_its_model(wire, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from ranker.__main__ import main as ranker_main

    meta = exported_ranker(tmp_path)
    assert ranker_main(["ltr-upload", "--data-dir", str(tmp_path)]) == 0
    assert wire.violations == []
    groups = [g for g, _, _ in wire.requests]
    assert groups == ["cat.plugins", "ltr.list_stores", "ltr.create_default_store", "ltr.create_featureset",
                      "ltr.create_model_from_set"]
    name = meta["ltr_name"]
    assert wire.ltr == {
        f"featureset-{name}": json.loads((tmp_path / "rankers" / meta["ltr_featureset"]).read_text()),
        f"model-{name}": json.loads((tmp_path / "rankers" / meta["ltr_model"]).read_text())}
    assert f"uploaded feature set and model {name}" in capsys.readouterr().out
    # a second version goes into the store that now exists
    wire.requests.clear()
    exported_ranker(tmp_path / "again", "20260102T000000")
    assert ranker_main(["ltr-upload", "--data-dir", str(tmp_path / "again")]) == 0
    assert [g for g, _, _ in wire.requests][:3] == ["cat.plugins", "ltr.list_stores", "ltr.create_featureset"]


def test_ltr_upload_names_what_is_missing(wire, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from ranker.__main__ import main as ranker_main

    assert ranker_main(["ltr-upload", "--data-dir", str(tmp_path)]) == 1
    assert "no ranker in" in capsys.readouterr().err
    exported_ranker(tmp_path)
    wire.plugins.remove("opensearch-ltr")
    assert ranker_main(["ltr-upload", "--data-dir", str(tmp_path)]) == 1
    assert "has no Learning to Rank plugin (opensearch-ltr)" in capsys.readouterr().err
    assert not [g for g, _, _ in wire.requests if g.startswith("ltr.")]
    monkeypatch.delenv("OPENSEARCH_URL")
    assert ranker_main(["ltr-upload", "--data-dir", str(tmp_path)]) == 1
    assert "needs OPENSEARCH_URL" in capsys.readouterr().err


def test_searches_and_events_reach_the_clusters_ubi_indices_and_leave_with_an_erase(  # type: ignore[no-untyped-def]
        wire, tmp_path: Path, demo_catalog: Path, models_dir: Path) -> None:
    from web.app import create_app

    assert main(["reindex", "--catalog", str(demo_catalog), "--data-dir", str(tmp_path), "-q"]) == EXIT_OK
    app = create_app(tmp_path, models_dir=models_dir)
    client = app.test_client()
    found = client.get("/search?q=sofa&k=5&user_id=ubi-shopper&session_id=ubi-session").get_json()
    shown = [r["id"] for r in found["results"]]
    answer = client.post("/events", json=[
        {"action_name": "click", "user_id": "ubi-shopper", "object_id": shown[2], "position": 3,
         "query_id": found["query_id"]},
        {"action_name": "add_to_cart", "session_id": "other", "event_attributes": {
            "object": {"object_id": shown[0]}, "position": {"ordinal": 1}}, "timestamp": "2026-12-03T10:00:00Z"}])
    assert answer.get_json()["accepted"] == 2
    client.get("/search?q=lamp&user_id=other")
    sink = app.extensions["shoprank"].backend.behavior_sink()
    assert sink.flush(timeout=120)  # the fake checks each body against the spec: slow for a mapping
    assert wire.violations == []
    queries, events = wire.indices["ubi_queries"]["docs"], wire.indices["ubi_events"]["docs"]
    query = queries[found["query_id"]]
    assert query["user_query"] == "sofa" and query["query_response_object_ids"] == shown
    assert query["user_id"] == "ubi-shopper" and query["timestamp"].endswith("Z")
    click = next(e for e in events.values() if e["action_name"] == "click")
    assert click["event_attributes"] == {"object": {"object_id": shown[2], "object_id_field": "id"},
                                         "position": {"ordinal": 3}}
    assert click["query_id"] == found["query_id"] and "object_id" not in click
    cart = next(e for e in events.values() if e["action_name"] == "add_to_cart")
    assert cart["timestamp"] == "2026-12-03T10:00:00.000Z" and cart["session_id"] == "other"
    assert wire.indices["ubi_events"]["mappings"]["properties"]["timestamp"] == {"type": "date"}

    assert client.delete("/users/ubi-shopper").status_code == 204
    remaining = list(queries.values()) + list(events.values())
    assert remaining and all(d.get("user_id") != "ubi-shopper" for d in remaining)
    assert all(d.get("session_id") != "ubi-session" for d in remaining)  # the session linked to the user too
    assert wire.violations == []


def test_ubi_documents_that_meet_a_cluster_outage_are_sent_when_it_is_back(  # type: ignore[no-untyped-def]
        wire, tmp_path: Path, demo_catalog: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from indexer.store import background_bulk

    caplog.set_level(logging.INFO, logger="indexer.store.background_bulk")
    from web.app import create_app

    monkeypatch.setattr(background_bulk, "RETRY_DELAYS", (0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2))
    assert main(["reindex", "--catalog", str(demo_catalog), "--data-dir", str(tmp_path), "-q"]) == EXIT_OK
    app = create_app(tmp_path, models_dir=models_dir)
    client = app.test_client()
    found = client.get("/search?q=desk&user_id=u-later").get_json()
    sink = app.extensions["shoprank"].backend.behavior_sink()
    assert client.post("/events", json={"action_name": "click", "user_id": "u-later",
                                        "object_id": found["results"][0]["id"]}).status_code == 200
    wire.down = True  # the writer waits up to a second for more documents: its send meets the outage
    time.sleep(2.0)
    wire.down = False
    assert sink.flush(timeout=120)  # the fake checks each body against the spec: slow for a mapping
    assert found["query_id"] in wire.indices["ubi_queries"]["docs"]
    assert len(wire.indices["ubi_events"]["docs"]) == 1
    assert "event=ubi_send_failed attempt=1" in caplog.text and "ubi_documents_dropped" not in caplog.text
