"""The embedded backend's reader: tantivy for BM25, faiss for vectors, one generation.

No server to start. A reader is built once per generation (products, filter columns,
the HNSW graph and tantivy's searcher in memory, the vector matrix memory-mapped) and is
then cheap to search from any number of requests.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import tantivy
from tantivy import Occur, Query

from indexer.analysis import FieldAnalyzer
from indexer.documents import search_document, term_counts, value_field_counts
from indexer.mapping import IndexDefinition
from indexer.store.base import (
    Capabilities,
    FacetBucket,
    FeatureDocument,
    Filters,
    Hit,
    LocalCatalog,
    MatchSummary,
    Product,
    TextQuery,
    Unsupported,
    match_words,
    price_ranges,
    required_words,
    text_query_of,
)
from indexer.store.embedded_index import (
    ORD_FIELD,
    open_tantivy,
    read_manifest,
    read_products,
    read_vectors,
    tantivy_field,
)
from indexer.store.filter_columns import FilterColumns

# The search depth that finds nearly all of the exact top-100 (measured in docs/relevance.md).
HNSW_EF_SEARCH = 256
# A filtered k-NN over at most this many products is searched exactly: HNSW recall
# collapses under selective filters, and an exact scan of a subset is cheap.
EXACT_FILTERED_LIMIT = 20_000
FLOAT_TYPES = ("double", "float", "half_float", "scaled_float")
MAX_TERM_DISJUNCTION = 64  # beyond about this many values one term-set query is cheaper


def _any(queries: list[Query]) -> Query:
    return queries[0] if len(queries) == 1 else Query.boolean_query([(Occur.Should, q) for q in queries])


class EmbeddedReader:
    """A read-only view of one generation directory."""

    capabilities = Capabilities(hybrid_search=False, local_catalog=True)

    def __init__(self, directory: Path, definition: IndexDefinition):
        self.directory = directory
        self.definition = definition
        self.manifest = read_manifest(directory)
        self.generation: str = self.manifest["name"]
        self.encoder_variant: str = self.manifest["encoder"]["variant"]
        self._products = read_products(directory)
        self._ord_by_id = {p["id"]: i for i, p in enumerate(self._products)}
        self.vectors = read_vectors(directory)
        self._vector_index = faiss.read_index(str(directory / "vectors.faiss"))
        if isinstance(self._vector_index, faiss.IndexHNSW):
            self._vector_index.hnsw.efSearch = HNSW_EF_SEARCH
        self._index = open_tantivy(directory / "tantivy", definition)
        self._analysis = FieldAnalyzer(definition)
        self._schema = self._index.schema
        self._searcher = self._index.searcher()
        self._columns = FilterColumns(self._products)
        # Each search needs the same text query twice (BM25, then count + facets).
        self._text_query = functools.lru_cache(maxsize=1024)(self._build_text_query)

    @property
    def document_count(self) -> int:
        return len(self._products)

    # --- queries -------------------------------------------------------------------

    def _build_text_query(self, query: TextQuery) -> Query | None:
        """The scoring query (`_scored`), restricted to the products that match well enough
        (`_matching`) when the query says how many of its words must match."""
        scoring = self._scored(query.scored)
        if scoring is None or query.minimum_should_match is None:
            return scoring
        matching = self._matching(query)
        return scoring if matching is None else self._and(scoring, matching)

    def _field_tokens(self, text: str) -> list[tuple[str, float, list[str]]]:
        """(tantivy field, boost, distinct tokens) of each search field the text has tokens in."""
        return [(tantivy_field(path), boost, tokens) for path, boost in self.definition.search_fields.items()
                if (tokens := list(dict.fromkeys(self._analysis(text, path))))]

    def _scored(self, text: str) -> Query | None:
        """multi_match best_fields: the best field's score plus tie_breaker x the others."""
        per_field = []
        for name, boost, tokens in self._field_tokens(text):
            terms = [Query.term_query(self._schema, name, t) for t in tokens]
            per_field.append(Query.boost_query(_any(terms), boost))
        if not per_field:
            return None
        return Query.disjunction_max_query(per_field, tie_breaker=self.definition.tie_breaker)

    def _word(self, word: str) -> Query | None:
        """A product with any of the word's tokens in any search field."""
        terms = [Query.term_query(self._schema, name, t) for name, _, tokens in self._field_tokens(word) for t in tokens]
        if not terms:
            return None
        return terms[0] if len(terms) == 1 else Query.boolean_query([(Occur.Should, t) for t in terms])

    def _matching(self, query: TextQuery) -> Query | None:
        """At least `required_words` of the words, or any extra word: "at least m of n" is
        "every n-m+1 of them hold one", a conjunction of small disjunctions (tantivy's
        boolean query has no minimum-should-match)."""
        words = [q for q in (self._word(w) for w in match_words(query.counted, self._has_tokens)) if q is not None]
        if not words:
            return None
        need = required_words(query.minimum_should_match, len(words))
        if need <= 1:
            matching = _any(words)
        elif need >= len(words):
            matching = Query.boolean_query([(Occur.Must, w) for w in words])
        else:
            matching = Query.boolean_query([(Occur.Must, _any(list(group)))
                                            for group in itertools.combinations(words, len(words) - need + 1)])
        extra = [q for q in (self._word(w) for w in query.extra) if q is not None]
        return _any([matching, *extra])

    def _has_tokens(self, word: str) -> bool:
        return bool(self._field_tokens(word))

    def _any_term(self, field: str, values: Sequence[str]) -> Query:
        """Documents with any of these values. tantivy's term-set query has a fixed cost of
        its own whatever the set's size, which each hide rule on a brand or an id list paid
        once: up to some tens of values, a term query or a disjunction of them is cheaper
        (docs/merchandising.md has the measurement)."""
        values = list(dict.fromkeys(values))
        if len(values) == 1:
            return Query.term_query(self._schema, field, values[0])
        if len(values) <= MAX_TERM_DISJUNCTION:
            return Query.boolean_query([(Occur.Should, Query.term_query(self._schema, field, v)) for v in values])
        return Query.term_set_query(self._schema, field, values)

    def _range(self, name: str, low: float | None, high: float | None) -> Query:
        """An inclusive range over a numeric field (an integer field's bounds rounded inward)."""
        if self.definition.field(name).type in FLOAT_TYPES:
            return Query.range_query(self._schema, tantivy_field(name), tantivy.FieldType.Float,
                                     -math.inf if low is None else low, math.inf if high is None else high)
        return Query.range_query(self._schema, tantivy_field(name), tantivy.FieldType.Integer,
                                 -(2**63) if low is None else math.ceil(low), 2**63 - 1 if high is None else math.floor(high))

    def _filter_query(self, filters: Filters) -> Query | None:
        clauses: list[Query] = []
        if filters.category is not None:
            clauses.append(Query.term_query(self._schema, "category_levels", filters.category))
        if filters.brands:
            clauses.append(self._any_term("brand", filters.brands))
        if filters.price_min is not None or filters.price_max is not None:
            clauses.append(Query.range_query(self._schema, "price", tantivy.FieldType.Float,
                                             filters.price_min if filters.price_min is not None else -math.inf,
                                             filters.price_max if filters.price_max is not None else math.inf))
        if filters.price_below is not None:
            # tantivy's range query is inclusive at both ends: the largest float below the bound
            clauses.append(Query.range_query(self._schema, "price", tantivy.FieldType.Float, -math.inf,
                                             math.nextafter(filters.price_below, -math.inf)))
        if filters.in_stock is not None:
            clauses.append(Query.term_query(self._schema, "in_stock", filters.in_stock))
        for key, values in filters.attributes:
            clauses.append(self._any_term(f"attributes.{key}", values))
        if filters.ids:
            clauses.append(self._any_term("id", filters.ids))
        clauses += [self._range(name, low, high) for name, low, high in filters.ranges]
        for name, values in filters.terms:
            clauses.append(self._any_term(tantivy_field(name), values))
        clauses += [q for q in (self._filter_query(f) for f in filters.required) if q is not None]
        hidden = [q for q in (self._filter_query(f) for f in filters.excluded) if q is not None]
        if not clauses and not hidden:
            return None
        if not clauses:
            clauses.append(Query.all_query())  # a bool query of must-nots alone matches nothing
        return Query.boolean_query([(Occur.Must, c) for c in clauses] + [(Occur.MustNot, q) for q in hidden])

    @staticmethod
    def _and(query: Query, filter_query: Query | None) -> Query:
        """`query` restricted by `filter_query`, which must not add to the score (tantivy has
        no filter clause: a term filter would otherwise add its own BM25 to every hit)."""
        if filter_query is None:
            return query
        return Query.boolean_query([(Occur.Must, query), (Occur.Must, Query.const_score_query(filter_query, 0.0))])

    def bm25(self, text: str | TextQuery, k: int, filters: Filters) -> list[Hit]:
        query = self._text_query(text_query_of(text))
        if query is None or k <= 0:
            return []
        hits = self._searcher.search(self._and(query, self._filter_query(filters)), limit=k, count=False).hits
        if not hits:
            return []
        ordinals = self._searcher.fast_field_values(ORD_FIELD, [address for _, address in hits])
        return [Hit(self._products[o]["id"], float(score)) for (score, _), o in zip(hits, ordinals, strict=True)]

    def knn(self, vector: np.ndarray, k: int, filters: Filters, post_filter: bool = False) -> list[Hit]:
        query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        mask = self._columns.mask(filters)
        if mask is None or post_filter:
            scores, ordinals = self._vector_index.search(query, k)
            keep = ordinals[0] >= 0
            if mask is not None:
                keep &= mask[np.maximum(ordinals[0], 0)]
            found, sims = ordinals[0][keep], scores[0][keep]
        else:
            allowed = np.flatnonzero(mask)
            if len(allowed) == 0:
                return []
            if len(allowed) <= EXACT_FILTERED_LIMIT or not isinstance(self._vector_index, faiss.IndexHNSW):
                sims = self.vectors[allowed] @ query[0]
                top = np.argpartition(-sims, min(k, len(sims)) - 1)[:k] if len(sims) > k else np.arange(len(sims))
                top = top[np.argsort(-sims[top], kind="stable")]
                found, sims = allowed[top], sims[top]
            else:
                params = faiss.SearchParametersHNSW(
                    sel=faiss.IDSelectorBitmap(np.packbits(mask, bitorder="little")), efSearch=max(HNSW_EF_SEARCH, 2 * k)
                )
                scores, ordinals = self._vector_index.search(query, k, params=params)
                found, sims = ordinals[0][ordinals[0] >= 0], scores[0][ordinals[0] >= 0]
        products = self._products  # numpy scalars are slow one by one: convert the arrays first
        return [Hit(products[o]["id"], s) for o, s in zip(found.tolist(), sims.tolist(), strict=True)]

    def match_summary(self, text: str | TextQuery, candidate_ids: Sequence[str], filters: Filters) -> MatchSummary:
        should = []
        text_query = self._text_query(text_query_of(text))
        if text_query is not None:
            should.append(text_query)
        known = [i for i in candidate_ids if i in self._ord_by_id]
        if known:
            should.append(self._any_term("id", known))
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
        return self._analysis(text, field)

    def products(self, ids: Sequence[str]) -> list[Product]:
        return [self._products[self._ord_by_id[i]] for i in ids if i in self._ord_by_id]

    def catalog(self) -> LocalCatalog:
        # A plain ndarray view of the memory-mapped matrix (no copy): indexing an np.memmap
        # goes through its Python-level __getitem__ on every call.
        return LocalCatalog(self._products, np.asarray(self.vectors))

    @functools.cache  # noqa: B019 - one reader per generation, kept for its whole life
    def term_counts(self) -> dict[str, int]:
        return term_counts(self._products, self.definition.search_fields)

    def vocabulary_stamp(self) -> tuple[str, int]:
        return self.generation, 0  # a generation's words never change

    @functools.cache  # noqa: B019 - one reader per generation, kept for its whole life
    def value_counts(self) -> dict[str, dict[str, int]]:
        return value_field_counts(search_document(p) for p in self._products)

    def hybrid_search(self, text: str | TextQuery, vector: np.ndarray, k: int, filters: Filters,
                      method: str) -> tuple[list[Hit], MatchSummary]:
        raise Unsupported("the embedded backend fuses in ShopRank (ranker.fusion)")

    def feature_documents(self, text: str, ids: Sequence[str]) -> dict[str, FeatureDocument]:
        raise Unsupported("the embedded backend holds its catalog locally: use catalog()")
