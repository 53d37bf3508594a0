"""The on-disk format of one embedded generation, written once and then only read.

Each generation directory holds:
    manifest.json    name, document count, encoder, vector index kind
    products.jsonl   the validated products, in ordinal order (ordinal = faiss row)
    vectors.npy      float32 (n, dim), unit length
    vectors.faiss    HNSW (large collections) or flat exact index (small ones)
    tantivy/         the BM25 index; every document carries its ordinal as a fast field

The tantivy schema and analyzers are derived from `mappings/products.json`; a mapping
feature that cannot be honoured here is refused with a MappingError.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import tantivy

from indexer.analysis import build_analyzers
from indexer.documents import search_document
from indexer.mapping import IndexDefinition, MappingError

# Below this many products an exact flat index is as fast as HNSW and never misses.
HNSW_MIN_DOCUMENTS = 10_000
ORD_FIELD = "ord"


def tantivy_field(path: str) -> str:
    return path.replace(".", "__")


def build_schema(definition: IndexDefinition) -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_unsigned_field(ORD_FIELD, indexed=True, fast=True)
    for spec in definition.fields.values():
        name = tantivy_field(spec.path)
        if spec.type == "knn_vector" or not spec.indexed:
            continue
        if spec.type == "text":
            builder.add_text_field(name, tokenizer_name=spec.analyzer or "default")
        elif spec.type == "keyword":
            builder.add_text_field(name, tokenizer_name="raw", fast=True)
        elif spec.type in ("double", "float", "half_float", "scaled_float"):
            builder.add_float_field(name, indexed=True, fast=True)
        elif spec.type in ("integer", "long", "short"):
            builder.add_integer_field(name, indexed=True, fast=True)
        elif spec.type == "boolean":
            builder.add_boolean_field(name, indexed=True, fast=True)
        elif spec.type == "object":
            builder.add_json_field(name, tokenizer_name="raw", fast=True)
        else:
            raise MappingError(f"field {spec.path!r}: type {spec.type!r} is not supported by the embedded backend")
    return builder.build()


def open_tantivy(path: Path, definition: IndexDefinition, schema: tantivy.Schema | None = None) -> tantivy.Index:
    """An existing index (or a new one with `schema`) with the mapping's analyzers registered."""
    index = tantivy.Index(schema, path=str(path)) if schema is not None else tantivy.Index.open(str(path))
    for name, analyzer in build_analyzers(definition).items():
        index.register_tokenizer(name, analyzer)
    return index


def _tantivy_document(definition: IndexDefinition, doc: dict[str, Any], ordinal: int) -> dict[str, Any]:
    out: dict[str, Any] = {ORD_FIELD: ordinal}
    for spec in definition.fields.values():
        if spec.type == "knn_vector" or not spec.indexed:
            continue
        parent, _, _sub = spec.path.partition(".")
        value = doc.get(spec.path) if spec.path in doc else (doc.get(parent) if _sub else None)
        if value is not None and value != "" and value != {}:
            out[tantivy_field(spec.path)] = value
    return out


def write_generation(directory: Path, definition: IndexDefinition, products: list[dict[str, Any]],
                     vectors: np.ndarray, manifest: dict[str, Any]) -> None:
    """Write a complete generation into `directory` (a scratch dir the caller seals)."""
    if len(products) != len(vectors):
        raise ValueError(f"{len(products)} products but {len(vectors)} vectors")
    (directory / "tantivy").mkdir()
    index = open_tantivy(directory / "tantivy", definition, build_schema(definition))
    writer = index.writer(heap_size=256_000_000)
    for ordinal, product in enumerate(products):
        writer.add_json(json.dumps(_tantivy_document(definition, search_document(product), ordinal)))
    writer.commit()
    writer.wait_merging_threads()

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    np.save(directory / "vectors.npy", vectors)
    if len(products) >= HNSW_MIN_DOCUMENTS:
        vector_index = faiss.IndexHNSWFlat(definition.dimension, definition.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        vector_index.hnsw.efConstruction = definition.hnsw_ef_construction
        kind = "hnsw"
    else:
        vector_index = faiss.IndexFlatIP(definition.dimension)
        kind = "flat"
    vector_index.add(vectors)
    faiss.write_index(vector_index, str(directory / "vectors.faiss"))

    with open(directory / "products.jsonl", "w", encoding="utf-8") as fh:
        for product in products:
            fh.write(json.dumps(product, ensure_ascii=False) + "\n")
    manifest = {**manifest, "documents": len(products), "vector_index": kind, "dimension": definition.dimension}
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2))


def read_manifest(directory: Path) -> dict[str, Any]:
    return json.loads((directory / "manifest.json").read_text())


def read_products(directory: Path) -> list[dict[str, Any]]:
    with open(directory / "products.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def read_vectors(directory: Path) -> np.ndarray:
    """Memory-mapped: the pages are shared by every worker process of a server."""
    return np.load(directory / "vectors.npy", mmap_mode="r")
