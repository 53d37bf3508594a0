"""The embedded backend: tantivy for BM25, faiss for vectors, one directory per generation.

No server to start. The tantivy schema and analyzers are derived from
`mappings/products.json`; a mapping feature that cannot be honoured here is refused
with a MappingError rather than silently approximated.

Each generation directory holds:
    manifest.json    name, document count, encoder, vector index kind
    products.jsonl   the validated products, in ordinal order (ordinal = faiss row)
    vectors.npy      float32 (n, dim), unit length
    vectors.faiss    HNSW (large collections) or flat exact index (small ones)
    tantivy/         the BM25 index; every document carries its ordinal as a fast field
"""

from __future__ import annotations

import functools
import itertools
import json
import math
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import tantivy
from tantivy import Filter, Occur, Query, TextAnalyzerBuilder, Tokenizer

from indexer.documents import search_document, term_counts
from indexer.mapping import IndexDefinition, MappingError
from indexer.store.base import FacetBucket, Filters, Hit, MatchSummary
from indexer.store.filter_columns import FilterColumns

# Below this many products an exact flat index is as fast as HNSW and never misses.
HNSW_MIN_DOCUMENTS = 10_000
# efSearch 256 finds 98.4% of the exact top-100 on the Home Depot titles (128: 95.9%)
# for +0.24 ms a query; see docs/relevance.md.
HNSW_EF_SEARCH = 256
# A filtered k-NN over at most this many products is searched exactly: HNSW recall
# collapses under selective filters, and an exact scan of a subset is sub-millisecond.
EXACT_FILTERED_LIMIT = 20_000
ORD_FIELD = "ord"

_TOKENIZERS = {"standard": Tokenizer.simple, "whitespace": Tokenizer.whitespace, "keyword": Tokenizer.raw}
_TOKEN_FILTERS = {
    "lowercase": Filter.lowercase,
    "asciifolding": Filter.ascii_fold,
    "porter_stem": lambda: Filter.stemmer("english"),
    "kstem": lambda: Filter.stemmer("english"),
    "stop": lambda: Filter.stopword("english"),
}


def tantivy_field(path: str) -> str:
    return path.replace(".", "__")


def build_analyzers(definition: IndexDefinition) -> dict[str, tantivy.TextAnalyzer]:
    analyzers = {}
    for name, spec in definition.analyzers.items():
        tokenizer = _TOKENIZERS.get(spec.get("tokenizer", "standard"))
        if tokenizer is None:
            raise MappingError(f"analyzer {name!r}: tokenizer {spec.get('tokenizer')!r} is not supported by the embedded backend")
        builder = TextAnalyzerBuilder(tokenizer())
        for token_filter in spec.get("filter", []):
            if token_filter not in _TOKEN_FILTERS:
                raise MappingError(f"analyzer {name!r}: filter {token_filter!r} is not supported by the embedded backend")
            builder = builder.filter(_TOKEN_FILTERS[token_filter]())
        analyzers[name] = builder.build()
    return analyzers


class LocalAnalysis:
    """Text analysed as the mapping defines a field, in process (tantivy's analyzers): how
    ranking features tokenize on either backend."""

    def __init__(self, definition: IndexDefinition):
        self.definition = definition
        self.analyzers = build_analyzers(definition)

    def __call__(self, text: str, field: str = "title") -> list[str]:
        return self.analyzers[self.definition.field(field).analyzer or ""].analyze(text)


def build_schema(definition: IndexDefinition) -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_unsigned_field(ORD_FIELD, indexed=True, fast=True)
    for spec in definition.fields.values():
        name = tantivy_field(spec.path)
        if spec.type == "knn_vector" or not spec.indexed:
            continue
        if spec.type == "text":
            builder.add_text_field(name, tokenizer_name=spec.analyzer or "default")
        elif spec.type == "keyword":
            builder.add_text_field(name, tokenizer_name="raw", fast=True)
        elif spec.type in ("double", "float", "half_float", "scaled_float"):
            builder.add_float_field(name, indexed=True, fast=True)
        elif spec.type in ("integer", "long", "short"):
            builder.add_integer_field(name, indexed=True, fast=True)
        elif spec.type == "boolean":
            builder.add_boolean_field(name, indexed=True, fast=True)
        elif spec.type == "object":
            builder.add_json_field(name, tokenizer_name="raw", fast=True)
        else:
            raise MappingError(f"field {spec.path!r}: type {spec.type!r} is not supported by the embedded backend")
    return builder.build()


def _open_index(path: Path, definition: IndexDefinition, schema: tantivy.Schema | None = None) -> tuple[tantivy.Index, dict[str, tantivy.TextAnalyzer]]:
    index = tantivy.Index(schema, path=str(path)) if schema is not None else tantivy.Index.open(str(path))
    analyzers = build_analyzers(definition)
    for name, analyzer in analyzers.items():
        index.register_tokenizer(name, analyzer)
    return index, analyzers


def _tantivy_document(definition: IndexDefinition, doc: dict[str, Any], ordinal: int) -> dict[str, Any]:
    out: dict[str, Any] = {ORD_FIELD: ordinal}
    for spec in definition.fields.values():
        if spec.type == "knn_vector" or not spec.indexed:
            continue
        parent, _, _sub = spec.path.partition(".")
        value = doc.get(spec.path) if spec.path in doc else (doc.get(parent) if _sub else None)
        if value is not None and value != "" and value != {}:
            out[tantivy_field(spec.path)] = value
    return out


def write_generation(directory: Path, definition: IndexDefinition, products: list[dict[str, Any]],
                     vectors: np.ndarray, manifest: dict[str, Any]) -> None:
    """Write a complete generation into `directory` (a scratch dir the caller seals)."""
    if len(products) != len(vectors):
        raise ValueError(f"{len(products)} products but {len(vectors)} vectors")
    (directory / "tantivy").mkdir()
    index, _ = _open_index(directory / "tantivy", definition, build_schema(definition))
    writer = index.writer(heap_size=256_000_000)
    for ordinal, product in enumerate(products):
        writer.add_json(json.dumps(_tantivy_document(definition, search_document(product), ordinal)))
    writer.commit()
    writer.wait_merging_threads()

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    np.save(directory / "vectors.npy", vectors)
    if len(products) >= HNSW_MIN_DOCUMENTS:
        vector_index = faiss.IndexHNSWFlat(definition.dimension, definition.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        vector_index.hnsw.efConstruction = definition.hnsw_ef_construction
        kind = "hnsw"
    else:
        vector_index = faiss.IndexFlatIP(definition.dimension)
        kind = "flat"
    vector_index.add(vectors)
    faiss.write_index(vector_index, str(directory / "vectors.faiss"))

    with open(directory / "products.jsonl", "w", encoding="utf-8") as fh:
        for product in products:
            fh.write(json.dumps(product, ensure_ascii=False) + "\n")
    manifest = {**manifest, "documents": len(products), "vector_index": kind, "dimension": definition.dimension}
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2))


def read_products(directory: Path) -> list[dict[str, Any]]:
    with open(directory / "products.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


class EmbeddedReader:
    """A read-only view of one generation; cheap to search, built once per generation."""

    def __init__(self, directory: Path, definition: IndexDefinition):
        self.directory = directory
        self.definition = definition
        self.manifest = json.loads((directory / "manifest.json").read_text())
        self.generation = self.manifest["name"]
        self.encoder_variant = self.manifest["encoder"]["variant"]
        self._products = read_products(directory)
        self.document_count = len(self._products)
        self._ord_by_id = {p["id"]: i for i, p in enumerate(self._products)}
        self.vectors = np.load(directory / "vectors.npy", mmap_mode="r")
        self._vector_index = faiss.read_index(str(directory / "vectors.faiss"))
        if isinstance(self._vector_index, faiss.IndexHNSW):
            self._vector_index.hnsw.efSearch = HNSW_EF_SEARCH
        self._index, self._analyzers = _open_index(directory / "tantivy", definition)
        self._schema = self._index.schema
        self._searcher = self._index.searcher()
        self._columns = FilterColumns(self._products)
        # Each search needs the same text query twice (BM25, then count + facets).
        self._text_query = functools.lru_cache(maxsize=1024)(self._build_text_query)

    # --- queries -------------------------------------------------------------------

    def _build_text_query(self, text: str) -> Query | None:
        """multi_match best_fields: the best field's score plus tie_breaker x the others."""
        per_field = []
        for path, boost in self.definition.search_fields.items():
            analyzer = self._analyzers[self.definition.field(path).analyzer or ""]
            tokens = list(dict.fromkeys(analyzer.analyze(text)))
            if not tokens:
                continue
            name = tantivy_field(path)
            terms = [Query.term_query(self._schema, name, t) for t in tokens]
            field_query = terms[0] if len(terms) == 1 else Query.boolean_query([(Occur.Should, t) for t in terms])
            per_field.append(Query.boost_query(field_query, boost))
        if not per_field:
            return None
        return Query.disjunction_max_query(per_field, tie_breaker=self.definition.tie_breaker)

    def _filter_query(self, filters: Filters) -> Query | None:
        clauses: list[Query] = []
        if filters.category is not None:
            clauses.append(Query.term_query(self._schema, "category_levels", filters.category))
        if filters.brands:
            clauses.append(Query.term_set_query(self._schema, "brand", list(filters.brands)))
        if filters.price_min is not None or filters.price_max is not None:
            clauses.append(Query.range_query(self._schema, "price", tantivy.FieldType.Float,
                                             filters.price_min if filters.price_min is not None else -math.inf,
                                             filters.price_max if filters.price_max is not None else math.inf))
        if filters.in_stock is not None:
            clauses.append(Query.term_query(self._schema, "in_stock", filters.in_stock))
        for key, values in filters.attributes:
            clauses.append(Query.term_set_query(self._schema, f"attributes.{key}", list(values)))
        if not clauses:
            return None
        return Query.boolean_query([(Occur.Must, c) for c in clauses])

    @staticmethod
    def _and(query: Query, filter_query: Query | None) -> Query:
        """`query` restricted by `filter_query`, which must not add to the score (tantivy has
        no filter clause: a term filter would otherwise add its own BM25 to every hit)."""
        if filter_query is None:
            return query
        return Query.boolean_query([(Occur.Must, query), (Occur.Must, Query.const_score_query(filter_query, 0.0))])

    def bm25(self, text: str, k: int, filters: Filters) -> list[Hit]:
        query = self._text_query(text)
        if query is None or k <= 0:
            return []
        hits = self._searcher.search(self._and(query, self._filter_query(filters)), limit=k, count=False).hits
        if not hits:
            return []
        ordinals = self._searcher.fast_field_values(ORD_FIELD, [address for _, address in hits])
        return [Hit(self._products[o]["id"], float(score)) for (score, _), o in zip(hits, ordinals, strict=True)]

    def knn(self, vector: np.ndarray, k: int, filters: Filters) -> list[Hit]:
        query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        mask = self._columns.mask(filters)
        if mask is None:
            scores, ordinals = self._vector_index.search(query, k)
            pairs = zip(ordinals[0], scores[0], strict=True)
        else:
            allowed = np.flatnonzero(mask)
            if len(allowed) == 0:
                return []
            if len(allowed) <= EXACT_FILTERED_LIMIT or not isinstance(self._vector_index, faiss.IndexHNSW):
                sims = self.vectors[allowed] @ query[0]
                top = np.argpartition(-sims, min(k, len(sims)) - 1)[:k] if len(sims) > k else np.arange(len(sims))
                top = top[np.argsort(-sims[top], kind="stable")]
                pairs = zip(allowed[top], sims[top], strict=True)
            else:
                params = faiss.SearchParametersHNSW(
                    sel=faiss.IDSelectorBitmap(np.packbits(mask, bitorder="little")), efSearch=max(HNSW_EF_SEARCH, 2 * k)
                )
                scores, ordinals = self._vector_index.search(query, k, params=params)
                pairs = zip(ordinals[0], scores[0], strict=True)
        return [Hit(self._products[int(o)]["id"], float(s)) for o, s in pairs if o >= 0]

    def match_summary(self, text: str, candidate_ids: list[str], filters: Filters) -> MatchSummary:
        should = []
        text_query = self._text_query(text)
        if text_query is not None:
            should.append(text_query)
        ordinals = [self._ord_by_id[i] for i in candidate_ids if i in self._ord_by_id]
        if ordinals:
            should.append(Query.term_set_query(self._schema, ORD_FIELD, ordinals))
        if not should:
            return MatchSummary(total=0, facets={})
        query = self._and(Query.boolean_query([(Occur.Should, q) for q in should]), self._filter_query(filters))
        # One pass over the matching set: every document has exactly one ordinal, so the
        # value count of `ord` is the number of matches (a separate count would walk it twice).
        aggregations: dict[str, Any] = {"_total": {"value_count": {"field": ORD_FIELD}}}
        for name, spec in self.definition.facets.items():
            if spec.edges:
                aggregations[name] = {"range": {"field": spec.field, "ranges": price_ranges(spec.edges)}}
            else:
                aggregations[name] = {"terms": {"field": tantivy_field(spec.field), "size": spec.size}}
        result = self._searcher.aggregate(query, aggregations)
        total = int(result["_total"]["value"] or 0)
        facets: dict[str, list[FacetBucket]] = {}
        for name in self.definition.facets:
            buckets = result.get(name, {}).get("buckets", [])
            facets[name] = [
                FacetBucket(str(b["key"]), int(b["doc_count"]), b.get("from"), b.get("to"))
                for b in buckets
                if b["doc_count"] > 0
            ]
        return MatchSummary(total=total, facets=facets)

    def analyze(self, text: str, field: str = "title") -> list[str]:
        """Tokens of `text` as the index analyses `field` (ranking features use the same)."""
        return self._analyzers[self.definition.field(field).analyzer or ""].analyze(text)

    def products(self, ids: list[str]) -> list[dict[str, Any]]:
        return [self._products[self._ord_by_id[i]] for i in ids if i in self._ord_by_id]

    def all_products(self) -> list[dict[str, Any]]:
        return self._products

    def term_counts(self) -> dict[str, int]:
        """The generation's searchable words and their counts (query correction's dictionary)."""
        return term_counts(self._products, self.definition.search_fields)


def price_ranges(edges: tuple[float, ...]) -> list[dict[str, float]]:
    """[25, 50] -> [{to: 25}, {from: 25, to: 50}, {from: 50}]; the range-aggregation body."""
    ranges: list[dict[str, float]] = [{"to": edges[0]}]
    ranges += [{"from": lo, "to": hi} for lo, hi in itertools.pairwise(edges)]
    ranges.append({"from": edges[-1]})
    return ranges
