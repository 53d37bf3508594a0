"""Which fold a query is in: a stable hash, so the same query always lands in the same
fold, in every run and every command."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence


def fold_of(query: str, folds: int, salt: str = "") -> int:
    """`salt` gives a split independent of the unsalted one: folds within a fold (the same
    hash modulo 2 inside a fold of the hash modulo 2 would put every query on one side)."""
    return int(hashlib.sha1((salt + query).encode()).hexdigest(), 16) % folds


def split(queries: Sequence[str], fold: int, folds: int) -> tuple[list[str], list[str]]:
    """(the other folds' queries, this fold's)."""
    return ([q for q in queries if fold_of(q, folds) != fold], [q for q in queries if fold_of(q, folds) == fold])


def fold_splits(queries: Sequence[str], folds: int) -> Iterator[tuple[int, list[str], list[str]]]:
    """(fold, training queries, held-out queries) for each fold: the one definition of a
    cross-validation by query (`evaluate`, bench/ranking_ablation.py)."""
    for fold in range(folds):
        yield fold, *split(queries, fold, folds)


def validation_split(queries: Sequence[str]) -> tuple[list[str], list[str]]:
    """(training, validation) within one set of training queries: an independent hash, so
    it works inside any fold of any fold count. A quarter validates."""
    return ([q for q in queries if fold_of(q, 4, "valid:") != 0], [q for q in queries if fold_of(q, 4, "valid:") == 0])
