"""One contract, every backend: index, upsert, delete, search, filters, facets, reindex
with a generation (alias) swap, rollback. Always against the embedded backend; against
OpenSearch when OPENSEARCH_URL is set (each test uses an alias of its own and removes its
indices afterwards)."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer.__main__ import EXIT_OK, main
from indexer.store.base import Filters
from tests.conftest import DEMO_SIZE

BACKENDS = [
    "embedded",
    pytest.param("opensearch", marks=pytest.mark.skipif(
        not os.environ.get("OPENSEARCH_URL"),
        reason="OPENSEARCH_URL is not set: no OpenSearch cluster to test against (see docs/opensearch.md)")),
]


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, models_dir: Path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SHOPRANK_BACKEND", request.param)
    if request.param == "opensearch":
        alias = f"shoprank-test-{secrets.token_hex(4)}"
        monkeypatch.setenv("OPENSEARCH_ALIAS", alias)
        yield request.param
        from indexer.backends import open_backend

        open_backend(tmp_path).client.indices.delete(index=f"{alias}-*", ignore_unavailable=True)
    else:
        yield request.param


def reader(data_dir: Path):  # type: ignore[no-untyped-def]
    from indexer.backends import open_backend

    return open_backend(data_dir).reader()


def cli(*args: str) -> int:
    return main(list(args))


@pytest.fixture
def indexed(backend: str, tmp_path: Path, demo_catalog: Path) -> Path:
    assert cli("reindex", "--catalog", str(demo_catalog), "--data-dir", str(tmp_path), "-q") == EXIT_OK
    return tmp_path


def test_index_and_search(indexed: Path, demo_products: list[dict]) -> None:
    r = reader(indexed)
    assert r.document_count == DEMO_SIZE
    hits = r.bm25("espresso machine", 5, Filters())
    products = r.products([h.id for h in hits])
    assert products and all("Espresso Machine" in p["title"] for p in products)
    assert products[0] == next(p for p in demo_products if p["id"] == products[0]["id"])


@pytest.mark.parametrize("filters", [
    Filters(category="Electronics > Audio"),
    Filters(brands=("Sonora",), in_stock=True),
    Filters(price_min=20, price_max=150),
    Filters(attributes=(("color", ("black",)),)),
    # what hide rules leave out (ranker/rules): a brand, a category, an id list, inside a shopper's filter
    Filters(excluded=(Filters(brands=("Sonora",)), Filters(category="Electronics > Audio > Headphones"))),
    Filters(in_stock=True, excluded=(Filters(attributes=(("color", ("black",)),)), Filters(price_min=100))),
    # hide and filter rules on rating, review count and currency
    Filters(excluded=(Filters(ranges=(("rating", 4.0, None),)), Filters(ranges=(("review_count", None, 10),)))),
    Filters(required=(Filters(ranges=(("rating", 3.5, 4.5),)), Filters(terms=(("currency", ("USD",)),)))),
    # what filter rules keep: every one must hold, beside the shopper's own filters and hides
    Filters(brands=("Sonora", "Auralis"), required=(Filters(price_max=200), Filters(in_stock=True)),
            excluded=(Filters(category="Electronics > Audio > Headphones"),)),
])
def test_filters_hold_on_every_path(indexed: Path, filters: Filters, models_dir: Path) -> None:
    from indexer.encoder import TextEncoder

    r = reader(indexed)
    vector = TextEncoder(models_dir, r.encoder_variant).encode_query("wireless speaker")
    for hits in (r.bm25("wireless speaker black", 100, filters), r.knn(vector, 30, filters)):
        assert hits
        assert all(filters.matches(p) for p in r.products([h.id for h in hits]))


def test_hidden_products_leave_totals_and_facets(indexed: Path) -> None:
    """A hide rule is a filter inside recall: the total and every facet count drop by
    exactly the products it hides, and an id list hides those ids."""
    r = reader(indexed)
    everything = r.match_summary("black", [], Filters())
    matched = r.products([h.id for h in r.bm25("black", 1000, Filters())])
    brand = max(everything.facets["brand"], key=lambda b: b.count).value
    some = tuple(p["id"] for p in matched if p.get("brand") != brand)[:3]
    hidden = Filters(excluded=(Filters(brands=(brand,)), Filters(ids=some)))
    summary = r.match_summary("black", [], hidden)
    gone = sum(1 for p in matched if p.get("brand") == brand or p["id"] in some)
    assert gone > 3 and summary.total == everything.total - gone
    assert brand not in {b.value for b in summary.facets["brand"]}
    found = {h.id for h in r.bm25("black", 1000, hidden)}
    assert found and not found & set(some) and all(p.get("brand") != brand for p in r.products(list(found)))


def test_a_rule_on_rating_or_reviews_is_counted_inside_recall(indexed: Path) -> None:
    """Hide rating 4.5 and up, keep only products with 5+ reviews: the total is exactly the
    matching set without those products, on either backend."""
    r = reader(indexed)
    matched = r.products([h.id for h in r.bm25("black", 1000, Filters())])
    filters = Filters(excluded=(Filters(ranges=(("rating", 4.5, None),)),),
                      required=(Filters(ranges=(("review_count", 5, None),)),))
    expected = [p for p in matched if not (p.get("rating") or 0) >= 4.5 and (p.get("review_count") or 0) >= 5]
    assert 0 < len(expected) < len(matched)
    assert r.match_summary("black", [], filters).total == len(expected)
    assert {h.id for h in r.bm25("black", 1000, filters)} == {p["id"] for p in expected}


def test_facets_count_the_matching_set(indexed: Path) -> None:
    r = reader(indexed)
    filters = Filters(price_max=200)
    matched = [h.id for h in r.bm25("black", 1000, filters)]
    summary = r.match_summary("black", [], filters)
    assert summary.total == len(matched)
    products = r.products(matched)
    by_brand = {b.value: b.count for b in summary.facets["brand"]}
    for brand, count in by_brand.items():
        assert count == sum(1 for p in products if p.get("brand") == brand)
    assert sum(b.count for b in summary.facets["price"]) == sum(1 for p in products if "price" in p)


def test_upsert_and_delete(indexed: Path, tmp_path: Path) -> None:
    changes = tmp_path / "changes.jsonl"
    changes.write_text(json.dumps({"id": "NEW-1", "title": "Quokka Lamp", "brand": "Lumiere", "price": 40.0}) + "\n")
    assert cli("upsert", "--catalog", str(changes), "--data-dir", str(indexed), "-q") == EXIT_OK
    r = reader(indexed)
    assert r.document_count == DEMO_SIZE + 1
    assert r.bm25("quokka", 1, Filters())[0].id == "NEW-1"
    assert cli("delete", "--ids", "NEW-1", "--data-dir", str(indexed)) == EXIT_OK
    assert reader(indexed).bm25("quokka", 1, Filters()) == []


def test_reindex_swaps_generation_and_rollback_restores(indexed: Path, tmp_path: Path) -> None:
    first = reader(indexed).generation
    small = tmp_path / "small.csv"
    small.write_text("id,title,price\nA,Only Lamp,10\nB,Only Chair,20\n")
    assert cli("reindex", "--catalog", str(small), "--data-dir", str(indexed), "-q") == EXIT_OK
    swapped = reader(indexed)
    assert swapped.generation != first and swapped.document_count == 2
    assert cli("rollback", "--data-dir", str(indexed)) == EXIT_OK
    restored = reader(indexed)
    assert restored.generation == first and restored.document_count == DEMO_SIZE


@pytest.mark.parametrize("fusion", ["weighted", "rrf"])
def test_hybrid_search_end_to_end(indexed: Path, models_dir: Path, fusion: str) -> None:
    """The whole recall path; on OpenSearch it runs through the search pipelines."""
    from indexer.encoder import TextEncoder
    from ranker.fusion import FusionConfig
    from ranker.pipeline import SearchPipeline
    from ranker.request import SearchRequest

    r = reader(indexed)
    pipeline = SearchPipeline(r, TextEncoder(models_dir, r.encoder_variant))
    filters = Filters(category="Electronics", in_stock=True)
    response = pipeline.search(SearchRequest("bluetooth speaker", k=20, filters=filters,
                                             fusion=FusionConfig(method=fusion)))
    assert response.results and response.total >= len(response.results)
    assert all(filters.matches(p) for p in r.products([x["id"] for x in response.results]))
    assert "Speaker" in response.results[0]["title"]
    assert {b["value"] for b in response.facets["category"]} <= {"Electronics > Audio", "Electronics > Computers"}
