"""Everything per product that ranking features need, computed once per index generation
(or, on a cluster backend, once per query for its candidates)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from indexer.documents import search_document, value_field_counts
from indexer.mapping import IndexDefinition
from ranker.features.field_bm25 import FieldBM25, combine_field_scores, field_text
from ranker.features.personal import PersonalTable
from ranker.features.token_bags import TokenBags, char_trigrams
from ranker.features.units import unit_kind, unit_tokens
from ranker.understanding import QueryUnderstanding, counts_from_fields, document_values


class ProductTable:
    """Everything per product that features need, computed once per index generation."""

    def __init__(self, products: list[dict[str, Any]], analyze: Callable[..., list[str]], definition: IndexDefinition):
        self.analyze = analyze
        self.definition = definition
        self.ord_by_id = {p["id"]: i for i, p in enumerate(products)}
        self.vocabulary: dict[str, int] = {}
        documents = [search_document(p) for p in products]
        bags = {path: TokenBags.build((analyze(field_text(d, path), path) for d in documents), self.vocabulary)
                for path in definition.search_fields}
        self.fields = {path: FieldBM25(b, len(self.vocabulary)) for path, b in bags.items()}
        self.title_tokens = self.fields["title"].bags
        self.category_tokens = self.fields["category.text"].bags
        self.any_field_tokens = TokenBags.union([f.bags for f in self.fields.values()], len(self.vocabulary))
        self.trigram_vocabulary: dict[str, int] = {}
        self.title_trigrams = TokenBags.build((char_trigrams(p["title"]) for p in products), self.trigram_vocabulary)
        self.unit_vocabulary: dict[str, int] = {}
        unit_sets = [unit_tokens(" ".join([p["title"], *map(str, p.get("attributes", {}).values())])) for p in products]
        self.units = TokenBags.build(unit_sets, self.unit_vocabulary)
        self.unit_kinds = TokenBags.build(({unit_kind(t) for t in s} for s in unit_sets), self.unit_vocabulary)
        strings = np.dtypes.StringDType()
        self.title_lower = np.array([" ".join(p["title"].lower().split()) for p in products], dtype=strings)
        self.brand_lower = np.array([p.get("brand", "").lower() for p in products], dtype=strings)
        self.personal = PersonalTable(products)
        # the catalog values a query names (ranker/understanding.py), and each product's own
        self.understanding = QueryUnderstanding(counts_from_fields(value_field_counts(documents)), analyze)
        self.value_vocabulary: dict[str, int] = {}
        self.values = TokenBags.build(([v.key for v in document_values(d)] for d in documents), self.value_vocabulary)
        self.log_price = np.array([math.log1p(p["price"]) if "price" in p else -1.0 for p in products], np.float32)
        self.rating = np.array([p.get("rating", 0.0) for p in products], np.float32)
        self.has_rating = np.array([1.0 if "rating" in p else 0.0 for p in products], np.float32)
        self.log_reviews = np.array([math.log1p(p.get("review_count", 0)) for p in products], np.float32)
        self.log_popularity = np.array([math.log1p(p.get("popularity", 0.0)) for p in products], np.float32)
        self.in_stock = np.array([{True: 1.0, False: 0.0}.get(p.get("in_stock"), -1.0) for p in products], np.float32)

    def text_scores(self, query: str, rows: np.ndarray) -> dict[str, np.ndarray]:
        """BM25 per search field and combined as the mapping's best-fields query does
        (the best boosted field plus tie_breaker times the others)."""
        scores = {}
        ids_by_analyzer: dict[str | None, np.ndarray] = {}  # fields share analyzers: analyse once each
        for path, field in self.fields.items():
            analyzer = self.definition.field(path).analyzer
            if analyzer not in ids_by_analyzer:
                ids_by_analyzer[analyzer] = self.token_ids(self.analyze(query, path), self.vocabulary)
            scores[path] = field.scores(rows, ids_by_analyzer[analyzer])
        scores["combined"] = combine_field_scores(self.definition, scores)
        return scores

    def token_ids(self, tokens: Iterable[str], vocabulary: dict[str, int]) -> np.ndarray:
        return np.array(sorted({vocabulary[t] for t in tokens if t in vocabulary}), dtype=np.int64)

