"""The search-store contract both backends (embedded, OpenSearch) fulfil.

Deliberately small: a store answers BM25, k-NN, and count+facets over a matching set,
and hands back products by id. Fusion, pagination and ranking live in `ranker/`, above
the store, so they are written once for every backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


def normalize_category(path: str) -> str:
    """`"Furniture>Sofas "` -> `"Furniture > Sofas"`, the form the catalog stores."""
    return " > ".join(part.strip() for part in path.split(">") if part.strip())


def category_levels(path: str) -> list[str]:
    """Every prefix of a category path, so a prefix filter is one exact term."""
    parts = [p.strip() for p in path.split(">") if p.strip()]
    return [" > ".join(parts[: i + 1]) for i in range(len(parts))]


class BackendUnavailable(RuntimeError):
    """The search store cannot serve right now (a cluster down, refusing credentials…):
    one clear sentence for the operator, a 503 for the API."""


@dataclass(frozen=True)
class Filters:
    """What a shopper narrowed the search to. Values within one field are OR-ed
    (brand=A or brand=B); different fields are AND-ed."""

    category: str | None = None
    brands: tuple[str, ...] = ()
    price_min: float | None = None
    price_max: float | None = None
    in_stock: bool | None = None
    attributes: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def is_empty(self) -> bool:
        return (
            self.category is None
            and not self.brands
            and self.price_min is None
            and self.price_max is None
            and self.in_stock is None
            and not self.attributes
        )

    def matches(self, product: dict[str, Any]) -> bool:
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
        if self.in_stock is not None and product.get("in_stock") is not self.in_stock:
            return False
        attributes = product.get("attributes", {})
        return all(attributes.get(key) in values for key, values in self.attributes)


@dataclass(frozen=True)
class Hit:
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
    """How many products match (BM25 matches plus the k-NN candidates, all filtered) and
    the facet counts over exactly that set: the semantics of an OpenSearch hybrid query."""

    total: int
    facets: dict[str, list[FacetBucket]] = field(default_factory=dict)


class SearchReader(Protocol):
    """One consistent, read-only view of the index (one generation, one alias target)."""

    generation: str
    document_count: int
    encoder_variant: str

    def bm25(self, text: str, k: int, filters: Filters) -> list[Hit]: ...

    def knn(self, vector: np.ndarray, k: int, filters: Filters) -> list[Hit]: ...

    def match_summary(self, text: str, candidate_ids: list[str], filters: Filters) -> MatchSummary: ...

    def products(self, ids: list[str]) -> list[dict[str, Any]]: ...

    def term_counts(self) -> dict[str, int]: ...
