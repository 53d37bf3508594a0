"""Filters as numpy boolean masks over product ordinals, for filtered k-NN.

tantivy applies filters to BM25 itself, but faiss needs the allowed set up front (a
pre-filter, as OpenSearch's k-NN `filter` does). Exact-value fields keep a small
inverted list per value; numeric fields are plain arrays. Built once per generation;
a mask costs well under a millisecond for 100k products.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from indexer.store.base import Filters, category_levels, number_column

_KEPT = 4096  # hide and filter rules' masks kept per generation


class FilterColumns:
    def __init__(self, products: list[dict[str, Any]]):
        self.size = len(products)
        self._kept: dict[Filters, np.ndarray | None] = {}
        self._ordinal = {p["id"]: n for n, p in enumerate(products)}
        self.price = number_column(products, "price")
        # in_stock is three-valued: unknown stock matches neither in_stock=true nor false.
        self.in_stock = np.array([{True: 1, False: 0}.get(p.get("in_stock"), -1) for p in products], dtype=np.int8)
        postings: dict[tuple[str, str], list[int]] = defaultdict(list)
        for ordinal, product in enumerate(products):
            if product.get("brand"):
                postings[("brand", product["brand"])].append(ordinal)
            for level in category_levels(product.get("category", "")):
                postings[("category", level)].append(ordinal)
            for key, value in product.get("attributes", {}).items():
                postings[(f"attr.{key}", value)].append(ordinal)
        self._postings = {key: np.array(ords, dtype=np.int64) for key, ords in postings.items()}
        self._products = products
        self._numbers: dict[str, np.ndarray] = {}  # rule conditions' other fields, built on first use
        self._keywords: dict[str, np.ndarray] = {}

    def _number(self, name: str) -> np.ndarray:
        if name not in self._numbers:
            self._numbers[name] = number_column(self._products, name)
        return self._numbers[name]

    def _keyword(self, name: str) -> np.ndarray:
        """A keyword field as strings ("" for none)."""
        if name not in self._keywords:
            self._keywords[name] = np.array([str(p.get(name) or "") for p in self._products], dtype=object)
        return self._keywords[name]

    def _any_of(self, field: str, values: tuple[str, ...]) -> np.ndarray:
        mask = np.zeros(self.size, dtype=bool)
        for value in values:
            ords = self._postings.get((field, value))
            if ords is not None:
                mask[ords] = True
        return mask

    def mask(self, filters: Filters) -> np.ndarray | None:
        """The allowed ordinals, or None when nothing is filtered (search everything)."""
        if filters.is_empty():
            return None
        mask = np.ones(self.size, dtype=bool)
        if filters.category is not None:
            mask &= self._any_of("category", (filters.category,))
        if filters.brands:
            mask &= self._any_of("brand", filters.brands)
        with np.errstate(invalid="ignore"):  # NaN (no price) compares False: excluded
            if filters.price_min is not None:
                mask &= self.price >= filters.price_min
            if filters.price_max is not None:
                mask &= self.price <= filters.price_max
            if filters.price_below is not None:
                mask &= self.price < filters.price_below
        if filters.in_stock is not None:
            mask &= self.in_stock == (1 if filters.in_stock else 0)
        for key, values in filters.attributes:
            mask &= self._any_of(f"attr.{key}", values)
        with np.errstate(invalid="ignore"):
            for name, low, high in filters.ranges:
                column = self._number(name)
                mask &= ~np.isnan(column)
                if low is not None:
                    mask &= column >= low
                if high is not None:
                    mask &= column <= high
        for name, values in filters.terms:
            mask &= np.isin(self._keyword(name), list(values))
        if filters.ids:
            allowed = np.zeros(self.size, dtype=bool)
            allowed[[self._ordinal[i] for i in filters.ids if i in self._ordinal]] = True
            mask &= allowed
        for hidden in filters.excluded:
            selected = self._rule_mask(hidden)
            if selected is not None:
                mask &= ~selected
        for forced in filters.required:
            selected = self._rule_mask(forced)
            if selected is not None:
                mask &= selected
        return mask

    def _rule_mask(self, condition: Filters) -> np.ndarray | None:
        """What one hide or filter rule's condition selects (the same rules come back
        search after search: kept, up to _KEPT of them)."""
        if condition not in self._kept:
            if len(self._kept) >= _KEPT:
                self._kept.clear()
            self._kept[condition] = self.mask(condition)
        return self._kept[condition]
