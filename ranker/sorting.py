"""The sort stage: the shopper's chosen order (price, rating) over the ranked candidates.

It runs after the learned and personal ranking and before the merchandising rules, so
relevance breaks ties and a pin still holds its position under any sort. A sorted search
recalls BM25's matches as deep as results are served (`SORT_DEPTH`) beside the usual
vector window, so the sorted list is the matching set the total counts (up to that depth),
not only the relevance head; a product without the sorted value goes last.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from indexer.store.base import Product, SearchReader
from ranker.candidates import Candidate
from ranker.recall import MAX_RESULTS
from ranker.stages import SearchContext

SORTS = ("relevance", "price_asc", "price_desc", "rating")
SORT_DEPTH = MAX_RESULTS


def _number(product: Product, name: str) -> float | None:
    value = product.get(name)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) \
        else None


def _key(sort: str) -> Callable[[Product], tuple[Any, ...]]:
    """Sort key of a product: (missing?, value…); Python's sort is stable, so equal keys
    keep the relevance order."""
    if sort == "price_asc":
        return lambda p: (_number(p, "price") is None, _number(p, "price") or 0.0)
    if sort == "price_desc":
        return lambda p: (_number(p, "price") is None, -(_number(p, "price") or 0.0))
    if sort == "rating":
        return lambda p: (_number(p, "rating") is None, -(_number(p, "rating") or 0.0),
                          -(_number(p, "review_count") or 0.0))
    raise ValueError(f"unknown sort {sort!r}; known: {', '.join(SORTS)}")


class SortStage:
    name = "sort"

    def __init__(self, reader: SearchReader):
        self.reader = reader

    def __call__(self, search: SearchContext, candidates: list[Candidate]) -> list[Candidate]:
        sort = search.request.sort
        if sort == "relevance" or not candidates:
            return candidates
        products = {p["id"]: p for p in self.reader.products([c.id for c in candidates])}
        key = _key(sort)
        missing: Product = {}
        return sorted(candidates, key=lambda c: key(products.get(c.id, missing)))
