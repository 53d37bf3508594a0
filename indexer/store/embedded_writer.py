"""The embedded backend's writer: every change is a complete new generation.

A reindex, an upsert and a delete each write a whole generation beside the serving one
(`indexer.store.generations`), check it, then switch `DATA/CURRENT` atomically; the
previous generation stays for rollback. An upsert or delete starts from the serving
generation's own products and stored vectors, so it costs an index build, not encoding:
the simple, crash-safe choice for a catalog that fits one machine.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np

from indexer.mapping import IndexDefinition
from indexer.store import generations
from indexer.store.base import Filters, GenerationError, Product, Published
from indexer.store.embedded import EmbeddedReader
from indexer.store.embedded_index import read_manifest, read_products, read_vectors, write_generation
from indexer.writer_lock import writer_lock


def verify_generation(directory: Path, definition: IndexDefinition, products: Sequence[Product]) -> None:
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


class EmbeddedWriter:
    def __init__(self, data_dir: Path, definition: IndexDefinition):
        self.data_dir = data_dir
        self.definition = definition

    def lock(self) -> AbstractContextManager[None]:
        return writer_lock(self.data_dir)

    def check(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def _serving(self) -> Path | None:
        try:
            return generations.current_generation_dir(self.data_dir)
        except GenerationError:
            return None

    def serving_encoder(self) -> str | None:
        directory = self._serving()
        return None if directory is None else str(read_manifest(directory)["encoder"]["variant"])

    def publish(self, products: Sequence[Product], vectors: np.ndarray, manifest: dict[str, Any]) -> Published:
        if not products:
            raise GenerationError("refusing to publish an empty index: no valid products would remain")
        name, build = generations.new_build_dir(self.data_dir)
        write_generation(build, self.definition, list(products), vectors, {**manifest, "name": name})
        final = generations.seal(self.data_dir, name, build)
        try:
            verify_generation(final, self.definition, products)
        except Exception:
            shutil.rmtree(final, ignore_errors=True)
            raise
        generations.activate(self.data_dir, name)
        return Published(name, len(products))

    def _serving_rows(self) -> tuple[list[Product], np.ndarray]:
        directory = self._serving()
        if directory is None:
            return [], np.zeros((0, self.definition.dimension), np.float32)
        return read_products(directory), read_vectors(directory)

    def upsert(self, products: Sequence[Product], vectors: np.ndarray, manifest: dict[str, Any]) -> Published:
        """Products whose id is given are replaced, new ones appended; order stays stable."""
        current, current_vectors = self._serving_rows()
        changes = {p["id"]: i for i, p in enumerate(products)}
        merged, rows = [], []
        for i, product in enumerate(current):
            j = changes.pop(product["id"], None)
            merged.append(product if j is None else products[j])
            rows.append(current_vectors[i] if j is None else vectors[j])
        for j in changes.values():
            merged.append(products[j])
            rows.append(vectors[j])
        return self.publish(merged, np.array(rows, dtype=np.float32).reshape(-1, self.definition.dimension), manifest)

    def delete(self, ids: Sequence[str], manifest: dict[str, Any]) -> tuple[Published, set[str]]:
        current, current_vectors = self._serving_rows()
        wanted = set(ids)
        keep = [i for i, p in enumerate(current) if p["id"] not in wanted]
        unknown = wanted - {p["id"] for p in current}
        kept_vectors = np.asarray(current_vectors)[keep] if keep else np.zeros((0, self.definition.dimension))
        return self.publish([current[i] for i in keep], kept_vectors, manifest), unknown

    def rollback(self) -> tuple[str, str | None]:
        pointer = generations.rollback(self.data_dir)
        return str(pointer.current), pointer.previous

    def cleanup(self) -> None:
        generations.remove_leftovers(self.data_dir)
