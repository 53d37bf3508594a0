"""Every request body the OpenSearch backend sends, built by small pure functions.

Nothing here talks to a cluster, so tests validate each body against the official
OpenSearch API spec (tests/test_opensearch_spec.py), and the backend builds its requests
only through these functions.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from indexer.documents import search_document
from indexer.mapping import MAPPING_PATH, IndexDefinition
from indexer.store.base import (
    MAX_VALUES_PER_FIELD,
    VALUE_FIELDS,
    Filters,
    TextQuery,
    price_ranges,
    required_words,
)

PIPELINE_FILES = {"weighted": "search-pipeline-weighted.json", "rrf": "search-pipeline-rrf.json"}


def index_body(definition: IndexDefinition, manifest: dict[str, Any], vocabulary: dict[str, int] | None = None,
               shards: int | None = None, replicas: int | None = None) -> dict[str, Any]:
    """The mapping file as it is, plus this generation's manifest and the catalog's word
    counts (query correction's dictionary, which a client cannot cheaply read back from
    the index itself) in `_meta`; `shards`/`replicas` (a cluster's own sizing) replace the
    file's."""
    body = copy.deepcopy(definition.body)
    body["mappings"]["_meta"]["shoprank"].update({"manifest": manifest, **vocabulary_meta(vocabulary or {})})
    index = body.setdefault("settings", {}).setdefault("index", {})
    if shards is not None:
        index["number_of_shards"] = shards
    if replicas is not None:
        index["number_of_replicas"] = replicas
    return body


def vocabulary_meta(vocabulary: dict[str, int]) -> dict[str, Any]:
    """The dictionary and its size in words: a reader re-reads the small size every few
    seconds to notice an upsert, and the dictionary itself only when the size moved."""
    return {"vocabulary": vocabulary, "vocabulary_words": sum(vocabulary.values())}


def meta_update_body(meta: dict[str, Any], vocabulary: dict[str, int]) -> dict[str, Any]:
    """PUT _mapping replaces `_meta` whole: the index's own `_meta` with a new vocabulary."""
    return {"_meta": {**meta, "shoprank": {**meta.get("shoprank", {}), **vocabulary_meta(vocabulary)}}}


def pipeline_body(method: str) -> dict[str, Any]:
    """A search pipeline exactly as mappings/search-pipeline-<method>.json defines it."""
    return json.loads((MAPPING_PATH.parent / PIPELINE_FILES[method]).read_text())


def text_query(definition: IndexDefinition, text: str) -> dict[str, Any]:
    return {"multi_match": {
        "query": text,
        "fields": [f"{path}^{boost:g}" for path, boost in definition.search_fields.items()],
        "type": "best_fields",
        "tie_breaker": definition.tie_breaker,
    }}


def _word_query(definition: IndexDefinition, word: str) -> dict[str, Any]:
    """A product with any of the word's tokens in any search field."""
    return {"multi_match": {"query": word, "fields": list(definition.search_fields)}}


def matching_query(definition: IndexDefinition, query: TextQuery, words: Sequence[str]) -> dict[str, Any] | None:
    """The products that match well enough: `required_words` of `words` (the text's
    `match_words`, analysed client-side as the embedded backend does), or any extra word.
    None: any word is enough (the scoring query's own matches)."""
    if query.minimum_should_match is None or not words:
        return None
    need = required_words(query.minimum_should_match, len(words))
    matching: dict[str, Any] = {"bool": {"should": [_word_query(definition, w) for w in words],
                                         "minimum_should_match": need}}
    if query.extra:
        return {"bool": {"should": [matching, *(_word_query(definition, w) for w in query.extra)],
                         "minimum_should_match": 1}}
    return matching


def scored_text_query(definition: IndexDefinition, query: TextQuery, words: Sequence[str]) -> dict[str, Any]:
    """The best-fields scoring query over the text and its extra words, restricted to
    `matching_query` (a filter: it adds no score)."""
    scoring = text_query(definition, query.scored)
    matching = matching_query(definition, query, words)
    return scoring if matching is None else {"bool": {"must": [scoring], "filter": [matching]}}


def filter_clauses(filters: Filters) -> list[dict[str, Any]]:
    """The same semantics as the embedded backend (and `Filters.matches`)."""
    clauses: list[dict[str, Any]] = []
    if filters.category is not None:
        clauses.append({"term": {"category_levels": filters.category}})
    if filters.brands:
        clauses.append({"terms": {"brand": list(filters.brands)}})
    bounds = {op: value for op, value in (("gte", filters.price_min), ("lte", filters.price_max),
                                          ("lt", filters.price_below)) if value is not None}
    if bounds:
        clauses.append({"range": {"price": bounds}})
    if filters.in_stock is not None:
        clauses.append({"term": {"in_stock": filters.in_stock}})
    for key, values in filters.attributes:
        clauses.append({"terms": {f"attributes.{key}": list(values)}})
    if filters.ids:
        clauses.append({"ids": {"values": list(filters.ids)}})
    for name, low, high in filters.ranges:
        bounds = {op: value for op, value in (("gte", low), ("lte", high)) if value is not None}
        clauses.append({"range": {name: bounds}} if bounds else {"exists": {"field": name}})
    for name, values in filters.terms:
        clauses.append({"terms": {name: list(values)}})
    for forced in filters.required:
        clauses.extend(filter_clauses(forced))
    hidden = [{"bool": {"filter": filter_clauses(f)}} for f in filters.excluded if not f.is_empty()]
    if hidden:
        clauses.append({"bool": {"must_not": hidden}})
    return clauses


def _filtered(query: dict[str, Any], filters: Filters) -> dict[str, Any]:
    clauses = filter_clauses(filters)
    return {"bool": {"must": [query], "filter": clauses}} if clauses else query


def knn_query(definition: IndexDefinition, vector: np.ndarray, k: int, filters: Filters,
              post_filter: bool = False) -> dict[str, Any]:
    """k-NN with the filters as a pre-filter (the engine searches exactly when few match),
    or, `post_filter`, applied to the k nearest of the whole index (a `bool` filter around it)."""
    spec: dict[str, Any] = {"vector": [float(x) for x in vector], "k": k}
    clauses = filter_clauses(filters)
    if clauses and post_filter:
        return {"bool": {"must": [{"knn": {definition.vector_field: spec}}], "filter": clauses}}
    if clauses:
        spec["filter"] = {"bool": {"filter": clauses}}
    return {"knn": {definition.vector_field: spec}}


def bm25_body(definition: IndexDefinition, query: TextQuery, words: Sequence[str], k: int,
              filters: Filters) -> dict[str, Any]:
    return {"size": k, "_source": False, "query": _filtered(scored_text_query(definition, query, words), filters)}


def knn_body(definition: IndexDefinition, vector: np.ndarray, k: int, filters: Filters,
             post_filter: bool = False) -> dict[str, Any]:
    return {"size": k, "_source": False, "query": knn_query(definition, vector, k, filters, post_filter)}


def facet_aggregations(definition: IndexDefinition) -> dict[str, Any]:
    aggregations: dict[str, Any] = {}
    for name, spec in definition.facets.items():
        if spec.edges:
            aggregations[name] = {"range": {"field": spec.field, "ranges": price_ranges(spec.edges)}}
        else:
            aggregations[name] = {"terms": {"field": spec.field, "size": spec.size}}
    return aggregations


def hybrid_body(definition: IndexDefinition, query: TextQuery, words: Sequence[str], vector: np.ndarray, k: int,
                filters: Filters) -> dict[str, Any]:
    """BM25 and k-NN in one request; the search pipeline normalises and fuses them. The
    k-NN side is the k nearest of the whole index, then filtered, so the total and the
    facets count the same union of both sub-queries' matches as the embedded backend's
    match_summary does, whichever filters are asked."""
    return {
        "size": k,
        "_source": False,
        "track_total_hits": True,
        "query": {"hybrid": {"queries": [
            _filtered(scored_text_query(definition, query, words), filters),
            knn_query(definition, vector, k, filters, post_filter=True),
        ]}},
        "aggregations": facet_aggregations(definition),
    }


def value_counts_body() -> dict[str, Any]:
    """Every brand, category level and attribute pair with its product count (up to
    `MAX_VALUES_PER_FIELD` per field, most frequent first)."""
    return {"size": 0, "aggregations": {name: {"terms": {"field": name, "size": MAX_VALUES_PER_FIELD}}
                                        for name in VALUE_FIELDS}}


def summary_body(definition: IndexDefinition, query: TextQuery, words: Sequence[str], candidate_ids: Sequence[str],
                 filters: Filters) -> dict[str, Any]:
    """Count and facets over (BM25 matches ∪ k-NN candidates) after filters."""
    should: list[dict[str, Any]] = []
    if query.scored.strip():
        should.append(scored_text_query(definition, query, words))
    if candidate_ids:
        should.append({"ids": {"values": list(candidate_ids)}})
    return {
        "size": 0,
        "track_total_hits": True,
        "query": {"bool": {"should": should, "minimum_should_match": 1, "filter": filter_clauses(filters)}},
        "aggregations": facet_aggregations(definition),
    }


def feature_body(definition: IndexDefinition, text: str, ids: Sequence[str]) -> dict[str, Any]:
    """The ranking features' inputs for known candidates: one named `match` per search field
    (sent with `include_named_queries_score=true`, each hit reports every field's own BM25),
    restricted to the candidates by an `ids` filter; `_source` includes the vector."""
    return {
        "size": len(ids),
        "query": {"bool": {
            "filter": [{"ids": {"values": list(ids)}}],
            "should": [{"match": {path: {"query": text, "_name": path}}} for path in definition.search_fields],
        }},
    }


def mget_body(ids: Sequence[str]) -> dict[str, Any]:
    return {"ids": list(ids)}


def bulk_index_actions(index: str, definition: IndexDefinition, products: Sequence[dict[str, Any]],
                       vectors: np.ndarray) -> Iterator[dict[str, Any]]:
    """Actions for opensearchpy.helpers.streaming_bulk; the product id is the document id."""
    for product, vector in zip(products, vectors, strict=True):
        document = search_document(product)
        document[definition.vector_field] = [float(x) for x in vector]
        yield {"_op_type": "index", "_index": index, "_id": product["id"], "_source": document}


def bulk_delete_actions(index: str, ids: Sequence[str]) -> Iterator[dict[str, Any]]:
    for doc_id in ids:
        yield {"_op_type": "delete", "_index": index, "_id": doc_id}


def verified_alias(alias: str) -> str:
    """Names every index whose load was verified (a killed load's index never gets it)."""
    return f"{alias}-verified"


def alias_actions(alias: str, new_index: str, old_indices: Sequence[str], verified: bool = False) -> dict[str, Any]:
    """One atomic `_aliases` call: the alias leaves the old indices and joins the new one
    (`verified`: which also joins the verified indices, in the same call)."""
    actions: list[dict[str, Any]] = [{"remove": {"index": old, "alias": alias}} for old in old_indices]
    actions.append({"add": {"index": new_index, "alias": alias, "is_write_index": True}})
    if verified:
        actions.append({"add": {"index": new_index, "alias": verified_alias(alias)}})
    return {"actions": actions}
