"""The JSON API and the page, over HTTP, against a real gunicorn server on a free port."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from web.openapi import openapi_document
from web.params import PARAMS


def search(server, **params) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    return server.get("/search?" + urlencode(params, doseq=True))


def test_search_returns_the_documented_shape(server) -> None:  # type: ignore[no-untyped-def]
    status, body = search(server, q="wireless headphones", k=5)
    assert status == 200
    assert list(body) == ["query", "corrected_query", "total", "results", "facets", "took_ms", "generation",
                          "query_id", "understood", "suggestions"]
    assert body["query"] == "wireless headphones"
    assert body["corrected_query"] is None  # every word is the catalog's own
    assert len(body["results"]) == 5
    assert body["total"] >= 5
    first = body["results"][0]
    assert {"id", "title", "brand", "category", "price", "score"} <= set(first)
    assert "Headphones" in first["title"]
    facets = set(body["facets"])
    assert {"brand", "category", "price", "attr.color", "attr.connectivity"} <= facets  # headphones' attributes
    assert all(name.startswith("attr.") for name in facets - {"brand", "category", "price"})
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
    ({"q": "a", "offset": -1}, "offset", "between 0 and 900"),
    ({"q": "a", "offset": 995, "k": 10}, "offset", "between 0 and 900"),
    ({"q": "a", "k": " 5"}, "k", "whole number"),
    ({"q": "a", "price_min": "cheap"}, "price_min", "must be a number"),
    ({"q": "a", "price_min": "1e999"}, "price_min", "number ≥ 0"),
    ({"q": "a", "in_stock": "maybe"}, "in_stock", "true or false"),
    ({"q": "a", "in_stock": "1"}, "in_stock", "true or false"),
    ({"q": "a", "mode": "magic"}, "mode", "must be one of"),
    ({"q": "a", "mode": ""}, "mode", "must not be empty"),
    ({"q": "a", "category": ""}, "category", "must not be empty"),
    ({"q": "a", "category": " > "}, "category", "names no category"),
    ({"q": "a", "brand": ""}, "brand", "must not be empty"),
    ({"q": "a", "brand": ["Sonora", " "]}, "brand", "must not be empty"),
    ({"q": "a", "attr.color": ""}, "attr.color", "must not be empty"),
    ({"q": "a", "attr.": "blue"}, "attr.", "needs an attribute name"),
    ({"q": "a", "user_id": "x" * 129}, "user_id", "limit is 128"),
    ({"q": "a", "session_id": "a\x01b"}, "session_id", "printable"),
    ({"q": "a", "colour": "red"}, "colour", "unknown parameter"),
    ({"q": ["a", "b"]}, "q", "more than once"),
])
def test_bad_requests_get_a_json_400_naming_the_problem(server, params, parameter, fragment) -> None:  # type: ignore[no-untyped-def]
    status, body = search(server, **params)
    assert status == 400
    assert body["error"] == "bad_request" and body["parameter"] == parameter
    assert fragment in body["message"]


def test_healthz_reports_generation_and_count(server, demo_reader) -> None:  # type: ignore[no-untyped-def]
    assert server.get("/healthz") == (200, {"status": "ok", "generation": demo_reader.generation, "documents": 600,
                                            "ranker": None, "personal": False})


def test_unknown_route_is_json_404(server) -> None:  # type: ignore[no-untyped-def]
    status, body = server.get("/nope")
    assert status == 404 and body["error"] == "not_found"


def test_openapi_document_lists_every_parameter(server) -> None:  # type: ignore[no-untyped-def]
    status, body = server.get("/openapi.json")
    assert status == 200 and body == openapi_document()
    documented = {p["name"] for p in body["paths"]["/search"]["get"]["parameters"]}
    assert documented == {p.name for p in PARAMS} | {"attr"}
    attr = next(p for p in body["paths"]["/search"]["get"]["parameters"] if p["name"] == "attr")
    assert (attr["style"], attr["explode"], attr["schema"]["type"]) == ("form", True, "object")  # attr.NAME=value
    assert set(body["paths"]["/search"]["get"]["responses"]) == {"200", "400", "414", "503"}


def test_page_renders_results_and_facet_links(server) -> None:  # type: ignore[no-untyped-def]
    status, html = server.get("/?q=yoga+mat")
    assert status == 200
    assert "Yoga Mat" in html and "matching products" in html
    assert "category=Sports" in html  # facet links carry the filter
    status, html = server.get("/?q=yoga&k=0")
    assert status == 200 and "between 1 and 100" in html


def test_every_response_carries_a_fresh_query_id_and_shopper_ids_are_accepted(server) -> None:  # type: ignore[no-untyped-def]
    _, first = search(server, q="lamp", user_id="shopper-1")
    _, second = search(server, q="lamp", session_id="s-42")
    assert first["query_id"] != second["query_id"] and len(first["query_id"]) == 32
    assert [r["id"] for r in first["results"]] == [r["id"] for r in second["results"]]


def test_timings_report_each_stage(server) -> None:  # type: ignore[no-untyped-def]
    from ranker.pipeline import STAGES

    _, body = search(server, q="lamp", timings="true")
    assert [k for k in body["timings"] if "." not in k] == list(STAGES)
    assert "timings" not in search(server, q="lamp")[1]


def test_a_request_line_too_long_for_the_server_is_a_json_414(server) -> None:  # type: ignore[no-untyped-def]
    status, body = server.get("/search?q=lamp&brand=" + "x" * 5000)
    assert status == 414
    assert body["error"] == "uri_too_long" and "Request Line is too large" in body["message"]


def test_methods_the_api_does_not_take_are_405_with_allow(server) -> None:  # type: ignore[no-untyped-def]
    for method in ("POST", "PUT", "DELETE"):
        status, body = server.get("/search?q=lamp", method=method)
        assert status == 405 and body["error"] == "method_not_allowed"
    import urllib.error
    import urllib.request

    request = urllib.request.Request(server.base + "/search", method="POST")
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=5)
    assert set(raised.value.headers["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "OPTIONS"}


def test_options_answers_204_with_allow_and_no_body(server) -> None:  # type: ignore[no-untyped-def]
    import urllib.request

    request = urllib.request.Request(server.base + "/search", method="OPTIONS")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 204 and response.read() == b""
        assert set(response.headers["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "OPTIONS"}
        assert response.headers.get("Content-Type") is None


def test_page_links_keep_every_value_of_a_repeated_parameter(server) -> None:  # type: ignore[no-untyped-def]
    import html as html_lib
    import re

    status, page = server.get("/?q=speaker&brand=Sonora&brand=Auralis&attr.color=black&attr.color=white")
    assert status == 200
    links = [html_lib.unescape(h) for h in re.findall(r'href="([^"]+)"', page)]
    facet_links = [h for h in links if "category=" in h]
    assert facet_links and all("brand=Sonora" in h and "brand=Auralis" in h for h in facet_links)
    assert all("attr.color=black" in h and "attr.color=white" in h for h in facet_links)
    removing_one = [h for h in links if "brand=Auralis" in h and "brand=Sonora" not in h]
    assert removing_one  # the × on Sonora drops Sonora only


def test_price_facet_links_lead_to_their_own_count(server) -> None:  # type: ignore[no-untyped-def]
    import html as html_lib

    from werkzeug.datastructures import MultiDict

    from web.page_links import PageLinks

    _, body = search(server, q="lamp", k=5)
    _, page = server.get("/?q=lamp")
    assert body["facets"]["price"]
    for bucket in body["facets"]["price"]:
        link = PageLinks(MultiDict([("q", "lamp")])).price(bucket["from"], bucket["to"])
        assert html_lib.escape(link) in page
        status, narrowed = server.get("/search" + link[1:])
        assert status == 200 and narrowed["total"] == bucket["count"], (bucket, link)
