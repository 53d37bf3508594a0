"""The JSON API and the page, over HTTP, against a real gunicorn server on a free port."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import pytest

from web.openapi import openapi_document
from web.params import PARAMS


def search(server, **params) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    return server.get("/search?" + urlencode(params, doseq=True))


def test_search_returns_the_documented_shape(server) -> None:  # type: ignore[no-untyped-def]
    status, body = search(server, q="wireless headphones", k=5)
    assert status == 200
    assert list(body) == ["query", "corrected_query", "total", "results", "facets", "took_ms", "generation"]
    assert body["query"] == "wireless headphones"
    assert body["corrected_query"] is None  # every word is the catalog's own
    assert len(body["results"]) == 5
    assert body["total"] >= 5
    first = body["results"][0]
    assert {"id", "title", "brand", "category", "price", "score"} <= set(first)
    assert "Headphones" in first["title"]
    assert set(body["facets"]) == {"brand", "category", "price"}
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)


def test_filters_apply_to_every_result_and_to_facets(server) -> None:  # type: ignore[no-untyped-def]
    status, body = search(server, q="shoes", category="Apparel", price_max=120, in_stock="true",
                          **{"attr.color": ["black", "white"]}, k=50)
    assert status == 200 and body["results"]
    for r in body["results"]:
        assert r["category"].startswith("Apparel > ")
        assert r["price"] <= 120 and r["in_stock"] is True
        assert r["attributes"]["color"] in ("black", "white")
    assert all(b["value"].startswith("Apparel > ") for b in body["facets"]["category"])
    assert sum(b["count"] for b in body["facets"]["category"]) == body["total"]


def test_brand_filter_is_or_within_the_field(server) -> None:  # type: ignore[no-untyped-def]
    _, body = search(server, q="speaker", brand=["Sonora", "Auralis"], k=30)
    assert body["results"] and {r["brand"] for r in body["results"]} <= {"Sonora", "Auralis"}
    assert {b["value"] for b in body["facets"]["brand"]} <= {"Sonora", "Auralis"}


def test_pages_are_disjoint_slices_of_one_ranking(server) -> None:  # type: ignore[no-untyped-def]
    _, whole = search(server, q="black", k=30)
    _, first = search(server, q="black", k=10, offset=0)
    _, third = search(server, q="black", k=10, offset=20)
    ids = [r["id"] for r in whole["results"]]
    assert [r["id"] for r in first["results"]] == ids[:10]
    assert [r["id"] for r in third["results"]] == ids[20:30]


@pytest.mark.parametrize("mode", ["bm25", "vector", "hybrid"])
def test_modes_and_explain(server, mode: str) -> None:  # type: ignore[no-untyped-def]
    _, body = search(server, q="coffee maker", mode=mode, explain="true", k=5)
    explain = body["results"][0]["explain"]
    if mode != "vector":
        assert explain["bm25"]["rank"] is not None
    if mode != "bm25":
        assert explain["vector"]["rank"] is not None


def test_weighted_fusion_is_selectable(server) -> None:  # type: ignore[no-untyped-def]
    _, rrf = search(server, q="red blender", fusion="rrf", k=10)
    _, weighted = search(server, q="red blender", fusion="weighted", k=10)
    assert max(r["score"] for r in weighted["results"]) > 0.1 > max(r["score"] for r in rrf["results"])


@pytest.mark.parametrize(("params", "parameter", "fragment"), [
    ({"q": ""}, "q", "must not be empty"),
    ({}, "q", "is required"),
    ({"q": "x" * 300}, "q", "limit is 256"),
    ({"q": "a", "k": 0}, "k", "between 1 and 100"),
    ({"q": "a", "k": 101}, "k", "between 1 and 100"),
    ({"q": "a", "k": "ten"}, "k", "whole number"),
    ({"q": "a", "offset": -1}, "offset", "between"),
    ({"q": "a", "offset": 995, "k": 10}, "offset", "at most 1000"),
    ({"q": "a", "price_min": "cheap"}, "price_min", "must be a number"),
    ({"q": "a", "price_min": 10, "price_max": 5}, "price_min", "above price_max"),
    ({"q": "a", "in_stock": "maybe"}, "in_stock", "true or false"),
    ({"q": "a", "mode": "magic"}, "mode", "must be one of"),
    ({"q": "a", "colour": "red"}, "colour", "unknown parameter"),
    ({"q": ["a", "b"]}, "q", "more than once"),
])
def test_bad_requests_get_a_json_400_naming_the_problem(server, params, parameter, fragment) -> None:  # type: ignore[no-untyped-def]
    status, body = search(server, **params)
    assert status == 400
    assert body["error"] == "bad_request" and body["parameter"] == parameter
    assert fragment in body["message"]


def test_healthz_reports_generation_and_count(server, demo_reader) -> None:  # type: ignore[no-untyped-def]
    assert server.get("/healthz") == (200, {"status": "ok", "generation": demo_reader.generation, "documents": 600})


def test_unknown_route_is_json_404(server) -> None:  # type: ignore[no-untyped-def]
    status, body = server.get("/nope")
    assert status == 404 and body["error"] == "not_found"


def test_openapi_document_lists_every_parameter(server) -> None:  # type: ignore[no-untyped-def]
    status, body = server.get("/openapi.json")
    assert status == 200 and body == openapi_document()
    documented = {p["name"] for p in body["paths"]["/search"]["get"]["parameters"]}
    assert documented == {p.name for p in PARAMS} | {"attr.{name}"}


def test_page_renders_results_and_facet_links(server) -> None:  # type: ignore[no-untyped-def]
    status, html = server.get("/?q=yoga+mat")
    assert status == 200
    assert "Yoga Mat" in html and "matching products" in html
    assert "category=Sports" in html  # facet links carry the filter
    status, html = server.get("/?q=yoga&k=0")
    assert status == 200 and "between 1 and 100" in html


def test_server_without_index_answers_503_then_recovers(make_server, tmp_path: Path, demo_catalog: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import index_catalog

    srv = make_server(tmp_path, workers=1)
    status, body = srv.get("/search?q=lamp")
    assert status == 503 and body["error"] == "no_index"
    assert srv.get("/healthz")[0] == 503
    index_catalog(tmp_path, demo_catalog)
    assert srv.get("/healthz")[0] == 200
    assert srv.get("/search?q=lamp")[0] == 200
