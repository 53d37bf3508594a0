"""What to offer when a search matches nothing: searches that would find products.

An empty answer is honest only if it helps the shopper on: a corrected spelling, the
query without its rarest word (the one the catalog has least, often the word that
matched nothing), or the same query without the filters that emptied it. Each is offered
only when it finds products, with how many, so the page can link to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any

from indexer.store.base import Filters, SearchReader, TextQuery

MAX_SUGGESTIONS = 3


def no_results_suggestions(reader: SearchReader, text: str, filters: Filters, minimum_should_match: str | None,
                           counts: Mapping[str, int], did_you_mean: str | None) -> list[dict[str, Any]]:
    """[{query, reason, filters, total}]: `reason` is spelling, fewer_words or no_filters;
    `filters` says whether the shopper's filters are kept."""

    def total(query: str, with_filters: Filters) -> int:
        return reader.match_summary(TextQuery(query, (), minimum_should_match), [], with_filters).total

    shopper = replace(filters, excluded=(), required=())  # what the shopper chose, not the rules' own
    out: list[dict[str, Any]] = []
    tried: set[tuple[str, bool]] = set()

    def offer(query: str, reason: str, keep_filters: bool) -> None:
        if not query.strip() or (query, keep_filters) in tried:
            return
        tried.add((query, keep_filters))
        found = total(query, filters if keep_filters else replace(filters, **_cleared(shopper)))
        if found:
            out.append({"query": query, "reason": reason, "filters": keep_filters, "total": found})

    if did_you_mean:
        offer(did_you_mean, "spelling", True)
    words = text.split()
    if len(words) > 1:
        rarest = min(range(len(words)), key=lambda n: (counts.get(words[n].lower(), 0), -n))
        offer(" ".join(words[:rarest] + words[rarest + 1 :]), "fewer_words", True)
    if shopper != Filters():
        offer(text, "no_filters", False)
    return out[:MAX_SUGGESTIONS]


def _cleared(shopper: Filters) -> dict[str, Any]:
    """The shopper's own filter fields, emptied (the rules' hidden and required sets stay)."""
    empty = Filters()
    return {f.name: getattr(empty, f.name) for f in fields(shopper) if f.name not in ("excluded", "required")}
