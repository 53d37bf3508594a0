"""Catalog -> vectors -> a new, verified, serving generation.

`reindex`, `upsert` and `delete` all end the same way: a complete new generation is
written beside the serving one, checked, and switched to atomically. Unchanged products
are never re-encoded: their vectors come from the embedding cache.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from indexer.backends import backend_name, opensearch_admin, opensearch_reader
from indexer.embedding_cache import EmbeddingCache, text_key
from indexer.encoder import DIMENSION, TextEncoder, embedding_text
from indexer.generations import GenerationError, activate, current_generation_dir, new_build_dir, seal, writer_lock
from indexer.generations import rollback as generations_rollback
from indexer.mapping import IndexDefinition, load_definition
from indexer.model_export import export_models
from indexer.settings import DEFAULT_ENCODER, models_dir
from indexer.store.base import Filters
from indexer.store.embedded import EmbeddedReader, read_products, write_generation

log = logging.getLogger(__name__)
ENCODE_CHUNK = 2_048


@dataclass
class PublishSummary:
    generation: str
    documents: int
    encoded: int
    cached: int
    seconds: float


def encode_products(products: list[dict[str, Any]], data_dir: Path, variant: str,
                    progress: bool = True, threads: int = 0) -> tuple[np.ndarray, str, int, int]:
    """Vectors for every product, encoding only texts the cache has not seen.

    Returns (vectors, model id, how many were encoded, how many came from the cache)."""
    export_models(models_dir(data_dir))
    encoder = TextEncoder(models_dir(data_dir), variant, threads=threads)
    cache = EmbeddingCache(data_dir / "embeddings.sqlite")
    try:
        texts = [embedding_text(p) for p in products]
        keys = [text_key(encoder.model_id, t) for t in texts]
        found = cache.get_many(list(dict.fromkeys(keys)))
        missing = [i for i, k in enumerate(keys) if k not in found]
        unique_missing = list(dict.fromkeys(texts[i] for i in missing))
        # Cached chunk by chunk: a reindex killed mid-way resumes where it stopped.
        with tqdm(total=len(unique_missing), desc="encoding", unit="product", leave=False,
                  disable=None if progress else True) as bar:
            for start in range(0, len(unique_missing), ENCODE_CHUNK):
                chunk = unique_missing[start : start + ENCODE_CHUNK]
                new = {text_key(encoder.model_id, t): v for t, v in zip(chunk, encoder.encode(chunk), strict=True)}
                cache.put_many(new.items())
                found.update(new)
                bar.update(len(chunk))
        vectors = np.stack([found[k] for k in keys]) if keys else np.zeros((0, DIMENSION), np.float32)
        return vectors, encoder.model_id, len(unique_missing), len(products) - len(missing)
    finally:
        cache.close()


def verify_generation(directory: Path, definition: IndexDefinition, products: list[dict[str, Any]]) -> None:
    """Open the new generation the way a server will and make sure it answers.

    The checks hold for any valid catalog: duplicate titles, or titles with no searchable
    word, must not make a good index fail."""
    reader = EmbeddedReader(directory, definition)
    if reader.document_count != len(products):
        raise GenerationError(f"new generation holds {reader.document_count} documents, expected {len(products)}")
    probe = next((p for p in products[:1000] if reader.bm25(p["title"], 1, Filters())), None)
    if probe is not None:
        titles = {p["title"] for p in reader.products([h.id for h in reader.bm25(probe["title"], 50, Filters())])}
        if probe["title"] not in titles:
            raise GenerationError(f"smoke query {probe['title']!r} did not find its own product")
    hits = reader.knn(np.array(reader.vectors[0]), 1, Filters())
    if not hits or hits[0].score < 0.99:
        raise GenerationError("vector smoke query did not find a stored vector (cosine ≈ 1)")


def publish(data_dir: Path, variant: str, source: str, *, products: list[dict[str, Any]] | None = None,
            change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
            progress: bool = True) -> PublishSummary:
    """Encode, build, verify and switch to a new generation; the old one stays for rollback.

    Give the new generation's `products` (reindex), or a `change` that maps the serving
    generation's products to the new ones (upsert, delete); `change` runs under the
    writer lock, so an upsert can never be lost to a concurrent reindex."""
    if (products is None) == (change is None):
        raise ValueError("publish needs exactly one of products= and change=")
    started = time.perf_counter()
    definition = load_definition()
    with writer_lock(data_dir):
        if change is not None:
            products = change(current_products(data_dir))
        assert products is not None
        if not products:
            raise GenerationError("refusing to publish an empty index: no valid products would remain")
        vectors, model_id, encoded, cached = encode_products(products, data_dir, variant, progress)
        name, build = new_build_dir(data_dir)
        manifest = {"name": name, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "source": source, "encoder": {"variant": variant, "model_id": model_id}}
        write_generation(build, definition, products, vectors, manifest)
        final = seal(data_dir, name, build)
        try:
            verify_generation(final, definition, products)
        except Exception:
            shutil.rmtree(final, ignore_errors=True)
            raise
        activate(data_dir, name)
    seconds = time.perf_counter() - started
    log.info("event=published generation=%s documents=%d encoded=%d cached=%d seconds=%.1f",
             name, len(products), encoded, cached, seconds)
    return PublishSummary(name, len(products), encoded, cached, seconds)


def reindex(data_dir: Path, products: list[dict[str, Any]], variant: str, source: str,
            progress: bool = True) -> PublishSummary:
    """A whole catalog becomes the new serving generation (or index, on OpenSearch)."""
    if backend_name() == "embedded":
        return publish(data_dir, variant, source, products=products, progress=progress)
    started = time.perf_counter()
    admin = opensearch_admin()
    admin.check()
    with writer_lock(data_dir):
        vectors, model_id, encoded, cached = encode_products(products, data_dir, variant, progress)
        admin.ensure_pipelines()
        manifest = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "source": source,
                    "encoder": {"variant": variant, "model_id": model_id}}
        name = admin.publish(products, vectors, manifest)
    return PublishSummary(name, len(products), encoded, cached, time.perf_counter() - started)


def upsert(data_dir: Path, changes: list[dict[str, Any]], variant: str, source: str,
           progress: bool = True) -> PublishSummary:
    if backend_name() == "embedded":
        return publish(data_dir, variant, source, change=lambda current: merge_upserts(current, changes),
                       progress=progress)
    started = time.perf_counter()
    admin = opensearch_admin()
    admin.check()
    serving_variant = opensearch_reader(admin.client).encoder_variant
    if variant != serving_variant:
        raise GenerationError(f"the index was built with the {serving_variant} encoder; upserting {variant} vectors "
                              "would mix two vector spaces: reindex with --encoder to change it")
    with writer_lock(data_dir):
        vectors, _model_id, encoded, cached = encode_products(changes, data_dir, variant, progress)
        admin.upsert(changes, vectors)
    return PublishSummary(admin.alias, len(changes), encoded, cached, time.perf_counter() - started)


def delete(data_dir: Path, ids: set[str], variant: str) -> tuple[PublishSummary, set[str]]:
    """Remove products; returns the summary and the ids that were not in the index."""
    unknown: set[str] = set()
    if backend_name() == "embedded":

        def change(current: list[dict[str, Any]]) -> list[dict[str, Any]]:
            kept, missing = remove_ids(current, ids)
            unknown.update(missing)
            return kept

        return publish(data_dir, variant, f"delete {len(ids)} ids", change=change, progress=False), unknown
    started = time.perf_counter()
    admin = opensearch_admin()
    with writer_lock(data_dir):
        unknown = admin.delete(sorted(ids))
    return PublishSummary(admin.alias, len(ids) - len(unknown), 0, 0, time.perf_counter() - started), unknown


def rollback(data_dir: Path) -> tuple[str, str | None]:
    """Serve the previous generation again; returns (now serving, rollback target)."""
    if backend_name() == "opensearch":
        return opensearch_admin().rollback()
    with writer_lock(data_dir):
        pointer = generations_rollback(data_dir)
    return str(pointer.current), pointer.previous


def choose_encoder(requested: str | None, data_dir: Path) -> str:
    """--encoder, else $SHOPRANK_ENCODER, else what the serving generation was built with
    (so an upsert never silently re-encodes a whole fp32 catalog as int8), else int8."""
    if requested:
        return requested
    if os.environ.get("SHOPRANK_ENCODER"):
        return os.environ["SHOPRANK_ENCODER"]
    try:
        if backend_name() == "opensearch":
            return str(opensearch_reader().encoder_variant)
        manifest = json.loads((current_generation_dir(data_dir) / "manifest.json").read_text())
        return str(manifest["encoder"]["variant"])
    except (GenerationError, OSError, KeyError, ValueError, RuntimeError):
        return DEFAULT_ENCODER


def current_products(data_dir: Path) -> list[dict[str, Any]]:
    try:
        return read_products(current_generation_dir(data_dir))
    except GenerationError:
        return []


def merge_upserts(current: list[dict[str, Any]], changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Replace products whose id is in `changes`, append new ones, keep order stable."""
    by_id = {p["id"]: p for p in changes}
    merged = [by_id.pop(p["id"], p) for p in current]
    merged.extend(p for p in changes if p["id"] in by_id)
    return merged


def remove_ids(current: list[dict[str, Any]], ids: set[str]) -> tuple[list[dict[str, Any]], set[str]]:
    kept = [p for p in current if p["id"] not in ids]
    return kept, ids - {p["id"] for p in current}
