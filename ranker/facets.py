"""The facets stage, and facet buckets from a backend -> what a shopper sees."""

from __future__ import annotations

from typing import Any

from indexer.store.base import FacetBucket, Filters, MatchSummary, SearchReader
from ranker.stages import Recalled, SearchContext


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


class FacetsStage:
    """The total and facets of the search's matching set: (products matching the searched
    text ∪ the vector side's recalled products) ∩ filters. It depends on the request,
    never on the page, and filtering by a facet's value leaves that value's count as the
    total."""

    name = "facets"

    def __init__(self, reader: SearchReader):
        self.reader = reader

    def __call__(self, search: SearchContext, recalled: Recalled) -> MatchSummary:
        if recalled.summary is not None:
            return recalled.summary
        text = search.text if search.request.mode != "vector" else ""
        return self.reader.match_summary(text, [h.id for h in recalled.vector], search.request.filters)
