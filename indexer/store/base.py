"""The search-store contract: everything callers use of a backend, typed.

Two implementations fulfil it, chosen once by `indexer.backends.open_backend`: the
embedded store (tantivy + faiss in a local directory per generation) and OpenSearch (a
concrete index per generation behind an alias). Nothing outside `indexer/store/` and
that factory knows which one runs.

- `SearchReader`: one consistent, read-only view of the serving index (one generation,
  one alias target): BM25, k-NN, the count and facets of a matching set, products by id,
  the analyzer, the index definition, the spelling vocabulary, and what ranking features
  need per candidate.
- `StoreWriter`: builds a new generation (or index) beside the serving one, bulk-writes
  it with a per-item error for every product that fails, verifies it, switches to it
  atomically, rolls back, upserts, deletes, and removes what an interrupted build left.

What only one backend can do is a declared `Capabilities` flag, not a method to probe
for: a caller checks the flag, and the method of a capability a backend lacks raises
`Unsupported`.

Fusion, ranking and pagination live in `ranker/`, above the store, so they are written
once for every backend.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import numpy as np

from indexer.mapping import IndexDefinition
from indexer.minimum_should_match import required_words as required_words  # beside TextQuery, for callers

Product = dict[str, Any]
# Between an attribute's name and value in the derived `attribute_pairs` field (one terms
# aggregation turns it into a facet per attribute); a control character, so no catalog
# name or value contains it.
PAIR_SEPARATOR = "\x1f"


def attribute_pairs(product: Product) -> list[str]:
    return [f"{k}{PAIR_SEPARATOR}{v}" for k, v in (product.get("attributes") or {}).items()]


def normalize_category(path: str) -> str:
    """`"Furniture>Sofas "` -> `"Furniture > Sofas"`, the form the catalog stores."""
    return " > ".join(part.strip() for part in path.split(">") if part.strip())


def category_levels(path: str) -> list[str]:
    """Every prefix of a category path, so a prefix filter is one exact term."""
    parts = [p.strip() for p in path.split(">") if p.strip()]
    return [" > ".join(parts[: i + 1]) for i in range(len(parts))]


def price_ranges(edges: Sequence[float]) -> list[dict[str, Any]]:
    """[25, 50] -> [{to: 25}, {from: 25, to: 50}, {from: 50}]: the price facet's buckets,
    each `from` inclusive and `to` exclusive, as a range aggregation counts them. Each is
    keyed explicitly ("*-25", "25-50", "50-*"), so the facet value a shopper filters by is
    the same on every engine (OpenSearch would write "25.0-50.0", tantivy "25-50")."""
    bounds: list[tuple[float | None, float | None]] = [(None, edges[0]), *itertools.pairwise(edges), (edges[-1], None)]
    return [{"key": f"{'*' if lo is None else f'{lo:g}'}-{'*' if hi is None else f'{hi:g}'}",
             **({"from": lo} if lo is not None else {}), **({"to": hi} if hi is not None else {})}
            for lo, hi in bounds]


class BackendUnavailable(RuntimeError):
    """The search store cannot serve right now (a cluster down, refusing credentials…):
    one clear sentence for the operator, a 503 for the API."""


class GenerationError(RuntimeError):
    """No generation to serve, or a write or switch that cannot be made (on OpenSearch a
    generation is a concrete index behind the alias)."""


class Unsupported(NotImplementedError):
    """A method of a capability this backend does not declare."""


def number(value: Any) -> float | None:
    """A product field's value as a number, or None (missing, text, or a boolean: Python
    counts True as 1). Filters, rule masks and the sort stage read numbers the same way."""
    return float(value) if type(value) in (int, float) else None


def number_column(products: Sequence[Product | None], name: str) -> np.ndarray:
    """One numeric field of each product as floats, NaN where there is none."""
    out = np.full(len(products), np.nan)
    for n, product in enumerate(products):
        value = number(product.get(name)) if product is not None else None
        if value is not None:
            out[n] = value
    return out


@dataclass(frozen=True)
class Filters:
    """What a shopper narrowed the search to. Values within one field are OR-ed
    (brand=A or brand=B); different fields are AND-ed. `price_below` is an exclusive
    upper bound: what a price facet bucket's `to` means, so a bucket's count is the
    total after filtering by it."""

    category: str | None = None
    brands: tuple[str, ...] = ()
    price_min: float | None = None
    price_max: float | None = None
    price_below: float | None = None
    in_stock: bool | None = None
    attributes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    ids: tuple[str, ...] = ()  # only these products (a hide rule's id list, inside `excluded`)
    # Merchandising conditions on other fields: inclusive ranges over numeric fields
    # (rating, review_count) and exact values of keyword fields (currency).
    ranges: tuple[tuple[str, float | None, float | None], ...] = ()
    terms: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Products matching any of these are left out (merchandising hide rules), inside recall,
    # so totals and facets count only what can be shown.
    excluded: tuple[Filters, ...] = ()
    # Products must match every one of these (merchandising filter rules), inside recall too.
    required: tuple[Filters, ...] = ()

    def is_empty(self) -> bool:
        return self == Filters()

    def matches(self, product: Product) -> bool:
        """The reference semantics, in plain Python: tests hold every backend to it."""
        if self.category is not None and self.category not in category_levels(product.get("category", "")):
            return False
        if self.brands and product.get("brand") not in self.brands:
            return False
        price = product.get("price")
        if self.price_min is not None and (price is None or price < self.price_min):
            return False
        if self.price_max is not None and (price is None or price > self.price_max):
            return False
        if self.price_below is not None and (price is None or price >= self.price_below):
            return False
        if self.in_stock is not None and product.get("in_stock") is not self.in_stock:
            return False
        if self.ids and product.get("id") not in self.ids:
            return False
        for name, low, high in self.ranges:
            value = number(product.get(name))
            if value is None or (low is not None and value < low) or (high is not None and value > high):
                return False
        for name, values in self.terms:
            have = attribute_pairs(product) if name == "attribute_pairs" else [product.get(name)]
            if not any(value in values for value in have):
                return False
        if any(hidden.matches(product) for hidden in self.excluded):
            return False
        if not all(forced.matches(product) for forced in self.required):
            return False
        attributes = product.get("attributes", {})
        return all(attributes.get(key) in values for key, values in self.attributes)


# The keyword fields whose values a query can name: brands, category levels and
# attribute name-value pairs (`attribute_pairs`).
VALUE_FIELDS = ("brand", "category_levels", "attribute_pairs")
MAX_VALUES_PER_FIELD = 10_000  # a cluster's terms aggregation returns the most frequent this many

MAX_MATCH_WORDS = 10  # words a matching rule counts; later words still score, but are optional


@dataclass(frozen=True)
class TextQuery:
    """What a BM25 search asks: `text` (and `extra`, the words synonym rules add) score the
    matches; a product matches when at least `required_words(minimum_should_match, n)`
    of the text's first `MAX_MATCH_WORDS` words occur in one of its search fields (a word
    may be in the title, the next in the attributes), or any extra word does. With
    `minimum_should_match=None` one word of either is enough: the loosest set, what a
    plain string asks."""

    text: str
    extra: tuple[str, ...] = ()
    minimum_should_match: str | None = None
    match_text: str | None = None  # the words the rule counts, when not all of `text` (a relaxed search)

    @property
    def scored(self) -> str:
        return " ".join((self.text, *self.extra)) if self.extra else self.text

    @property
    def counted(self) -> str:
        return self.text if self.match_text is None else self.match_text


def text_query_of(text: str | TextQuery) -> TextQuery:
    return text if isinstance(text, TextQuery) else TextQuery(text)


def match_words(text: str, has_tokens: Callable[[str], bool]) -> list[str]:
    """The words a matching rule counts: whitespace-separated, each with at least one token
    after analysis (a lone "*" or emoji is no word), the first `MAX_MATCH_WORDS`."""
    return [word for word in text.split() if has_tokens(word)][:MAX_MATCH_WORDS]


class Hit(NamedTuple):
    """One product a query found and its score (a tuple: a search makes hundreds)."""

    id: str
    score: float


@dataclass(frozen=True)
class FacetBucket:
    value: str
    count: int
    low: float | None = None
    high: float | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": self.value, "count": self.count}
        if self.low is not None or self.high is not None:
            out["from"], out["to"] = self.low, self.high
        return out


@dataclass
class MatchSummary:
    """How many products match and the facet counts over exactly that set."""

    total: int
    facets: dict[str, list[FacetBucket]] = field(default_factory=dict)


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do beyond the common contract.

    hybrid_search: fuses BM25 and k-NN server-side, with the total and facets in the same
        request (`SearchReader.hybrid_search`).
    local_catalog: holds every product and vector in this process (`SearchReader.catalog`),
        so ranking features come from a table built once per generation; otherwise they
        are fetched per query (`SearchReader.feature_documents`).
    """

    hybrid_search: bool = False
    local_catalog: bool = False


@dataclass(frozen=True)
class LocalCatalog:
    """Every product of the generation in ordinal order, and its unit vector (same row)."""

    products: list[Product]
    vectors: np.ndarray


@dataclass(frozen=True)
class FeatureDocument:
    """What ranking features need of one candidate a cluster holds: the product, its
    vector and the cluster's own BM25 of the query in each search field."""

    product: Product
    vector: np.ndarray
    field_scores: dict[str, float]


class SearchReader(Protocol):
    """One consistent, read-only view of the index (one generation, one alias target).

    k-NN is exact-or-approximate nearest neighbours by inner product of unit vectors.
    With `post_filter=False` the filters restrict the search (the k nearest of the
    products that match); with `post_filter=True` they apply to its result (those of the
    k nearest products of the whole catalog that match): a set that does not depend on
    which filters are asked, so facet counts equal the totals they lead to."""

    generation: str
    encoder_variant: str
    manifest: dict[str, Any]  # the generation's: source, encoder, when it was built
    definition: IndexDefinition
    capabilities: Capabilities

    @property
    def document_count(self) -> int: ...

    def bm25(self, text: str | TextQuery, k: int, filters: Filters) -> list[Hit]: ...

    def knn(self, vector: np.ndarray, k: int, filters: Filters, post_filter: bool = False) -> list[Hit]: ...

    def match_summary(self, text: str | TextQuery, candidate_ids: Sequence[str], filters: Filters) -> MatchSummary:
        """Count and facets of (products matching `text` ∪ `candidate_ids`) ∩ filters."""
        ...

    def products(self, ids: Sequence[str]) -> list[Product]:
        """The products of `ids` that exist, in the order asked."""
        ...

    def analyze(self, text: str, field: str = "title") -> list[str]: ...

    def term_counts(self) -> dict[str, int]:
        """The index's searchable words and their counts: query correction's dictionary."""
        ...

    def vocabulary_stamp(self) -> tuple[str, int]:
        """Changes when the dictionary does (a reindex, an upsert adding words)."""
        ...

    def value_counts(self) -> dict[str, dict[str, int]]:
        """For each of `VALUE_FIELDS`, its values and how many products have each: what
        query understanding reads a query's words against (ranker/understanding.py)."""
        ...

    def hybrid_search(self, text: str | TextQuery, vector: np.ndarray, k: int, filters: Filters,
                      method: str) -> tuple[list[Hit], MatchSummary]:
        """Capability `hybrid_search`: fused hits (`method`: weighted or rrf), total and facets."""
        ...

    def catalog(self) -> LocalCatalog:
        """Capability `local_catalog`."""
        ...

    def feature_documents(self, text: str, ids: Sequence[str]) -> dict[str, FeatureDocument]:
        """Without `local_catalog`: id -> what features need, for the candidates that exist."""
        ...


@dataclass(frozen=True)
class Published:
    """What a write left serving."""

    generation: str
    documents: int


class StoreWriter(Protocol):
    """Writes. Every method that changes what is served leaves either the old or the new
    state serving, never a half-written one; `lock()` keeps writers from interleaving."""

    def lock(self) -> AbstractContextManager[None]: ...

    def check(self) -> None:
        """Fail before any expensive work if the store cannot be written."""
        ...

    def serving_encoder(self) -> str | None:
        """The encoder variant of the serving index, None when there is none."""
        ...

    def publish(self, products: Sequence[Product], vectors: np.ndarray, manifest: dict[str, Any]) -> Published:
        """Build a new generation of exactly these products beside the serving one, write
        them (a product that fails is named), verify it, switch to it atomically and keep
        the previous one for rollback."""
        ...

    def upsert(self, products: Sequence[Product], vectors: np.ndarray, manifest: dict[str, Any]) -> Published:
        """Add or replace these products."""
        ...

    def delete(self, ids: Sequence[str], manifest: dict[str, Any]) -> tuple[Published, set[str]]:
        """Remove products; also returns the ids that were not in the index."""
        ...

    def rollback(self) -> tuple[str, str | None]:
        """Serve the previous generation again; returns (now serving, the rollback target)."""
        ...

    def cleanup(self) -> None:
        """Remove what an interrupted build left behind."""
        ...
