"""Product -> the document a search backend indexes; shared by every backend.

Derived fields are computed here once: `category_levels` (every prefix of the category
path, so a category filter is one exact term) and `attributes_text` (attribute values
as searchable words, so "blue sofa" finds a sofa whose color is blue).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from indexer.store.base import (
    MAX_VALUES_PER_FIELD,
    PAIR_SEPARATOR,
    VALUE_FIELDS,
    attribute_pairs,
    category_levels,
)

__all__ = ["PAIR_SEPARATOR", "merge_counts", "search_document", "term_counts", "value_field_counts",
           "value_fields"]

DERIVED_FIELDS = ("category_levels", "attributes_text", "attribute_pairs")


def search_document(product: dict[str, Any]) -> dict[str, Any]:
    doc = {k: v for k, v in product.items() if k not in DERIVED_FIELDS}
    if product.get("category"):
        doc["category_levels"] = category_levels(product["category"])
    if product.get("attributes"):
        doc["attributes_text"] = " ".join(str(v) for v in product["attributes"].values())
        doc["attribute_pairs"] = attribute_pairs(product)
    return doc


_WORD = re.compile(r"[a-z0-9]+")


def term_counts(products: Iterable[dict[str, Any]], search_fields: Iterable[str]) -> dict[str, int]:
    """How often each lower-cased word occurs in the products' searchable text: the
    dictionary query correction (ranker/spelling.py) checks words against and corrects
    to. `search_fields` are the mapping's; a sub-field ("brand.text") reads its parent."""
    roots = sorted({name.split(".")[0] for name in search_fields})
    counts: Counter[str] = Counter()
    for product in products:
        document = search_document(product)
        for root in roots:
            if value := document.get(root):
                counts.update(_WORD.findall(str(value).lower()))
    return dict(counts)


def merge_counts(counts: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    merged = Counter(counts)
    merged.update(more)
    return dict(merged)


def value_fields(document: dict[str, Any]) -> Iterable[tuple[str, str]]:
    """(field, value) of each `VALUE_FIELDS` value of an indexed document: what a query can name."""
    for name in VALUE_FIELDS:
        value = document.get(name)
        for one in value if isinstance(value, list) else [value] if value else []:
            yield name, str(one)


def value_field_counts(documents: Iterable[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """`SearchReader.value_counts` over indexed documents held in process: per
    `VALUE_FIELDS` field, the most frequent `MAX_VALUES_PER_FIELD` values and how many
    documents have each (the cluster's terms aggregation returns the same)."""
    counts: dict[str, Counter[str]] = {name: Counter() for name in VALUE_FIELDS}
    for document in documents:
        for name, value in value_fields(document):
            counts[name][value] += 1
    return {name: dict(c.most_common(MAX_VALUES_PER_FIELD)) for name, c in counts.items()}
