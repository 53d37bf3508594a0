"""What the serving index knows of engaged products, for profile updates."""

from __future__ import annotations

from collections.abc import Sequence

from indexer.store.base import SearchReader
from ranker.events.profile import ProductFacts
from ranker.events.store import FactsOf


def facts_from(reader: SearchReader) -> FactsOf:
    """A reader holding its catalog gives vectors too; a cluster's products come without
    them (their vectors would cost a request per batch), so profiles there keep no embedding."""
    if reader.capabilities.local_catalog:
        catalog = reader.catalog()
        ordinal = {p["id"]: i for i, p in enumerate(catalog.products)}

        def local(ids: Sequence[str]) -> dict[str, ProductFacts]:
            return {i: ProductFacts.of(catalog.products[ordinal[i]], catalog.vectors[ordinal[i]])
                    for i in ids if i in ordinal}

        return local

    def remote(ids: Sequence[str]) -> dict[str, ProductFacts]:
        return {p["id"]: ProductFacts.of(p, None) for p in reader.products(ids)} if ids else {}

    return remote
