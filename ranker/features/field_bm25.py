"""BM25 of one text field for any set of products, from token bags."""

from __future__ import annotations

from typing import Any

import numpy as np

from indexer.mapping import IndexDefinition
from ranker.features.token_bags import TokenBags


class FieldBM25:
    """BM25 of one text field for any set of products, from token bags (k1 1.2, b 0.75,
    Lucene's idf, as tantivy). Scoring 100 candidates is a few array operations, against
    a restricted tantivy search per field; values differ from tantivy's slightly, since
    tantivy quantizes field lengths to one byte."""

    K1, B = 1.2, 0.75

    def __init__(self, bags: TokenBags, vocabulary_size: int):
        self.bags = bags
        self.length = np.bincount(np.repeat(np.arange(len(bags.indptr) - 1), np.diff(bags.indptr)),
                                  weights=bags.counts, minlength=len(bags.indptr) - 1).astype(np.float32)
        documents = len(bags.indptr) - 1
        df = np.bincount(bags.indices, minlength=vocabulary_size).astype(np.float64)
        self.idf = np.log1p((documents - df + 0.5) / (df + 0.5)).astype(np.float32)
        self.average_length = float(self.length[self.length > 0].mean()) if (self.length > 0).any() else 1.0

    def scores(self, rows: np.ndarray, token_ids: np.ndarray) -> np.ndarray:
        out = np.zeros(len(rows), dtype=np.float32)
        if len(token_ids) == 0 or len(rows) == 0:
            return out
        positions, segment = self.bags.gather(rows)
        tokens = self.bags.indices[positions]
        hit = self.bags.member(tokens, token_ids)
        if not hit.any():
            return out
        tf = self.bags.counts[positions][hit]
        norm = self.K1 * (1 - self.B + self.B * self.length[rows][segment[hit]] / self.average_length)
        per_term = self.idf[tokens[hit]] * tf * (self.K1 + 1) / (tf + norm)
        return np.bincount(segment[hit], weights=per_term, minlength=len(rows)).astype(np.float32)


def field_text(document: dict[str, Any], path: str) -> str:
    """A search field's text: `brand.text` is a multi-field of `brand`."""
    value = document.get(path, document.get(path.split(".")[0], "")) if "." in path else document.get(path, "")
    return " ".join(map(str, value)) if isinstance(value, list) else str(value or "")


def combine_field_scores(definition: IndexDefinition, scores: dict[str, np.ndarray]) -> np.ndarray:
    """Combined BM25 as the mapping's best_fields multi_match computes it: the best boosted
    field plus tie_breaker times the other boosted fields."""
    boosted = np.stack([boost * scores[path] for path, boost in definition.search_fields.items()])
    best = boosted.max(axis=0)
    return best + definition.tie_breaker * (boosted.sum(axis=0) - best)
