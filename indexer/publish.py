"""Catalog -> vectors -> a new, verified, serving generation, on whichever backend.

`reindex`, `upsert` and `delete` encode what needs encoding (only texts the embedding
cache has not seen) and hand products and vectors to the backend's writer, which
builds, verifies and switches atomically (indexer/store/base.py, StoreWriter).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from indexer import settings
from indexer.backends import Backend
from indexer.embedding_cache import EmbeddingCache, text_key
from indexer.encoder import DIMENSION, TextEncoder, embedding_text
from indexer.model_export import export_models
from indexer.store.base import GenerationError, Product, StoreWriter

log = logging.getLogger(__name__)
ENCODE_CHUNK = 2_048


@dataclass
class PublishSummary:
    generation: str
    documents: int
    encoded: int
    cached: int
    seconds: float


def encode_products(products: Sequence[Product], data_dir: Path, variant: str,
                    progress: bool = True, threads: int = 0) -> tuple[np.ndarray, str, int, int]:
    """Vectors for every product, encoding only texts the cache has not seen.

    Returns (vectors, model id, how many were encoded, how many came from the cache)."""
    models = settings.models_dir(data_dir)
    export_models(models)
    encoder = TextEncoder(models, variant, threads=threads)
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


def _manifest(backend: Backend, source: str, variant: str, model_id: str | None) -> dict[str, Any]:
    return {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "source": source,
            "encoder": {"variant": variant, "model_id": model_id}, "mapping": backend.definition.fingerprint}


def _logged(summary: PublishSummary) -> PublishSummary:
    log.info("event=published generation=%s documents=%d encoded=%d cached=%d seconds=%.1f", summary.generation,
             summary.documents, summary.encoded, summary.cached, summary.seconds)
    return summary


def reindex(backend: Backend, products: Sequence[Product], variant: str, source: str,
            progress: bool = True) -> PublishSummary:
    """A whole catalog becomes the new serving generation."""
    started = time.perf_counter()
    if not products:
        raise GenerationError("refusing to publish an empty index: no valid products would remain")
    writer = backend.writer()
    writer.check()  # before the expensive part
    with writer.lock():
        writer.cleanup()
        vectors, model_id, encoded, cached = encode_products(products, backend.data_dir, variant, progress)
        published = writer.publish(products, vectors, _manifest(backend, source, variant, model_id))
    return _logged(PublishSummary(published.generation, published.documents, encoded, cached,
                                  time.perf_counter() - started))


def _serving_variant(writer: StoreWriter, requested: str | None) -> str:
    """Upserts and deletes keep the serving index's encoder: vectors of two variants in one
    index would be two vector spaces."""
    serving = writer.serving_encoder()
    if serving is None:
        raise GenerationError("there is no index to change yet: run `python -m indexer reindex --catalog FILE`")
    if requested and requested != serving:
        raise GenerationError(f"the index was built with the {serving} encoder; adding {requested} vectors would mix "
                              "two vector spaces: reindex with --encoder to change it")
    return serving


def upsert(backend: Backend, changes: Sequence[Product], requested_variant: str | None, source: str,
           progress: bool = True) -> PublishSummary:
    started = time.perf_counter()
    writer = backend.writer()
    writer.check()
    with writer.lock():
        variant = _serving_variant(writer, requested_variant)
        vectors, model_id, encoded, cached = encode_products(changes, backend.data_dir, variant, progress)
        published = writer.upsert(changes, vectors, _manifest(backend, source, variant, model_id))
    return _logged(PublishSummary(published.generation, published.documents, encoded, cached,
                                  time.perf_counter() - started))


def delete(backend: Backend, ids: set[str]) -> tuple[PublishSummary, set[str]]:
    """Remove products; returns the summary and the ids that were not in the index."""
    started = time.perf_counter()
    writer = backend.writer()
    writer.check()
    with writer.lock():
        variant = _serving_variant(writer, None)
        published, unknown = writer.delete(sorted(ids), _manifest(backend, f"delete {len(ids)} ids", variant, None))
    return _logged(PublishSummary(published.generation, published.documents, 0, 0,
                                  time.perf_counter() - started)), unknown


def rollback(backend: Backend) -> tuple[str, str | None]:
    """Serve the previous generation again; returns (now serving, rollback target)."""
    writer = backend.writer()
    with writer.lock():
        return writer.rollback()


def ensure_indexed(backend: Backend, catalog: Path, encoder: str | None = None, progress: bool = True) -> bool:
    """Index `catalog` unless the serving index already holds it (same source file, same
    encoder variant when one is asked, built with today's mapping); True when it indexed."""
    try:
        manifest = backend.reader().manifest
        source = manifest.get("source")  # absolute since reindex records it so; older ones may be relative
        same_file = source is not None and Path(source).resolve() == catalog.resolve()
        same_mapping = manifest.get("mapping") == backend.definition.fingerprint
        if same_file and same_mapping and (encoder is None or manifest["encoder"]["variant"] == encoder):
            return False
    except GenerationError:
        pass
    from indexer.catalog import read_catalog

    report = read_catalog(catalog)
    log.warning("event=indexing catalog=%s products=%d", catalog, len(report.products))
    reindex(backend, report.products, choose_encoder(encoder, backend), str(catalog.resolve()), progress)
    return True


def choose_encoder(requested: str | None, backend: Backend) -> str:
    """For a reindex: --encoder, else $SHOPRANK_ENCODER, else what the serving index was
    built with (a reindex does not silently change precision), else int8."""
    if requested:
        return requested
    chosen = settings.encoder_for_new_index()
    if chosen:
        return chosen
    return backend.writer().serving_encoder() or settings.DEFAULT_ENCODER
