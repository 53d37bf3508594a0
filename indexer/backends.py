"""The one place that chooses the search store (SHOPRANK_BACKEND): `open_backend`.

Everything else — the indexer, the server, training, the benches — asks the `Backend`
it returns for a reader or a writer and never branches on which backend it is.
"""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import Any, Protocol

from indexer import settings
from indexer.mapping import IndexDefinition, load_definition
from indexer.store.base import SearchReader, StoreWriter


class Backend(Protocol):
    name: str
    data_dir: Path  # the embedding cache, models and rankers live here on every backend
    definition: IndexDefinition  # the index definition (mappings/) new generations are built with
    # How often a server may ask `serving_stamp` (seconds; 0: on every request, it is a stat call).
    refresh_seconds: float

    def reader(self) -> SearchReader:
        """A reader of what serves now; GenerationError when there is no index yet."""
        ...

    def writer(self) -> StoreWriter: ...

    def serving_stamp(self) -> Hashable | None:
        """Changes whenever what `reader()` would open changes; None: nothing to serve."""
        ...

    def status(self) -> list[tuple[str, str]]:
        """(label, value) lines for `python -m indexer status`."""
        ...

    def behavior_sink(self) -> Any:
        """Where searches and shopper events are copied for the store's own behaviour
        tooling (a cluster's UBI indices: indexer.store.opensearch_ubi), or None."""
        ...


class EmbeddedBackend:
    name = "embedded"
    refresh_seconds = 0.0

    def __init__(self, data_dir: Path, definition: IndexDefinition):
        self.data_dir = data_dir
        self.definition = definition

    def reader(self) -> SearchReader:
        from indexer.store.embedded import EmbeddedReader
        from indexer.store.generations import current_generation_dir

        return EmbeddedReader(current_generation_dir(self.data_dir), self.definition)

    def writer(self) -> StoreWriter:
        from indexer.store.embedded_writer import EmbeddedWriter

        return EmbeddedWriter(self.data_dir, self.definition)

    def serving_stamp(self) -> Hashable | None:
        from indexer.store.generations import pointer_stamp

        return pointer_stamp(self.data_dir)

    def status(self) -> list[tuple[str, str]]:
        from indexer.store.generations import read_pointer

        pointer = read_pointer(self.data_dir)
        return [("backend", "embedded"), ("data dir", str(self.data_dir)),
                ("serving", pointer.current or "(none)"), ("rollback", pointer.previous or "(none)")]

    def behavior_sink(self) -> Any:
        return None  # the event log in the data dir is all there is


class OpenSearchBackend:
    """One client (one connection pool) for the life of the process."""

    name = "opensearch"
    refresh_seconds = 5.0

    def __init__(self, data_dir: Path, definition: IndexDefinition, cluster: settings.OpenSearchSettings):
        self.data_dir = data_dir
        self.definition = definition
        self.settings = cluster
        self._client: Any = None
        self._ubi: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            from indexer.store import opensearch_client

            self._client = opensearch_client.connect(self.settings)
        return self._client

    def reader(self) -> SearchReader:
        from indexer.store.opensearch import OpenSearchReader

        return OpenSearchReader(self.client, self.definition, self.settings)

    def writer(self) -> StoreWriter:
        from indexer.store.opensearch import OpenSearchWriter

        return OpenSearchWriter(self.client, self.definition, self.settings, self.data_dir)

    def serving_stamp(self) -> Hashable | None:
        return self.reader().vocabulary_stamp()

    def behavior_sink(self) -> Any:
        if self._ubi is None:
            from indexer.store.opensearch_ubi import UbiWriter

            self._ubi = UbiWriter(self.client)
        return self._ubi

    def status(self) -> list[tuple[str, str]]:
        reader = self.reader()
        return [("backend", f"opensearch {self.settings.url}"), ("alias", f"{self.settings.alias} -> {reader.generation}"),
                ("documents", f"{reader.document_count:,}")]


def open_backend(data_dir: Path, definition: IndexDefinition | None = None) -> Backend:
    """The backend SHOPRANK_BACKEND names, for the index definition in mappings/."""
    definition = definition or load_definition()
    if settings.backend_name() == "opensearch":
        return OpenSearchBackend(data_dir, definition, settings.opensearch())
    return EmbeddedBackend(data_dir, definition)

