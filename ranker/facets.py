"""Facet buckets from a backend -> what a shopper sees: backend-neutral, pure."""

from __future__ import annotations

from typing import Any

from indexer.store.base import FacetBucket, Filters


def category_drilldown(buckets: list[FacetBucket], current: str | None) -> list[FacetBucket]:
    """The backend counts every level of every path; show the level below the current
    category filter (the departments when there is none), as a shop's sidebar does."""
    depth = 0 if current is None else current.count(" > ") + 1
    prefix = None if current is None else current + " > "
    return [
        b for b in buckets
        if b.value.count(" > ") == depth and (prefix is None or b.value.startswith(prefix))
    ]


def price_label(bucket: FacetBucket) -> str:
    if bucket.low is None:
        return f"under {bucket.high:g}"
    if bucket.high is None:
        return f"{bucket.low:g} and up"
    return f"{bucket.low:g} to {bucket.high:g}"


def shape_facets(facets: dict[str, list[FacetBucket]], filters: Filters) -> dict[str, list[dict[str, Any]]]:
    shaped: dict[str, list[dict[str, Any]]] = {}
    for name, buckets in facets.items():
        if name == "category":
            buckets = category_drilldown(buckets, filters.category)
        items = [b.to_json() for b in buckets]
        if name == "price":
            for item, bucket in zip(items, buckets, strict=True):
                item["value"] = price_label(bucket)
        shaped[name] = items
    return shaped
