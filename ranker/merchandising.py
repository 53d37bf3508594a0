"""The merchandising-rules stage: last of the ranking stages, so no later stage can move
a pin (docs/architecture.md, docs/merchandising.md). The rules a search meets are matched
once, before recall (`SearchContext.rules`); this stage applies the ranking kinds to the
whole candidate list (ranker/rules/engine.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from indexer.store.base import Product, SearchReader
from ranker.candidates import Candidate
from ranker.rules import engine
from ranker.stages import SearchContext


class MerchandiseStage:
    name = "merchandise"

    def __init__(self, reader: SearchReader):
        self.reader = reader

    def products(self, ids: Sequence[str]) -> dict[str, Product]:
        return {p["id"]: p for p in self.reader.products(list(ids))}

    def __call__(self, search: SearchContext, candidates: list[Candidate]) -> list[Candidate]:
        if not search.rules:
            return candidates
        request = search.request
        # The shopper's own filters: a pin outside a filter rule's selection still shows (pin > filter).
        own = replace(request.filters, excluded=(), required=())
        return engine.apply(search.rules, candidates, own, request.k, self.products)
