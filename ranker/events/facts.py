"""What the serving index knows of engaged products, for profile updates."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from indexer.store.base import SearchReader
from ranker.events.profile import ProductFacts
from ranker.events.store import FactsOf
from ranker.features.personal import relative_prices


def facts_from(reader: SearchReader) -> FactsOf:
    """A reader holding its catalog gives vectors and relative prices; a cluster gives the
    products with their vectors in one request per batch (the ranking features' request),
    but no relative prices (they need every price of a category), so profiles there keep
    no relative price band."""
    if reader.capabilities.local_catalog:
        catalog = reader.catalog()
        ordinal = {p["id"]: i for i, p in enumerate(catalog.products)}
        relative = relative_prices(catalog.products)

        def local(ids: Sequence[str]) -> dict[str, ProductFacts]:
            return {i: ProductFacts.of(catalog.products[o], catalog.vectors[o],
                                       None if np.isnan(relative[o]) else float(relative[o]))
                    for i in ids if (o := ordinal.get(i)) is not None}

        return local

    def remote(ids: Sequence[str]) -> dict[str, ProductFacts]:
        found = reader.feature_documents("", ids) if ids else {}
        return {pid: ProductFacts.of(doc.product, doc.vector) for pid, doc in found.items()}

    return remote
