"""Where a query's feature inputs come from, chosen by the reader's declared capability:
a table over the whole generation held in process (`local_catalog`: built once per
generation, shared across model versions), or one request per query to the cluster,
which also returns its own per-field BM25 of the candidates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from indexer.mapping import IndexDefinition
from indexer.store.base import SearchReader
from ranker.features.compute import CandidateRanks, FeatureInputs, compute_features
from ranker.features.field_bm25 import combine_field_scores
from ranker.features.personal import PersonalTable, PersonalView
from ranker.features.product_table import ProductTable


class FeatureSource(Protocol):
    definition: IndexDefinition
    personal_table: PersonalTable | None  # over the whole catalog, when the source holds it

    def inputs(self, query: str, ids: Sequence[str]) -> FeatureInputs: ...


class CatalogFeatures:
    """One `ProductTable` over the whole generation; BM25 per field from its token bags,
    vectors from the catalog's matrix."""

    def __init__(self, reader: SearchReader, table: ProductTable):
        self.table = table
        self.definition = reader.definition
        self.vectors = reader.catalog().vectors
        self.personal_table: PersonalTable | None = table.personal

    def inputs(self, query: str, ids: Sequence[str]) -> FeatureInputs:
        rows = np.array([self.table.ord_by_id[i] for i in ids], dtype=np.int64)
        return FeatureInputs(self.table, rows, self.table.text_scores(query, rows), self.vectors[rows])


class RequestFeatures:
    """No process holds every product, so one request per query returns the candidates'
    per-field BM25 (the cluster's own scores), their products and vectors; a
    `ProductTable` over just those candidates gives the rest (tokens, units, brand,
    product signals). The query is analysed locally with the analyzers derived from the
    same mapping."""

    def __init__(self, reader: SearchReader):
        self.reader = reader
        self.definition = reader.definition
        self.personal_table: PersonalTable | None = None

    def inputs(self, query: str, ids: Sequence[str]) -> FeatureInputs:
        found = self.reader.feature_documents(query, ids)
        empty = np.zeros(self.definition.dimension, np.float32)
        # a candidate deleted since recall keeps its place with empty values (it is then shown by nobody)
        entries = [(found[i].product, found[i].vector, found[i].field_scores) if i in found
                   else ({"id": i, "title": ""}, empty, {}) for i in ids]
        table = ProductTable([e[0] for e in entries], self.reader.analyze, self.definition)
        scores = {path: np.array([e[2].get(path, 0.0) for e in entries], dtype=np.float32)
                  for path in self.definition.search_fields}
        scores["combined"] = combine_field_scores(self.definition, scores)
        return FeatureInputs(table, np.arange(len(entries), dtype=np.int64), scores,
                             np.stack([e[1] for e in entries]).astype(np.float32))


def product_table(reader: SearchReader) -> ProductTable | None:
    """The per-generation table, for a reader that holds its catalog (None otherwise)."""
    if not reader.capabilities.local_catalog:
        return None
    return ProductTable(reader.catalog().products, reader.analyze, reader.definition)


def feature_source(reader: SearchReader, table: ProductTable | None = None) -> FeatureSource:
    """`table`: a reader's `product_table`, built once and shared by every model version."""
    if reader.capabilities.local_catalog:
        return CatalogFeatures(reader, table or ProductTable(reader.catalog().products, reader.analyze,
                                                             reader.definition))
    return RequestFeatures(reader)


def features_for(source: FeatureSource, query: str, query_vector: np.ndarray, candidates: CandidateRanks,
                 view: PersonalView | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Gather the inputs from the backend's feature source and compute the features: the
    one call training and serving both make. Returns (features, the candidates' vectors)."""
    inputs = source.inputs(query, candidates.ids)
    features = compute_features(query, query_vector, candidates, inputs, source.definition, view)
    return features, inputs.vectors
