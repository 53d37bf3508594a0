"""The embedded store against the reference filter semantics (`Filters.matches`), on a
real tantivy + faiss index built from the demo catalog."""

from __future__ import annotations

import random

import numpy as np
import pytest

from indexer.store import embedded, embedded_index
from indexer.store.base import Filters
from indexer.store.filter_columns import FilterColumns

FILTER_CASES = [
    Filters(category="Furniture"),
    Filters(category="Kitchen > Cookware"),
    Filters(brands=("Sonora", "Auralis")),
    Filters(price_min=50, price_max=200),
    Filters(price_min=25, price_below=50),
    Filters(price_max=30, in_stock=True),
    Filters(in_stock=False),
    Filters(attributes=(("color", ("black", "white")),)),
    Filters(category="Electronics", attributes=(("connectivity", ("bluetooth",)),), in_stock=True),
]


def random_filters(products: list[dict], rng: random.Random) -> Filters:
    p = rng.choice(products)
    levels = p["category"].split(" > ")
    attribute = rng.choice(sorted(p["attributes"].items()))
    return Filters(
        category=" > ".join(levels[: rng.randint(1, len(levels))]) if rng.random() < 0.5 else None,
        brands=(p["brand"],) if rng.random() < 0.3 else (),
        price_min=rng.choice([None, 10.0, 50.0]),
        price_max=rng.choice([None, 100.0, 1000.0]),
        price_below=rng.choice([None, None, 50.0]),
        in_stock=rng.choice([None, True, False]),
        attributes=((attribute[0], (attribute[1],)),) if rng.random() < 0.4 else (),
    )


def test_filter_mask_matches_reference_semantics(demo_products: list[dict]) -> None:
    columns = FilterColumns(demo_products)
    rng = random.Random(1)
    for filters in FILTER_CASES + [random_filters(demo_products, rng) for _ in range(40)]:
        expected = np.array([filters.matches(p) for p in demo_products])
        assert (columns.mask(filters) == expected).all(), filters
    assert columns.mask(Filters()) is None


@pytest.mark.parametrize("filters", FILTER_CASES)
def test_bm25_and_knn_return_only_matching_products(demo_reader, shipped_encoder, filters: Filters) -> None:  # type: ignore[no-untyped-def]
    products = {p["id"]: p for p in demo_reader.catalog().products}
    matching = {i for i, p in products.items() if filters.matches(p)}
    assert matching, "each case should match something in the demo catalog"
    for query in ("black", "wireless headphones", "oak desk", "pan"):
        bm25 = demo_reader.bm25(query, 200, filters)
        assert {h.id for h in bm25} <= matching
        knn = demo_reader.knn(shipped_encoder.encode_query(query), 50, filters)
        assert {h.id for h in knn} <= matching
        assert len(knn) == min(50, len(matching))  # a pre-filter: k results whenever k exist
        post = demo_reader.knn(shipped_encoder.encode_query(query), 50, filters, post_filter=True)
        nearest = demo_reader.knn(shipped_encoder.encode_query(query), 50, Filters())
        assert [h.id for h in post] == [h.id for h in nearest if h.id in matching]  # the 50 nearest, then filtered


def test_bm25_prefers_title_matches(demo_reader) -> None:  # type: ignore[no-untyped-def]
    hits = demo_reader.bm25("espresso machine", 5, Filters())
    titles = [p["title"] for p in demo_reader.products([h.id for h in hits])]
    assert all("Espresso Machine" in t for t in titles), titles
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_knn_finds_a_products_own_vector_first(demo_reader) -> None:  # type: ignore[no-untyped-def]
    for ordinal in (0, 17, 333):
        product = demo_reader.catalog().products[ordinal]
        hits = demo_reader.knn(np.array(demo_reader.vectors[ordinal]), 3, Filters())
        assert hits[0].id == product["id"]
        assert hits[0].score == pytest.approx(1.0, abs=1e-3)


def test_filtered_knn_uses_exact_or_hnsw_path_with_same_answers(demo_reader, shipped_encoder, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Below EXACT_FILTERED_LIMIT the subset is scanned exactly; above it HNSW searches
    with a bitmap. On a flat index both must give the exact top-k."""
    vector = shipped_encoder.encode_query("bluetooth speaker")
    filters = Filters(in_stock=True)
    exact = [h.id for h in demo_reader.knn(vector, 20, filters)]
    allowed = [i for i, p in enumerate(demo_reader.catalog().products) if filters.matches(p)]
    sims = np.asarray(demo_reader.vectors)[allowed] @ vector
    reference = [demo_reader.catalog().products[allowed[i]]["id"] for i in np.argsort(-sims)[:20]]
    assert exact == reference
    monkeypatch.setattr(embedded, "EXACT_FILTERED_LIMIT", 0)
    assert [h.id for h in demo_reader.knn(vector, 20, filters)] == reference


def test_hnsw_with_bitmap_filter_respects_the_filter(tmp_path, demo_products, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Force an HNSW index on the small catalog to exercise the IDSelectorBitmap path."""
    from indexer.mapping import load_definition

    monkeypatch.setattr(embedded_index, "HNSW_MIN_DOCUMENTS", 1)
    monkeypatch.setattr(embedded, "EXACT_FILTERED_LIMIT", 0)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(demo_products), 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    embedded_index.write_generation(tmp_path, load_definition(), demo_products, vectors,
                              {"name": "t", "encoder": {"variant": "int8", "model_id": "x"}})
    reader = embedded.EmbeddedReader(tmp_path, load_definition())
    assert reader.manifest["vector_index"] == "hnsw"
    filters = Filters(category="Furniture")
    hits = reader.knn(vectors[5], 10, filters)
    assert hits and all(filters.matches(p) for p in reader.products([h.id for h in hits]))


def test_match_summary_counts_the_filtered_union(demo_reader, shipped_encoder) -> None:  # type: ignore[no-untyped-def]
    """total = |BM25 matches ∪ k-NN candidates| after filters; facets count that same set."""
    filters = Filters(price_max=300)
    query = "stainless steel pan"
    products = {p["id"]: p for p in demo_reader.catalog().products}
    bm25_all = {h.id for h in demo_reader.bm25(query, len(products), filters)}
    knn_ids = [h.id for h in demo_reader.knn(shipped_encoder.encode_query(query), 100, filters)]
    expected = bm25_all | set(knn_ids)
    summary = demo_reader.match_summary(query, knn_ids, filters)
    assert summary.total == len(expected)
    brand_counts = {b.value: b.count for b in summary.facets["brand"]}
    for brand, count in list(brand_counts.items())[:5]:
        assert count == sum(1 for i in expected if products[i].get("brand") == brand)
    price_total = sum(b.count for b in summary.facets["price"])
    assert price_total == sum(1 for i in expected if "price" in products[i])


def test_filters_do_not_change_bm25_scores(demo_reader) -> None:  # type: ignore[no-untyped-def]
    """A filter only removes products: the survivors keep their unfiltered BM25 score."""
    unfiltered = {h.id: h.score for h in demo_reader.bm25("gray linen sofa", 600, Filters())}
    for filters in FILTER_CASES:
        for hit in demo_reader.bm25("gray linen sofa", 50, filters):
            assert hit.score == pytest.approx(unfiltered[hit.id], rel=1e-6), filters
