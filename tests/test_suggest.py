"""Type-ahead and "did you mean": from the demo catalog's words and from searches shoppers
made, over a real server and a real SQLite shopper store."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

from ranker.events.contract import Search
from ranker.events.store import EventStore
from ranker.request import SearchRequest
from ranker.suggest import MIN_SHOPPERS, PopularQueries, Suggester


def record(store: EventStore, query: str, shopper: str, shown: list[str], when: float | None = None) -> None:
    store.record_search(Search(f"{shopper}-{query}-{when}", when or time.time(), shopper, None, query, shown))


def test_a_query_is_suggested_once_enough_different_shoppers_searched_it(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.sqlite", sync="normal")
    popular = PopularQueries(store, refresh_seconds=0)
    for n in range(MIN_SHOPPERS - 1):
        record(store, "Velvet Sofa  Navy", f"u{n}", ["SR-1"])
    record(store, "velvet sofa navy", "u0", ["SR-1"])  # the same shopper again counts once
    record(store, "velvet sofa navy", "u9", [])  # a search that showed nothing does not count
    record(store, "velvet sofa navy", "u8", ["SR-1"], when=time.time() - 90 * 86_400)  # too old
    assert popular.get() == []
    record(store, "velvet sofa navy", "u7", ["SR-2"])
    assert popular.get() == [("velvet sofa navy", MIN_SHOPPERS)]
    suggester = Suggester({"velvet": 10, "sofa": 20}, popular)
    assert suggester.complete("VELV")[0].to_json() == {"text": "velvet sofa navy", "source": "query"}


def test_the_catalogs_words_complete_the_last_word_most_frequent_first() -> None:
    suggester = Suggester({"drill": 40, "drawer": 90, "driver": 5, "dr": 1, "cordless": 30, "18": 7}, None)
    assert [s.text for s in suggester.complete("cordless dr")] == ["cordless drawer", "cordless drill",
                                                                  "cordless driver"]
    assert [s.text for s in suggester.complete("dr", k=2)] == ["drawer", "drill"]
    assert suggester.complete("d") == []  # one character suggests nothing
    assert suggester.complete("cordless ") == []  # a finished word: nothing to complete


def test_did_you_mean_is_a_query_whose_words_match(demo_pipeline, demo_reader) -> None:  # type: ignore[no-untyped-def]
    from ranker.spelling import query_corrector

    corrector = query_corrector(demo_reader)
    assert corrector is not None
    demo_pipeline.suggester = Suggester(corrector.counts, None, corrector)
    try:
        # "sfa": too short for the serving corrector to rewrite unasked; two edits from "sofa"
        missed = demo_pipeline.search(SearchRequest("sfa"))
        assert missed.did_you_mean == "sofa"
        assert demo_pipeline.search(SearchRequest(missed.did_you_mean)).total > 0
        found = demo_pipeline.search(SearchRequest("sofa"))
        assert found.did_you_mean is None  # its words matched: nothing to offer
        assert demo_pipeline.search(SearchRequest("qqqqqqqqqqqqxz")).did_you_mean is None  # nothing close
    finally:
        demo_pipeline.suggester = None


@pytest.fixture
def suggest_server(fresh_index: Path, make_server):  # type: ignore[no-untyped-def]
    return make_server(fresh_index, workers=1, env={"SHOPRANK_SUGGEST_REFRESH_SECONDS": "0"})


def test_suggest_over_http_learns_from_searches(suggest_server) -> None:  # type: ignore[no-untyped-def]
    status, body = suggest_server.get("/suggest?" + urlencode({"q": "ergonomic des"}))
    assert status == 200 and body["query"] == "ergonomic des"
    assert body["suggestions"] and all(s["source"] == "catalog" for s in body["suggestions"])
    assert all(s["text"].startswith("ergonomic des") for s in body["suggestions"])
    for n in range(MIN_SHOPPERS):
        status, _ = suggest_server.get("/search?" + urlencode({"q": "ergonomic desk chair", "user_id": f"s{n}"}))
        assert status == 200
    status, body = suggest_server.get("/suggest?" + urlencode({"q": "ergonomic des"}))
    assert body["suggestions"][0] == {"text": "ergonomic desk chair", "source": "query"}
    status, body = suggest_server.get("/suggest?q=")
    assert status == 400 and body["parameter"] == "q"
    status, body = suggest_server.get("/suggest?q=sofa&k=0")
    assert status == 400 and body["parameter"] == "k"
