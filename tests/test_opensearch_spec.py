"""Every request body the OpenSearch backend sends, validated against the official spec.

The spec leaves most objects open (no additionalProperties: false), so a misspelled key
would pass it: the key names we rely on are pinned by the assertions below as well.
"""

from __future__ import annotations

import numpy as np
import pytest
from opensearchpy.helpers import expand_action

from indexer.mapping import load_definition
from indexer.store import opensearch_bodies as bodies
from indexer.store.base import Filters, TextQuery
from ranker.fusion import FusionConfig
from tests.conftest import SHARED

pytestmark = pytest.mark.skipif(not (SHARED / "opensearch-api-spec" / "spec").is_dir(),
                                reason="../shared/opensearch-api-spec is not here")

DEFINITION = load_definition()
VECTOR = np.linspace(-1, 1, DEFINITION.dimension).astype(np.float32)
FILTERS = [
    Filters(),
    Filters(category="Furniture > Living Room"),
    Filters(brands=("Acme", "Zed"), in_stock=True),
    Filters(price_min=10.0),
    Filters(price_max=99.5, attributes=(("color", ("blue", "red")), ("size", ("M",)))),
    Filters(brands=("Acme",), required=(Filters(price_max=50), Filters(attributes=(("color", ("red",)),)))),  # filter rules
    Filters(excluded=(Filters(ranges=(("rating", 4.0, None),)),), required=(Filters(terms=(("currency", ("USD",)),)),)),
    Filters(category="Tools", brands=("Torqmax",), price_min=5, price_max=50, in_stock=False,
            attributes=(("voltage", ("20V",)),)),
    Filters(in_stock=True, excluded=(Filters(brands=("Acme",)), Filters(ids=("SR-1", "SR-2")),
                                     Filters(category="Tools", price_min=100))),  # hide rules
]


def check(validator, body) -> None:  # type: ignore[no-untyped-def]
    from tests.opensearch_spec import errors

    problems = errors(validator, body)
    assert not problems, "\n".join(problems)


def search_validator():  # type: ignore[no-untyped-def]
    from tests.opensearch_spec import request_body_validator

    return request_body_validator("_core", "search")


def test_index_creation_body() -> None:
    from tests.opensearch_spec import request_body_validator

    body = bodies.index_body(DEFINITION, {"name": "products-1", "encoder": {"variant": "int8", "model_id": "m"}})
    check(request_body_validator("indices", "indices.create"), body)
    vector = body["mappings"]["properties"]["embedding"]
    assert vector["type"] == "knn_vector" and vector["dimension"] == 384
    assert vector["method"] == {"name": "hnsw", "space_type": "innerproduct", "engine": "lucene",
                                "parameters": {"m": 32, "ef_construction": 128}}
    assert body["settings"]["index"]["knn"] is True
    sized = bodies.index_body(DEFINITION, {"name": "products-2"}, shards=2, replicas=1)
    check(request_body_validator("indices", "indices.create"), sized)
    assert (sized["settings"]["index"]["number_of_shards"], sized["settings"]["index"]["number_of_replicas"]) == (2, 1)
    assert DEFINITION.body["settings"]["index"]["number_of_shards"] == 1  # the definition itself is untouched
    assert body["mappings"]["_meta"]["shoprank"]["manifest"]["encoder"]["variant"] == "int8"


def test_dictionary_update_body_keeps_the_rest_of_meta() -> None:
    from tests.opensearch_spec import request_body_validator

    meta = bodies.index_body(DEFINITION, {"name": "products-1"}, {"sofa": 3})["mappings"]["_meta"]
    body = bodies.meta_update_body(meta, {"sofa": 3, "quokka": 1})
    check(request_body_validator("indices", "indices.put_mapping"), body)
    assert body["_meta"]["shoprank"]["vocabulary"] == {"sofa": 3, "quokka": 1}
    assert body["_meta"]["shoprank"]["manifest"] == {"name": "products-1"}
    assert body["_meta"]["shoprank"]["search_fields"] == DEFINITION.search_fields


@pytest.mark.parametrize("method", ["weighted", "rrf"])
def test_search_pipeline_bodies(method: str) -> None:
    from tests.opensearch_spec import request_body_validator

    body = bodies.pipeline_body(method)
    check(request_body_validator("search_pipeline", "search_pipeline.put"), body)
    processor = body["phase_results_processors"][0]
    if method == "weighted":
        assert processor["normalization-processor"]["combination"]["parameters"]["weights"] == [
            FusionConfig().lexical_weight, FusionConfig().vector_weight]
        assert processor["normalization-processor"]["normalization"]["technique"] == "min_max"
    else:
        assert processor["score-ranker-processor"]["combination"] == {"technique": "rrf",
                                                                      "rank_constant": FusionConfig().rrf_k}


@pytest.mark.parametrize("filters", FILTERS)
def test_search_bodies(filters: Filters) -> None:
    validator = search_validator()
    precise = TextQuery("cordless drill 3/4 in.", ("cordfree",), "3<-1 6<-2")
    words = ["cordless", "drill", "3/4", "in."]
    for body in (
        bodies.bm25_body(DEFINITION, TextQuery("cordless drill 3/4 in."), words, 100, filters),
        bodies.bm25_body(DEFINITION, precise, words, 100, filters),
        bodies.knn_body(DEFINITION, VECTOR, 100, filters),
        bodies.knn_body(DEFINITION, VECTOR, 100, filters, post_filter=True),
        bodies.hybrid_body(DEFINITION, TextQuery("gray sofa", (), "100%"), ["gray", "sofa"], VECTOR, 100, filters),
        bodies.summary_body(DEFINITION, precise, words, ["SR-1", "SR-2"], filters),
        bodies.summary_body(DEFINITION, TextQuery(""), [], ["SR-1"], filters),
        bodies.value_counts_body(),
    ):
        check(validator, body)


def test_a_precise_query_requires_the_integer_both_backends_compute() -> None:
    body = bodies.bm25_body(DEFINITION, TextQuery("gray velvet sofa", (), "3<-1 6<-2"), ["gray", "velvet", "sofa"],
                            10, Filters())
    matching = body["query"]["bool"]["filter"][0]["bool"]
    assert matching["minimum_should_match"] == 3
    assert [c["multi_match"]["query"] for c in matching["should"]] == ["gray", "velvet", "sofa"]
    loose = bodies.bm25_body(DEFINITION, TextQuery("gray velvet sofa"), ["gray", "velvet", "sofa"], 10, Filters())
    assert "multi_match" in loose["query"]  # any one word: the scoring query alone


def test_filters_become_prefilters_on_knn() -> None:
    filters = FILTERS[-2]  # the one with every positive field
    knn = bodies.knn_query(DEFINITION, VECTOR, 50, filters)["knn"]["embedding"]
    assert knn["k"] == 50 and len(knn["vector"]) == 384
    assert knn["filter"] == {"bool": {"filter": bodies.filter_clauses(filters)}}
    assert bodies.filter_clauses(filters) == [
        {"term": {"category_levels": "Tools"}},
        {"terms": {"brand": ["Torqmax"]}},
        {"range": {"price": {"gte": 5, "lte": 50}}},
        {"term": {"in_stock": False}},
        {"terms": {"attributes.voltage": ["20V"]}},
    ]
    post = bodies.knn_query(DEFINITION, VECTOR, 50, filters, post_filter=True)
    assert post["bool"]["filter"] == bodies.filter_clauses(filters)  # applied to the 50 nearest, not inside k-NN
    assert "filter" not in post["bool"]["must"][0]["knn"]["embedding"]
    hybrid = bodies.hybrid_body(DEFINITION, TextQuery("drill"), ["drill"], VECTOR, 100, filters)["query"]["hybrid"]["queries"]
    assert hybrid[0]["bool"]["filter"] == bodies.filter_clauses(filters)
    assert hybrid[1] == bodies.knn_query(DEFINITION, VECTOR, 100, filters, post_filter=True)  # as ShopRank fuses
    below = bodies.filter_clauses(Filters(price_min=25, price_below=50))
    assert below == [{"range": {"price": {"gte": 25, "lt": 50}}}]


def test_multi_match_uses_the_mapping_boosts() -> None:
    query = bodies.text_query(DEFINITION, "sofa")["multi_match"]
    assert query["fields"] == ["title^3", "brand.text^2", "category.text^1.5", "attributes_text^1", "description^0.5"]
    assert (query["type"], query["tie_breaker"]) == ("best_fields", 0.3)


def test_feature_body_names_one_match_per_search_field() -> None:
    body = bodies.feature_body(DEFINITION, "3/4 in. drill", ["SR-1", "SR-2"])
    check(search_validator(), body)
    assert body["size"] == 2 and body["query"]["bool"]["filter"] == [{"ids": {"values": ["SR-1", "SR-2"]}}]
    named = {clause["match"][path]["_name"]: path for clause in body["query"]["bool"]["should"]
             for path in clause["match"]}
    assert named == {path: path for path in DEFINITION.search_fields}  # a score per field, unboosted


def test_mget_body() -> None:
    from tests.opensearch_spec import request_body_validator

    check(request_body_validator("_core", "mget"), bodies.mget_body(["a", "b"]))


def test_bulk_lines(demo_products) -> None:  # type: ignore[no-untyped-def]
    """Action lines against the spec's OperationContainer; document lines against our own
    strict mapping (`dynamic: strict` would refuse an unknown field)."""
    from tests.opensearch_spec import request_body_validator, schema_validator

    operation = schema_validator("_core.bulk", "OperationContainer")
    properties = DEFINITION.body["mappings"]["properties"]
    vectors = np.tile(VECTOR, (len(demo_products[:50]), 1))
    lines: list = []
    for action in bodies.bulk_index_actions("products-1", DEFINITION, demo_products[:50], vectors):
        meta, document = expand_action(dict(action))
        check(operation, meta)
        assert set(meta) == {"index"} and meta["index"]["_id"] == action["_source"]["id"]
        assert set(document) <= set(properties), set(document) - set(properties)
        assert len(document["embedding"]) == DEFINITION.dimension
        lines += [meta, document]
    for action in bodies.bulk_delete_actions("products-1", ["a", "b"]):
        meta, document = expand_action(dict(action))
        check(operation, meta)
        assert document is None and set(meta) == {"delete"}
        lines.append(meta)
    check(request_body_validator("_core", "bulk", "application/x-ndjson"), lines)


def test_alias_swap_is_one_atomic_body() -> None:
    from tests.opensearch_spec import request_body_validator

    body = bodies.alias_actions("products", "products-2", ["products-1"], verified=True)
    check(request_body_validator("indices", "indices.update_aliases"), body)
    assert body["actions"] == [
        {"remove": {"index": "products-1", "alias": "products"}},
        {"add": {"index": "products-2", "alias": "products", "is_write_index": True}},
        {"add": {"index": "products-2", "alias": "products-verified"}},  # a load that completed, in the same call
    ]


def test_the_validator_catches_a_bad_body() -> None:
    """The check above can fail: a wrong type and an unknown enum value are reported."""
    from tests.opensearch_spec import errors

    body = bodies.bm25_body(DEFINITION, TextQuery("x"), ["x"], 10, Filters())
    body["size"] = "ten"
    body["query"]["multi_match"]["type"] = "closest_fields"
    problems = errors(search_validator(), body)
    assert any("size" in p for p in problems) and any("closest_fields" in p for p in problems)
