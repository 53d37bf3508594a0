"""What the serving index knows of engaged products, for profile updates."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from indexer.store.base import SearchReader
from ranker.events.profile import ProductFacts
from ranker.events.store import FactsOf
from ranker.features.personal import relative_prices


def facts_from(reader: SearchReader) -> FactsOf:
    """A reader holding its catalog gives vectors and relative prices too; a cluster's
    products come without them (they would cost a request per batch), so profiles there
    keep neither."""
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
        return {p["id"]: ProductFacts.of(p, None) for p in reader.products(ids)} if ids else {}

    return remote
