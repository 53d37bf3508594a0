"""The one definition of the ranking feature vector of a (query, product, shopper) triple.

Training and serving both call `compute_features`; it works on all candidates of a query
at once with numpy (no Python loop per candidate). Per-product text is analysed once per
index generation into `ProductTable`: token bags stored as ragged arrays (CSR style), so
query-token overlap for 200 candidates is a gather, a table lookup and a `bincount`.

Personalization features are part of the vector from the start and are 0 (neutral) when
the shopper is unknown or has no profile; the personalization work fills them.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from indexer.mapping import IndexDefinition

SEARCH_FIELD_FEATURES = ("title", "brand.text", "category.text", "attributes_text", "description")
FEATURE_NAMES: tuple[str, ...] = (
    "bm25_combined",
    *(f"bm25_{f}" for f in SEARCH_FIELD_FEATURES),
    "vector_cosine",
    "log_recall_rank", "log_bm25_rank", "log_vector_rank",
    "title_query_overlap", "title_coverage", "exact_phrase_in_title",
    "query_coverage_all_fields", "query_tokens_missing", "title_trigram_overlap", "title_trigram_jaccard",
    "query_has_units", "query_units_matched", "units_conflict",
    "brand_in_query", "category_query_overlap",
    "log_price", "rating", "has_rating", "log_review_count", "log_popularity", "in_stock",
    "query_length", "title_length",
    "personal_category_affinity", "personal_brand_affinity", "personal_embedding_cosine",
)
FEATURE_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}

# --- numbers and units: "3/4 in.", "1-1/2 in", '60"', "20V", "2.5 gal." -----------------

_UNITS = {
    "in": "in", "inch": "in", "inches": "in", '"': "in", "ft": "ft", "feet": "ft", "foot": "ft", "'": "ft",
    "gal": "gal", "gallon": "gal", "gallons": "gal", "lb": "lb", "lbs": "lb", "pound": "lb", "oz": "oz",
    "v": "v", "volt": "v", "volts": "v", "w": "w", "watt": "w", "watts": "w", "a": "a", "amp": "a", "amps": "a",
    "gpm": "gpm", "mm": "mm", "cm": "cm", "qt": "qt", "btu": "btu", "cu": "cuft", "sq": "sqft", "pk": "pk",
    "pack": "pk", "piece": "pc", "pc": "pc", "gauge": "ga", "ga": "ga", "mil": "mil", "ah": "ah", "psi": "psi",
}
_NUMBER_UNIT = re.compile(
    r"(?<![\w.])(\d+(?:[-\s]\d+/\d+)|\d+/\d+|\d+(?:\.\d+)?)\s*-?\s*"
    r"(inches|inch|in\b|feet|foot|ft\b|gallons|gallon|gal\b|lbs|lb\b|pound|oz\b|volts|volt|v\b|watts|watt|w\b"
    r"|amps|amp|a\b|gpm|mm\b|cm\b|qt\b|btu|cu\b|sq\b|pk\b|pack|piece|pc\b|gauge|ga\b|mil\b|ah\b|psi|\"|')?",
    re.IGNORECASE,
)


def _to_number(text: str) -> float:
    text = text.replace("-", " ").strip()
    total = 0.0
    for part in text.split():
        if "/" in part:
            num, den = part.split("/", 1)
            total += float(num) / float(den) if float(den) else 0.0
        else:
            total += float(part)
    return total


def unit_tokens(text: str) -> set[str]:
    """Canonical number+unit tokens: '3/4 in.' -> '0.75in', '60"' -> '60in', '20V' -> '20v'.
    A number without a unit becomes '#60'."""
    tokens = set()
    for number, unit in _NUMBER_UNIT.findall(text):
        try:
            value = _to_number(number)
        except ValueError:
            continue
        if not math.isfinite(value):
            continue
        canonical = _UNITS.get(unit.lower().rstrip("."), "") if unit else ""
        tokens.add(f"{value:g}{canonical}" if canonical else f"#{value:g}")
    return tokens


def _unit_kind(token: str) -> str:
    return token.lstrip("#0123456789.e-+") or "#"


_WORD = re.compile(r"[a-z0-9]+")


def char_trigrams(text: str) -> set[str]:
    """Character trigrams of each word, padded ('#toilet#' -> '#to', 'toi', ...): they
    still match when a shopper misspells ('toliet') or splits a compound ('hand saw')."""
    grams = set()
    for word in _WORD.findall(text.lower()):
        padded = f"#{word}#"
        grams.update(padded[i : i + 3] for i in range(len(padded) - 2))
    return grams


# --- ragged token bags --------------------------------------------------------------------


@dataclass(frozen=True)
class TokenBags:
    """Per-product distinct token ids and their counts, CSR style: product i holds
    indices[indptr[i]:indptr[i+1]] with counts[...] of the same slice."""

    indptr: np.ndarray
    indices: np.ndarray
    counts: np.ndarray

    @classmethod
    def build(cls, bags: Iterable[Iterable[str]], vocabulary: dict[str, int]) -> TokenBags:
        indptr, indices, counts = [0], [], []
        for bag in bags:
            ids = [vocabulary.setdefault(t, len(vocabulary)) for t in bag]
            distinct, tf = np.unique(np.array(ids, dtype=np.int64), return_counts=True)
            indices.extend(distinct.tolist())
            counts.extend(tf.tolist())
            indptr.append(len(indices))
        return cls(np.array(indptr, dtype=np.int64), np.array(indices, dtype=np.int64),
                   np.array(counts, dtype=np.float32))

    @classmethod
    def union(cls, bags: list[TokenBags], vocabulary_size: int) -> TokenBags:
        """Per product, the distinct tokens of any of `bags` (counts set to 1)."""
        products = len(bags[0].indptr) - 1
        rows = np.concatenate([np.repeat(np.arange(products), np.diff(b.indptr)) for b in bags])
        keys = np.unique(rows * vocabulary_size + np.concatenate([b.indices for b in bags]))
        indptr = np.concatenate(([0], np.cumsum(np.bincount(keys // vocabulary_size, minlength=products))))
        return cls(indptr.astype(np.int64), keys % vocabulary_size, np.ones(len(keys), dtype=np.float32))

    @functools.cached_property
    def id_limit(self) -> int:
        return int(self.indices.max()) + 1 if len(self.indices) else 0

    def member(self, tokens: np.ndarray, token_ids: np.ndarray) -> np.ndarray:
        """`np.isin(tokens, token_ids)` by a lookup table: no sort, a few µs instead of ~40
        per call, which adds up over the dozen token lookups of every query's features."""
        table = np.zeros(self.id_limit, dtype=bool)
        table[token_ids[token_ids < self.id_limit]] = True
        return table[tokens]

    def lengths(self, rows: np.ndarray) -> np.ndarray:
        return self.indptr[rows + 1] - self.indptr[rows]

    def gather(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(flat positions of the rows' entries, row number of each): a vectorized gather."""
        lengths = self.lengths(rows)
        total = int(lengths.sum())
        starts = self.indptr[rows]
        offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
        return offsets + np.arange(total), np.repeat(np.arange(len(rows)), lengths)

    def count_in(self, rows: np.ndarray, token_ids: np.ndarray) -> np.ndarray:
        """For each row, how many of its distinct tokens are in `token_ids`."""
        if len(token_ids) == 0 or len(rows) == 0:
            return np.zeros(len(rows), dtype=np.float32)
        positions, segment = self.gather(rows)
        hits = self.member(self.indices[positions], token_ids)
        return np.bincount(segment, weights=hits, minlength=len(rows)).astype(np.float32)


class FieldBM25:
    """BM25 of one text field for any set of products, from token bags (k1 1.2, b 0.75,
    Lucene's idf, as tantivy). Scoring 100 candidates is a few array operations, against
    a restricted tantivy search per field; values differ from tantivy's slightly, since
    tantivy quantizes field lengths to one byte."""

    K1, B = 1.2, 0.75

    def __init__(self, bags: TokenBags, vocabulary_size: int):
        self.bags = bags
        self.length = np.bincount(np.repeat(np.arange(len(bags.indptr) - 1), np.diff(bags.indptr)),
                                  weights=bags.counts, minlength=len(bags.indptr) - 1).astype(np.float32)
        documents = len(bags.indptr) - 1
        df = np.bincount(bags.indices, minlength=vocabulary_size).astype(np.float64)
        self.idf = np.log1p((documents - df + 0.5) / (df + 0.5)).astype(np.float32)
        self.average_length = float(self.length[self.length > 0].mean()) if (self.length > 0).any() else 1.0

    def scores(self, rows: np.ndarray, token_ids: np.ndarray) -> np.ndarray:
        out = np.zeros(len(rows), dtype=np.float32)
        if len(token_ids) == 0 or len(rows) == 0:
            return out
        positions, segment = self.bags.gather(rows)
        tokens = self.bags.indices[positions]
        hit = self.bags.member(tokens, token_ids)
        if not hit.any():
            return out
        tf = self.bags.counts[positions][hit]
        norm = self.K1 * (1 - self.B + self.B * self.length[rows][segment[hit]] / self.average_length)
        per_term = self.idf[tokens[hit]] * tf * (self.K1 + 1) / (tf + norm)
        return np.bincount(segment[hit], weights=per_term, minlength=len(rows)).astype(np.float32)


def _field_text(document: dict[str, Any], path: str) -> str:
    """A search field's text: `brand.text` is a multi-field of `brand`."""
    value = document.get(path, document.get(path.split(".")[0], "")) if "." in path else document.get(path, "")
    return " ".join(map(str, value)) if isinstance(value, list) else str(value or "")


class ProductTable:
    """Everything per product that features need, computed once per index generation."""

    def __init__(self, products: list[dict[str, Any]], analyze: Callable[..., list[str]], definition: IndexDefinition):
        from indexer.documents import search_document

        self.analyze = analyze
        self.definition = definition
        self.ord_by_id = {p["id"]: i for i, p in enumerate(products)}
        self.vocabulary: dict[str, int] = {}
        documents = [search_document(p) for p in products]
        bags = {path: TokenBags.build((analyze(_field_text(d, path), path) for d in documents), self.vocabulary)
                for path in definition.search_fields}
        self.fields = {path: FieldBM25(b, len(self.vocabulary)) for path, b in bags.items()}
        self.title_tokens = self.fields["title"].bags
        self.category_tokens = self.fields["category.text"].bags
        self.any_field_tokens = TokenBags.union([f.bags for f in self.fields.values()], len(self.vocabulary))
        self.trigram_vocabulary: dict[str, int] = {}
        self.title_trigrams = TokenBags.build((char_trigrams(p["title"]) for p in products), self.trigram_vocabulary)
        self.unit_vocabulary: dict[str, int] = {}
        unit_sets = [unit_tokens(" ".join([p["title"], *map(str, p.get("attributes", {}).values())])) for p in products]
        self.units = TokenBags.build(unit_sets, self.unit_vocabulary)
        self.unit_kinds = TokenBags.build(({_unit_kind(t) for t in s} for s in unit_sets), self.unit_vocabulary)
        strings = np.dtypes.StringDType()
        self.title_lower = np.array([" ".join(p["title"].lower().split()) for p in products], dtype=strings)
        self.brand_lower = np.array([p.get("brand", "").lower() for p in products], dtype=strings)
        self.brand_codes, self.brand_vocabulary = _codes(p.get("brand", "") for p in products)
        self.category_codes, self.category_vocabulary = _codes(p.get("category", "") for p in products)
        self.log_price = np.array([math.log1p(p["price"]) if "price" in p else -1.0 for p in products], np.float32)
        self.rating = np.array([p.get("rating", 0.0) for p in products], np.float32)
        self.has_rating = np.array([1.0 if "rating" in p else 0.0 for p in products], np.float32)
        self.log_reviews = np.array([math.log1p(p.get("review_count", 0)) for p in products], np.float32)
        self.log_popularity = np.array([math.log1p(p.get("popularity", 0.0)) for p in products], np.float32)
        self.in_stock = np.array([{True: 1.0, False: 0.0}.get(p.get("in_stock"), -1.0) for p in products], np.float32)

    def text_scores(self, query: str, rows: np.ndarray) -> dict[str, np.ndarray]:
        """BM25 per search field and combined as the mapping's best-fields query does
        (the best boosted field plus tie_breaker times the others)."""
        scores = {}
        ids_by_analyzer: dict[str | None, np.ndarray] = {}  # fields share analyzers: analyse once each
        for path, field in self.fields.items():
            analyzer = self.definition.field(path).analyzer
            if analyzer not in ids_by_analyzer:
                ids_by_analyzer[analyzer] = self.token_ids(self.analyze(query, path), self.vocabulary)
            scores[path] = field.scores(rows, ids_by_analyzer[analyzer])
        scores["combined"] = combine_field_scores(self.definition, scores)
        return scores

    def affinity(self, values: dict[str, float], vocabulary: dict[str, int], codes: np.ndarray,
                 rows: np.ndarray) -> np.ndarray:
        lookup = np.zeros(len(vocabulary), dtype=np.float32)
        for value, weight in values.items():
            if value in vocabulary:
                lookup[vocabulary[value]] = weight
        return lookup[codes[rows]]

    def token_ids(self, tokens: Iterable[str], vocabulary: dict[str, int]) -> np.ndarray:
        return np.array(sorted({vocabulary[t] for t in tokens if t in vocabulary}), dtype=np.int64)


def combine_field_scores(definition: IndexDefinition, scores: dict[str, np.ndarray]) -> np.ndarray:
    """Combined BM25 as the mapping's best_fields multi_match computes it: the best boosted
    field plus tie_breaker times the other boosted fields."""
    boosted = np.stack([boost * scores[path] for path, boost in definition.search_fields.items()])
    best = boosted.max(axis=0)
    return best + definition.tie_breaker * (boosted.sum(axis=0) - best)


def _codes(values: Iterable[str]) -> tuple[np.ndarray, dict[str, int]]:
    vocabulary: dict[str, int] = {}
    codes = np.array([vocabulary.setdefault(v, len(vocabulary)) for v in values], dtype=np.int64)
    return codes, vocabulary


@dataclass
class Candidates:
    """A query's candidates with what recall knew about them (NaN: that side missed it)."""

    ids: list[str]
    recall_rank: np.ndarray
    bm25_rank: np.ndarray
    vector_rank: np.ndarray


@dataclass(frozen=True)
class ShopperProfile:
    """Filled by the personalization work; empty means neutral features."""

    category_affinity: dict[str, float]
    brand_affinity: dict[str, float]
    embedding: np.ndarray | None = None


def _log_rank(ranks: np.ndarray, missing: float) -> np.ndarray:
    return np.log1p(np.where(np.isnan(ranks), missing, ranks)).astype(np.float32)


def compute_features(query: str, query_vector: np.ndarray, candidates: Candidates, inputs: FeatureInputs,
                     definition: IndexDefinition, profile: ShopperProfile | None = None) -> np.ndarray:
    """The (n_candidates, len(FEATURE_NAMES)) float32 matrix for one query."""
    n = len(candidates.ids)
    table, text_scores, vectors, rows = inputs.table, inputs.text_scores, inputs.vectors, inputs.rows
    out = np.zeros((n, len(FEATURE_NAMES)), dtype=np.float32)
    if n == 0:
        return out
    depth_missing = float(max(n, 100) + 1)

    out[:, FEATURE_INDEX["bm25_combined"]] = text_scores.get("combined", 0.0)
    for field in SEARCH_FIELD_FEATURES:
        if field in text_scores:
            out[:, FEATURE_INDEX[f"bm25_{field}"]] = text_scores[field]
    out[:, FEATURE_INDEX["vector_cosine"]] = vectors @ query_vector
    out[:, FEATURE_INDEX["log_recall_rank"]] = _log_rank(candidates.recall_rank, depth_missing)
    out[:, FEATURE_INDEX["log_bm25_rank"]] = _log_rank(candidates.bm25_rank, depth_missing)
    out[:, FEATURE_INDEX["log_vector_rank"]] = _log_rank(candidates.vector_rank, depth_missing)

    query_tokens = list(dict.fromkeys(table.analyze(query)))
    query_ids = table.token_ids(query_tokens, table.vocabulary)
    title_lengths = table.title_tokens.lengths(rows).astype(np.float32)
    overlap = table.title_tokens.count_in(rows, query_ids)
    out[:, FEATURE_INDEX["title_query_overlap"]] = overlap / max(1, len(query_tokens))
    out[:, FEATURE_INDEX["title_coverage"]] = overlap / np.maximum(title_lengths, 1.0)
    covered = table.any_field_tokens.count_in(rows, query_ids)
    out[:, FEATURE_INDEX["query_coverage_all_fields"]] = covered / max(1, len(query_tokens))
    out[:, FEATURE_INDEX["query_tokens_missing"]] = len(query_tokens) - covered
    query_grams = char_trigrams(query)
    if query_grams:
        shared = table.title_trigrams.count_in(rows, table.token_ids(query_grams, table.trigram_vocabulary))
        out[:, FEATURE_INDEX["title_trigram_overlap"]] = shared / len(query_grams)
        out[:, FEATURE_INDEX["title_trigram_jaccard"]] = shared / (
            len(query_grams) + table.title_trigrams.lengths(rows) - shared)
    phrase = " ".join(query.lower().split())
    if phrase:
        out[:, FEATURE_INDEX["exact_phrase_in_title"]] = np.strings.find(table.title_lower[rows], phrase) >= 0

    query_units = unit_tokens(query)
    if query_units:
        out[:, FEATURE_INDEX["query_has_units"]] = 1.0
        unit_ids = table.token_ids(query_units, table.unit_vocabulary)
        matched = table.units.count_in(rows, unit_ids)
        out[:, FEATURE_INDEX["query_units_matched"]] = matched / len(query_units)
        kind_ids = table.token_ids({_unit_kind(t) for t in query_units}, table.unit_vocabulary)
        same_kind = table.unit_kinds.count_in(rows, kind_ids)
        # the product states a size of the kind asked for, but never the value asked for
        out[:, FEATURE_INDEX["units_conflict"]] = ((same_kind > 0) & (matched == 0)).astype(np.float32)

    brands = table.brand_lower[rows]
    out[:, FEATURE_INDEX["brand_in_query"]] = (np.strings.str_len(brands) > 0) & (np.strings.find(phrase, brands) >= 0)
    out[:, FEATURE_INDEX["category_query_overlap"]] = (
        table.category_tokens.count_in(rows, query_ids) / max(1, len(query_tokens)))

    out[:, FEATURE_INDEX["log_price"]] = table.log_price[rows]
    out[:, FEATURE_INDEX["rating"]] = table.rating[rows]
    out[:, FEATURE_INDEX["has_rating"]] = table.has_rating[rows]
    out[:, FEATURE_INDEX["log_review_count"]] = table.log_reviews[rows]
    out[:, FEATURE_INDEX["log_popularity"]] = table.log_popularity[rows]
    out[:, FEATURE_INDEX["in_stock"]] = table.in_stock[rows]
    out[:, FEATURE_INDEX["query_length"]] = len(query_tokens)
    out[:, FEATURE_INDEX["title_length"]] = title_lengths

    if profile is not None:
        out[:, FEATURE_INDEX["personal_category_affinity"]] = table.affinity(
            profile.category_affinity, table.category_vocabulary, table.category_codes, rows)
        out[:, FEATURE_INDEX["personal_brand_affinity"]] = table.affinity(
            profile.brand_affinity, table.brand_vocabulary, table.brand_codes, rows)
        if profile.embedding is not None:
            out[:, FEATURE_INDEX["personal_embedding_cosine"]] = vectors @ profile.embedding
    return out


@dataclass
class FeatureInputs:
    """What `compute_features` needs besides the query, for one candidate list."""

    table: ProductTable
    rows: np.ndarray  # the candidates' rows in `table`, in candidate order
    text_scores: dict[str, np.ndarray]  # BM25 per search field and "combined", in candidate order
    vectors: np.ndarray  # the candidates' unit vectors, in candidate order


class GenerationFeatures:
    """Embedded backend: one `ProductTable` over the whole generation, built once; BM25 per
    field from its token bags, vectors from the reader's matrix."""

    def __init__(self, reader: Any, table: ProductTable):
        self.reader = reader
        self.table = table
        self.definition = reader.definition
        # A plain ndarray view of the memory-mapped matrix (no copy): indexing a np.memmap
        # runs its Python-level __getitem__, a tenth of a millisecond per query.
        self.vectors = np.asarray(reader.vectors)

    def inputs(self, query: str, ids: list[str]) -> FeatureInputs:
        rows = np.array([self.table.ord_by_id[i] for i in ids], dtype=np.int64)
        return FeatureInputs(self.table, rows, self.table.text_scores(query, rows), self.vectors[rows])


class RequestFeatures:
    """Search-cluster backend: no process holds every product, so one request per query
    returns the candidates' per-field BM25 (the cluster's own scores, as named queries),
    their products and vectors; a `ProductTable` over just those candidates gives the rest
    (tokens, units, brand, product signals). The query is analysed locally with the
    analyzers derived from the same mapping."""

    def __init__(self, reader: Any, analyze: Callable[..., list[str]]):
        self.reader = reader
        self.analyze = analyze
        self.definition = reader.definition

    def inputs(self, query: str, ids: list[str]) -> FeatureInputs:
        found = self.reader.feature_documents(query, ids)  # id -> (product, vector, {field: score})
        dim = self.definition.dimension
        # a candidate deleted since recall keeps its place with empty values (it is then shown by nobody)
        entries = [found.get(i) or ({"id": i, "title": ""}, np.zeros(dim, np.float32), {}) for i in ids]
        table = ProductTable([e[0] for e in entries], self.analyze, self.definition)
        scores = {path: np.array([e[2].get(path, 0.0) for e in entries], dtype=np.float32)
                  for path in self.definition.search_fields}
        scores["combined"] = combine_field_scores(self.definition, scores)
        return FeatureInputs(table, np.arange(len(entries), dtype=np.int64), scores,
                             np.stack([e[1] for e in entries]).astype(np.float32))


def features_for(source: GenerationFeatures | RequestFeatures, query: str, query_vector: np.ndarray,
                 candidates: Candidates, profile: ShopperProfile | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Gather the inputs from the backend's feature source and compute the features: the
    one call training and serving both make. Returns (features, the candidates' vectors)."""
    inputs = source.inputs(query, candidates.ids)
    features = compute_features(query, query_vector, candidates, inputs, source.definition, profile)
    return features, inputs.vectors
