"""Which search store to use: configuration only (SHOPRANK_BACKEND), so indexer, ranker
and web code never branch on it beyond this module and the two small dispatchers
(indexer/pipeline.py for writes, web/serving.py for reads)."""

from __future__ import annotations

import os

from indexer.generations import GenerationError
from indexer.mapping import load_definition

BACKENDS = ("embedded", "opensearch")


def backend_name() -> str:
    name = os.environ.get("SHOPRANK_BACKEND", "embedded").strip().lower()
    if name not in BACKENDS:
        raise GenerationError(f"SHOPRANK_BACKEND={name!r}: use one of {', '.join(BACKENDS)}")
    return name


def opensearch_admin():  # type: ignore[no-untyped-def]
    from indexer.store.opensearch import OpenSearchAdmin, OpenSearchSettings, connect

    settings = OpenSearchSettings.from_env()
    return OpenSearchAdmin(connect(settings), load_definition(), settings)


def opensearch_reader(client=None):  # type: ignore[no-untyped-def]
    """A reader of the index behind the alias; pass `client` to reuse its connections."""
    from indexer.store.opensearch import OpenSearchReader, OpenSearchSettings, connect

    settings = OpenSearchSettings.from_env()
    return OpenSearchReader(client or connect(settings), load_definition(), settings)
