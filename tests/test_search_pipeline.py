"""The search pipeline, in process, on the real demo index: its stages, and what a search
promises whatever page it asks for."""

from __future__ import annotations

from dataclasses import replace

import pytest

from indexer.store.base import Filters
from ranker.pipeline import STAGES, SearchPipeline
from ranker.recall import MAX_RESULTS
from ranker.request import SearchRequest, Shopper

CASES = [
    SearchRequest("black", k=100),
    SearchRequest("premium classic set pro home", k=100),  # more BM25 matches than the recall window
    SearchRequest("gray velvet sofa", k=100, filters=Filters(price_max=1000, in_stock=True)),
    SearchRequest("wireless speaker", k=100, filters=Filters(category="Electronics")),
    SearchRequest("lamp", k=100, mode="bm25"),
    SearchRequest("lamp", k=100, mode="vector"),
    SearchRequest("lamp", k=100, fusion=None, correct=False),
]


def all_pages(pipeline: SearchPipeline, request: SearchRequest, k: int = 100) -> list:  # type: ignore[type-arg]
    pages = []
    for offset in range(0, MAX_RESULTS, k):
        response = pipeline.search(replace(request, k=k, offset=offset))
        pages.append(response)
        if len(response.results) < k:
            break
    return pages


@pytest.mark.parametrize("request_", CASES, ids=lambda r: f"{r.query}-{r.mode}")
def test_total_and_facets_do_not_depend_on_the_page(demo_pipeline, request_: SearchRequest) -> None:  # type: ignore[no-untyped-def]
    pages = all_pages(demo_pipeline, request_, k=50 if request_.mode == "vector" else 100)
    assert len({p.total for p in pages}) == 1, [p.total for p in pages]
    assert all(p.facets == pages[0].facets for p in pages)
    ids = [r["id"] for p in pages for r in p.results]
    assert len(ids) == len(set(ids)), "a product appeared on two pages"
    assert len(ids) == min(pages[0].total, MAX_RESULTS)  # every counted product is on some page, once
    assert all(request_.filters.matches(r) for p in pages for r in p.results)


def test_a_page_is_a_slice_of_one_ranking(demo_pipeline) -> None:  # type: ignore[no-untyped-def]
    request = SearchRequest("premium classic set pro home", k=100)
    whole = [r["id"] for p in all_pages(demo_pipeline, request) for r in p.results]
    for offset, k in ((0, 10), (95, 10), (100, 30), (230, 7)):  # inside, across and beyond the recall window
        page = demo_pipeline.search(replace(request, offset=offset, k=k))
        assert [r["id"] for r in page.results] == whole[offset : offset + k]


@pytest.mark.parametrize("query", ["sofa", "black", "wireless headphones"])
def test_a_facets_count_is_the_total_after_filtering_by_it(demo_pipeline, query: str) -> None:  # type: ignore[no-untyped-def]
    response = demo_pipeline.search(SearchRequest(query, k=10))
    checked = 0
    for bucket in response.facets["brand"][:4]:
        narrowed = demo_pipeline.search(SearchRequest(query, k=10, filters=Filters(brands=(bucket["value"],))))
        assert narrowed.total == bucket["count"], bucket
        checked += 1
    for bucket in response.facets["category"][:4]:
        narrowed = demo_pipeline.search(SearchRequest(query, k=10, filters=Filters(category=bucket["value"])))
        assert narrowed.total == bucket["count"], bucket
        checked += 1
    for bucket in response.facets["price"]:
        filters = Filters(price_min=bucket["from"], price_below=bucket["to"])
        assert demo_pipeline.search(SearchRequest(query, k=10, filters=filters)).total == bucket["count"], bucket
        checked += 1
    attributes = [name for name in response.facets if name.startswith("attr.")]
    assert attributes  # the demo's products have colors, materials, sizes
    for name in attributes:
        for bucket in response.facets[name][:2]:
            filters = Filters(attributes=((name.removeprefix("attr."), (bucket["value"],)),))
            assert demo_pipeline.search(SearchRequest(query, k=10, filters=filters)).total == bucket["count"], bucket
            checked += 1
    assert checked >= 8


def test_attribute_facets_are_the_attributes_the_matching_products_have(demo_pipeline, demo_products) -> None:  # type: ignore[no-untyped-def]
    response = demo_pipeline.search(SearchRequest("sofa", k=10, filters=Filters(category="Furniture > Living Room > Sofas")))
    sofas = [p for p in demo_products if p.get("category", "").startswith("Furniture > Living Room > Sofas")]
    assert {n for n in response.facets if n.startswith("attr.")} == {
        f"attr.{k}" for p in sofas for k in p.get("attributes", {})}  # color and material, no size or wattage
    colors = {b["value"]: b["count"] for b in response.facets["attr.color"]}
    assert sum(colors.values()) == response.total == sum(1 for p in sofas if "color" in p["attributes"])


def test_stages_run_in_order_and_report_their_time(demo_pipeline) -> None:  # type: ignore[no-untyped-def]
    response = demo_pipeline.search(SearchRequest("oak desk", timings=True))
    assert response.timings is not None and [k for k in response.timings if "." not in k] == list(STAGES)
    assert {"recall.encode", "recall.bm25", "recall.knn"} <= set(response.timings)  # steps inside a stage
    assert response.timings["recall"] >= response.timings["recall.bm25"] + response.timings["recall.knn"]
    assert all(ms >= 0 for ms in response.timings.values())
    assert demo_pipeline.search(SearchRequest("oak desk")).timings is None


def test_every_search_gets_its_own_query_id_and_carries_the_shopper(demo_pipeline) -> None:  # type: ignore[no-untyped-def]
    ids = {demo_pipeline.search(SearchRequest("oak desk")).query_id for _ in range(5)}
    assert len(ids) == 5 and all(len(i) == 32 for i in ids)
    anonymous = demo_pipeline.search(SearchRequest("oak desk"))
    known = demo_pipeline.search(SearchRequest("oak desk", shopper=Shopper(user_id="u1", session_id="s1")))
    assert Shopper(None, "s1").key == "s1" and Shopper("u1", "s1").key == "u1" and Shopper().key is None
    # the personalization stage has its place and leaves the order as it is until it is built
    assert [r["id"] for r in known.results] == [r["id"] for r in anonymous.results]


def test_ranking_stages_can_be_left_out_and_only_they(demo_reader, shipped_encoder) -> None:  # type: ignore[no-untyped-def]
    pipeline = SearchPipeline(demo_reader, shipped_encoder, disabled=("personalize", "merchandise"))
    assert [s.name for s in pipeline.ranking] == ["rerank", "personalize", "sort", "merchandise"]
    with pytest.raises(ValueError, match="only ranking stages can be left out, not recall"):
        SearchPipeline(demo_reader, shipped_encoder, disabled=("recall",))


def test_the_recall_window_is_planned_once_per_request(demo_pipeline) -> None:  # type: ignore[no-untyped-def]
    near, far = (demo_pipeline.plan(SearchRequest("x", offset=o, k=10)) for o in (0, 500))
    assert near.window == far.window == 100 and near.rerank_depth == far.rerank_depth == 0
    ranked = demo_pipeline.rank(SearchRequest("premium classic set pro home", offset=200, k=10))
    assert len(ranked.recalled.vector) <= 100 and len(ranked.recalled.bm25) == 210  # only BM25 goes deeper


@pytest.mark.parametrize("sort", ["price_asc", "price_desc", "rating"])
@pytest.mark.parametrize("query", ["sofa", "premium classic set pro home"])
def test_a_sorted_search_orders_the_whole_matching_set(demo_pipeline, sort: str, query: str) -> None:  # type: ignore[no-untyped-def]
    relevance = all_pages(demo_pipeline, SearchRequest(query, k=100))
    pages = all_pages(demo_pipeline, SearchRequest(query, k=100, sort=sort))
    assert {p.total for p in pages} == {relevance[0].total}  # sorting never changes what matches
    assert pages[0].facets == relevance[0].facets
    ranked = [r for p in relevance for r in p.results]
    results = [r for p in pages for r in p.results]
    assert sorted(r["id"] for r in results) == sorted(r["id"] for r in ranked)  # the same products, reordered
    if sort == "rating":  # unrated products last
        keys = [("rating" not in r, -r.get("rating", 0), -r.get("review_count", 0)) for r in results]
    else:
        keys = [r["price"] if sort == "price_asc" else -r["price"] for r in results]
    assert keys == sorted(keys)
    assert keys[0] != keys[-1]  # the order was not all ties
    # ties keep the relevance order
    position = {r["id"]: n for n, r in enumerate(ranked)}
    for a, b, ka, kb in zip(results, results[1:], keys, keys[1:], strict=False):
        if ka == kb:
            assert position[a["id"]] < position[b["id"]]


def test_a_sorted_page_is_a_slice_of_one_sorted_list(demo_pipeline) -> None:  # type: ignore[no-untyped-def]
    request = SearchRequest("premium classic set pro home", k=100, sort="price_asc")
    whole = [r["id"] for p in all_pages(demo_pipeline, request) for r in p.results]
    for offset, k in ((0, 10), (95, 10), (230, 7)):
        page = demo_pipeline.search(replace(request, offset=offset, k=k))
        assert [r["id"] for r in page.results] == whole[offset : offset + k]
