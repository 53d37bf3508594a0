"""The sort stage: the shopper's chosen order (price, rating) over the ranked candidates.

It runs after the learned and personal ranking and before the merchandising rules, so
relevance breaks ties and a pin still holds its position under any sort. A sorted search
recalls BM25's matches as deep as results are served (ranker/recall.py) beside the usual
vector window, so the sorted list is the matching set the total counts (up to that depth),
not only the relevance head; a product without the sorted value goes last.
"""

from __future__ import annotations

import numpy as np

from indexer.store.base import Product, SearchReader, number_column
from ranker.candidates import Candidate
from ranker.stages import SearchContext

SORTS = ("relevance", "price_asc", "price_desc", "rating")


def sorted_order(products: list[Product | None], sort: str) -> np.ndarray:
    """Positions of `products` in `sort` order; stable, so equal values keep the relevance
    order, and a product without the value goes last."""
    if sort in ("price_asc", "price_desc"):
        price = number_column(products, "price")
        key = np.where(np.isnan(price), np.inf, price if sort == "price_asc" else -price)
        return np.argsort(key, kind="stable")
    if sort == "rating":
        rating, reviews = number_column(products, "rating"), number_column(products, "review_count")
        first = np.where(np.isnan(rating), np.inf, -rating)
        then = np.where(np.isnan(reviews), 0.0, -reviews)
        return np.lexsort((then, first))  # the last key sorts first; lexsort is stable
    raise ValueError(f"unknown sort {sort!r}; known: {', '.join(SORTS)}")


class SortStage:
    name = "sort"

    def __init__(self, reader: SearchReader):
        self.reader = reader

    def __call__(self, search: SearchContext, candidates: list[Candidate]) -> list[Candidate]:
        sort = search.request.sort
        if sort == "relevance" or not candidates:
            return candidates
        found = {p["id"]: p for p in self.reader.products([c.id for c in candidates])}
        order = sorted_order([found.get(c.id) for c in candidates], sort)
        return [candidates[i] for i in order.tolist()]
