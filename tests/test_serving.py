"""The hot swap every server process runs on either backend (ranker/serving.py): a new
generation and a new model are picked up without a restart, and a model that does not
load never keeps an index from being served."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from indexer.__main__ import main as indexer_main
from indexer.backends import EmbeddedBackend
from indexer.mapping import load_definition
from ranker.request import SearchRequest
from ranker.serving import ServingState
from tests.ranking_helpers import save_tree_model


def state_of(data_dir: Path) -> ServingState:
    return ServingState(EmbeddedBackend(data_dir, load_definition()))


def wait_for(condition, what: str, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def upsert(data_dir: Path, tmp_path: Path, title: str = "Quokka Lamp") -> None:
    changes = tmp_path / "changes.jsonl"
    changes.write_text(json.dumps({"id": "NEW-1", "title": title, "price": 40.0}) + "\n")
    assert indexer_main(["upsert", "--catalog", str(changes), "--data-dir", str(data_dir), "-q"]) == 0


def test_a_broken_newest_model_leaves_search_in_recall_order(fresh_index: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    (fresh_index / "rankers").mkdir()
    (fresh_index / "rankers" / "xgb-20260101T000000.json").write_text("{not json")
    state = state_of(fresh_index)
    for _ in range(3):
        pipeline = state.pipeline()
        assert pipeline.ranker is None
        response = pipeline.search(SearchRequest("gray sofa", k=5, explain=True))
        assert response.results and all("model" not in r["explain"] for r in response.results)
    assert caplog.text.count("event=model_load_failed model=xgb-20260101T000000.json") == 1


def test_a_new_generation_is_served_with_the_last_good_model(fresh_index: Path, tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    save_tree_model(fresh_index / "rankers", depth=60, version="20260101T000000")
    state = state_of(fresh_index)
    good = state.pipeline()
    assert good.ranker is not None and good.ranker.version == "20260101T000000"
    (fresh_index / "rankers" / "xgb-20260202T000000.json").write_text("{not json")  # a newer version, broken
    wait_for(lambda: state.pipeline() is not good, "the broken model was never tried")
    assert state.pipeline().ranker is good.ranker  # same index: the model it had
    assert "event=model_load_failed model=xgb-20260202T000000.json" in caplog.text
    upsert(fresh_index, tmp_path)
    wait_for(lambda: state.pipeline().generation != good.generation, "the new generation was never served")
    served = state.pipeline()
    assert served.ranker is not None and served.ranker.version == "20260101T000000"
    assert served.ranker.source is not good.ranker.source  # rebuilt over the new generation
    result = served.search(SearchRequest("quokka lamp", k=1, explain=True)).results[0]
    assert result["id"] == "NEW-1" and "model" in result["explain"]


def test_a_server_with_a_broken_model_answers_and_tells_clients_nothing_of_it(fresh_index: Path,
                                                                             make_server) -> None:  # type: ignore[no-untyped-def]
    (fresh_index / "rankers").mkdir()
    (fresh_index / "rankers" / "xgb-20260101T000000.json").write_text("{not json")
    server = make_server(fresh_index, workers=1)
    status, body = server.get("/search?q=gray+sofa&k=5&explain=true")
    assert status == 200 and body["results"] and "model" not in body["results"][0]["explain"]
    assert server.get("/healthz")[0] == 200
    server.stop()
    log = server.output()
    assert "event=model_load_failed" in log


def test_a_generation_that_does_not_load_is_a_503_without_paths_or_traces(fresh_index: Path, make_server,
                                                                          tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = make_server(fresh_index, workers=1, env={"SHOPRANK_MODELS": str(tmp_path / "no-models")})
    status, body = server.get("/search?q=lamp")
    assert status == 503 and body == {"error": "no_index",
                                      "message": "the index could not be loaded; the server log says why"}
    server.stop()
    assert "export-model" in server.output()  # the operator's log has the cause


def test_a_server_without_index_answers_503_then_recovers(make_server, tmp_path: Path, demo_catalog: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import index_catalog

    srv = make_server(tmp_path, workers=1)
    status, body = srv.get("/search?q=lamp")
    assert status == 503 and body["error"] == "no_index" and str(tmp_path) not in body["message"]
    assert srv.get("/healthz")[0] == 503
    index_catalog(tmp_path, demo_catalog)
    assert srv.get("/healthz")[0] == 200
    assert srv.get("/search?q=lamp")[0] == 200
