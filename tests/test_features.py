"""The ranking features: each one computed from the real index, checked against its meaning."""

from __future__ import annotations

import numpy as np
import pytest

from indexer.store.base import Filters
from ranker.events.profile import ProductFacts, Profile
from ranker.features.names import FEATURE_INDEX, FEATURE_NAMES, PERSONAL_FEATURES
from ranker.features.personal import PersonalView, relative_prices
from ranker.features.sources import features_for
from ranker.features.token_bags import TokenBags
from ranker.features.units import unit_tokens
from ranker.rerank import candidate_ranks
from tests.ranking_helpers import row_builder


@pytest.mark.parametrize(("text", "tokens"), [
    ("3/4 in. copper pipe", {"0.75in"}),
    ("1-1/2 in. PVC elbow", {"1.5in"}),
    ('60" vanity', {"60in"}),
    ("20V MAX drill", {"20v"}),
    ("2.5 gal. bucket", {"2.5gal"}),
    ("36 in. x 80 in. door", {"36in", "80in"}),
    ("12-Gauge angle", {"12ga"}),
    ("pack of 4", {"#4"}),
    ("no numbers here", set()),
])
def test_unit_tokens(text: str, tokens: set[str]) -> None:
    assert unit_tokens(text) == tokens


def test_token_bags_count_without_a_loop() -> None:
    vocabulary: dict[str, int] = {}
    bags = TokenBags.build([["a", "b"], [], ["b", "c", "d"], ["a"]], vocabulary)
    rows = np.array([2, 0, 1, 3])
    ids = np.array([vocabulary["b"], vocabulary["a"]])
    assert bags.count_in(rows, ids).tolist() == [1.0, 2.0, 0.0, 1.0]
    assert bags.lengths(rows).tolist() == [3, 2, 0, 1]


@pytest.fixture(scope="module")
def builder(demo_reader, shipped_encoder):  # type: ignore[no-untyped-def]
    return row_builder(demo_reader, shipped_encoder, depth=50)


class Recalled:
    """A query's candidates as the rerank stage sees them, plus any `extra` products."""

    def __init__(self, builder, query: str, extra: list[str] | None = None):  # type: ignore[no-untyped-def]
        from ranker.request import SearchRequest

        ranked = builder.pipeline.rank(SearchRequest(query, rerank=False))
        self.fused = ranked.candidates[: builder.depth]
        seen = {c.id for c in self.fused}
        self.ranks = candidate_ranks(self.fused, [i for i in extra or [] if i not in seen])
        self.vector = ranked.search.vector
        self.features, _ = features_for(builder.source, ranked.search.text, self.vector, self.ranks)
        self.row = {i: n for n, i in enumerate(self.ranks.ids)}


def test_feature_matrix_shape_and_recall_columns(builder, demo_reader) -> None:  # type: ignore[no-untyped-def]
    recalled = Recalled(builder, "espresso machine")
    features, ids = recalled.features, recalled.ranks.ids
    assert features.shape == (len(ids), len(FEATURE_NAMES)) and features.dtype == np.float32
    assert np.allclose(features[:, FEATURE_INDEX["log_recall_rank"]], np.log1p(np.arange(1, len(ids) + 1)))
    bm25_ranks = [c.bm25_rank for c in recalled.fused]
    assert np.allclose(features[:, FEATURE_INDEX["log_bm25_rank"]],
                       np.log1p([r if r is not None else max(len(ids), 100) + 1 for r in bm25_ranks]))
    cosine = np.asarray(demo_reader.vectors[[builder.ord_by_id[i] for i in ids]]) @ recalled.vector
    assert np.allclose(features[:, FEATURE_INDEX["vector_cosine"]], cosine, atol=1e-5)


def test_text_features_follow_the_title(builder, demo_reader) -> None:  # type: ignore[no-untyped-def]
    products = demo_reader.catalog().products
    target = next(p for p in products if "Espresso Machine" in p["title"])
    other = next(p for p in products if "Espresso" not in p["title"] and "Machine" not in p["title"])
    query = target["title"].lower()
    recalled = Recalled(builder, query, [target["id"], other["id"]])
    features, row = recalled.features, recalled.row
    t, o = features[row[target["id"]]], features[row[other["id"]]]
    assert t[FEATURE_INDEX["exact_phrase_in_title"]] == 1.0 and o[FEATURE_INDEX["exact_phrase_in_title"]] == 0.0
    assert t[FEATURE_INDEX["title_query_overlap"]] == 1.0 > o[FEATURE_INDEX["title_query_overlap"]]
    assert t[FEATURE_INDEX["brand_in_query"]] == 1.0
    assert t[FEATURE_INDEX["bm25_title"]] > 0 and t[FEATURE_INDEX["bm25_combined"]] > o[FEATURE_INDEX["bm25_combined"]]
    assert t[FEATURE_INDEX["query_length"]] == len(set(demo_reader.analyze(query)))


def test_unit_features_match_and_conflict(builder, demo_reader) -> None:  # type: ignore[no-untyped-def]
    products = demo_reader.catalog().products
    eight = next(p for p in products if p.get("attributes", {}).get("size") == "8 in.")
    twelve = next(p for p in products if p.get("attributes", {}).get("size") == "12 in.")
    recalled = Recalled(builder, "pan 8 in.", [eight["id"], twelve["id"]])
    features, row = recalled.features, recalled.row
    assert features[row[eight["id"]], FEATURE_INDEX["query_units_matched"]] == 1.0
    assert features[row[twelve["id"]], FEATURE_INDEX["units_conflict"]] == 1.0
    assert features[row[eight["id"]], FEATURE_INDEX["units_conflict"]] == 0.0


def test_product_signals_and_neutral_personalization(builder, demo_reader) -> None:  # type: ignore[no-untyped-def]
    recalled = Recalled(builder, "yoga mat")
    features = recalled.features
    products = demo_reader.products(recalled.ranks.ids)
    assert np.allclose(features[:, FEATURE_INDEX["log_price"]], [np.log1p(p["price"]) for p in products])
    assert (features[:, FEATURE_INDEX["in_stock"]] == [1.0 if p["in_stock"] else 0.0 for p in products]).all()
    for name in PERSONAL_FEATURES:
        assert (features[:, FEATURE_INDEX[name]] == 0).all()


def test_shopper_profile_fills_personal_features(builder, demo_reader) -> None:  # type: ignore[no-untyped-def]
    recalled = Recalled(builder, "yoga mat")
    products = demo_reader.products(recalled.ranks.ids)
    favourite, other = products[0], next(p for p in products if p["brand"] != products[0]["brand"])
    vectors = demo_reader.catalog().vectors
    ordinal = {p["id"]: i for i, p in enumerate(demo_reader.catalog().products)}
    relative = relative_prices(demo_reader.catalog().products)
    profile = Profile()
    for action, product in (("purchase", favourite), ("click", other)):  # 5 : 1 for the favourite's tastes
        row = ordinal[product["id"]]
        profile.add(action, 1000.0, product["id"], ProductFacts.of(product, vectors[row], float(relative[row])))
    view = PersonalView.of(profile, 1000.0)
    features, _ = features_for(builder.source, "yoga mat", recalled.vector, recalled.ranks, view)
    column = {name: features[:, FEATURE_INDEX[name]] for name in PERSONAL_FEATURES}
    assert column["personal_evidence"] == pytest.approx(np.full(len(products), np.log1p(6.0)))
    brands = np.array([p["brand"] for p in products])
    mine = brands == favourite["brand"]
    alike = np.array([p["category"] == favourite["category"] for p in products])
    assert column["personal_brand_affinity"][mine] == pytest.approx(np.full(mine.sum(), 5 / 6))
    assert (column["personal_brand_affinity"][(brands != favourite["brand"]) & (brands != other["brand"])] == 0).all()
    in_category = (column["personal_brand_in_category"][mine & alike])
    assert in_category == pytest.approx(np.full(len(in_category), 5 / 6 if other["category"] == favourite["category"]
                                                else 1.0))
    assert column["personal_engaged"][0] == pytest.approx(5 / 6) and column["personal_engaged"][1:].max() <= 1 / 6 + 1e-6
    assert column["personal_price_fit"][0] > 0.5  # its own price lies inside the band
    same = [all(p.get("attributes", {}).get(k) == v for k, v in favourite["attributes"].items()) for p in products]
    assert column["personal_attribute_affinity"][0] == pytest.approx(5 / 6)
    assert column["personal_attribute_affinity"][same] == pytest.approx(np.full(sum(same), 5 / 6))
    # every candidate is a yoga product: every level of its category path is shared
    assert column["personal_category_affinity"][alike] == pytest.approx(np.ones(alike.sum()))
    cosine = features[:, FEATURE_INDEX["personal_embedding_cosine"]]
    assert int(np.argmax(cosine)) == 0 and cosine[0] > 0.9


def test_table_bm25_agrees_with_tantivy(builder, demo_reader) -> None:  # type: ignore[no-untyped-def]
    """The numpy BM25 ranks candidates as tantivy does (tantivy quantizes field lengths,
    so the values differ a little, the order hardly)."""
    for query in ("stainless steel frying pan", "wireless noise cancelling headphones", "oak desk"):
        hits = demo_reader.bm25(query, 30, Filters())
        rows = np.array([builder.ord_by_id[h.id] for h in hits])
        ours = builder.source.table.text_scores(query, rows)["combined"]
        theirs = np.array([h.score for h in hits])
        assert np.corrcoef(ours, theirs)[0, 1] > 0.97, query
        assert ours == pytest.approx(theirs, rel=0.1)


def test_table_bm25_per_field() -> None:
    from indexer.mapping import load_definition
    from ranker.features.product_table import ProductTable

    products = [{"id": "a", "title": "red lamp", "brand": "Lumo"}, {"id": "b", "title": "blue chair"},
                {"id": "c", "title": "red red chair", "description": "a lamp for reading"}]
    table = ProductTable(products, lambda text, field="title": text.lower().split(), load_definition())
    scores = table.text_scores("red lamp", np.array([0, 1, 2]))
    assert scores["title"][1] == 0 and scores["title"][0] > scores["title"][2] > 0
    assert scores["description"].tolist()[:2] == [0, 0] and scores["description"][2] > 0
    assert scores["brand.text"].tolist() == [0, 0, 0]
    boosts = load_definition().search_fields
    best = max(boosts["title"] * scores["title"][2], boosts["description"] * scores["description"][2])
    other = min(boosts["title"] * scores["title"][2], boosts["description"] * scores["description"][2])
    assert scores["combined"][2] == pytest.approx(best + load_definition().tie_breaker * other)
