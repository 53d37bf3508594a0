"""Product -> the document a search backend indexes; shared by every backend.

Derived fields are computed here once: `category_levels` (every prefix of the category
path, so a category filter is one exact term) and `attributes_text` (attribute values
as searchable words, so "blue sofa" finds a sofa whose color is blue).
"""

from __future__ import annotations

from typing import Any

from indexer.store.base import category_levels

DERIVED_FIELDS = ("category_levels", "attributes_text")


def search_document(product: dict[str, Any]) -> dict[str, Any]:
    doc = {k: v for k, v in product.items() if k not in DERIVED_FIELDS}
    if product.get("category"):
        doc["category_levels"] = category_levels(product["category"])
    if product.get("attributes"):
        doc["attributes_text"] = " ".join(str(v) for v in product["attributes"].values())
    return doc
