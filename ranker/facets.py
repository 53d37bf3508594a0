"""The facets stage, and facet buckets from a backend -> what a shopper sees."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from indexer.documents import PAIR_SEPARATOR
from indexer.mapping import FacetSpec
from indexer.store.base import FacetBucket, Filters, MatchSummary, SearchReader
from ranker.recall import bm25_text
from ranker.stages import Recalled, SearchContext

ATTRIBUTE_PREFIX = "attr."  # the filter parameter an attribute facet's values lead to


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


def attribute_facets(buckets: list[FacetBucket], spec: FacetSpec) -> dict[str, list[FacetBucket]]:
    """"color<sep>black" pair buckets -> one facet per attribute, named as its filter
    parameter (`attr.color`): the `spec.keys` attributes that most of the matching set has,
    each with its `spec.values` most common values. A catalog decides which attributes
    there are; a search shows the ones its products have."""
    by_key: dict[str, list[FacetBucket]] = {}
    for bucket in buckets:
        key, sep, value = bucket.value.partition(PAIR_SEPARATOR)
        if sep:
            by_key.setdefault(key, []).append(FacetBucket(value, bucket.count))
    covered = sorted(by_key, key=lambda k: (-sum(b.count for b in by_key[k]), k))[: spec.keys]
    return {f"{ATTRIBUTE_PREFIX}{key}": sorted(by_key[key], key=lambda b: (-b.count, b.value))[: spec.values]
            for key in covered}


def shape_facets(facets: dict[str, list[FacetBucket]], filters: Filters,
                 specs: Mapping[str, FacetSpec]) -> dict[str, list[dict[str, Any]]]:
    """Backend buckets -> the response's facets; `specs` (the index definition's) says
    which facets are grouped per attribute."""
    shaped: dict[str, list[dict[str, Any]]] = {}
    for name, buckets in facets.items():
        spec = specs.get(name)
        if spec is not None and spec.keys:
            for attribute, values in attribute_facets(buckets, spec).items():
                shaped[attribute] = [b.to_json() for b in values]
            continue
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
        text = bm25_text(search) if search.request.mode != "vector" else ""
        return self.reader.match_summary(text, [h.id for h in recalled.vector], search.request.filters)
