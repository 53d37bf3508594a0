"""Both shopper stores behind one fixture, so each contract test runs on the SQLite files
and, when OPENSEARCH_URL names a cluster, on the cluster's indices (every request checked
against the OpenSearch spec on its way)."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ranker.events.contract import ShopperStore

STORES = ("local", "cluster")


@pytest.fixture(params=STORES)
def make_store(request: pytest.FixtureRequest, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], ShopperStore]]:
    """A factory: each call is another handle on the same store (another worker's or
    node's view). The environment names the same store, for commands run in the test."""
    if request.param == "local":
        from ranker.events.store import EventStore

        monkeypatch.setenv("SHOPRANK_EVENTS_DB", str(tmp_path / "events.sqlite"))
        yield lambda: EventStore(tmp_path / "events.sqlite", sync="normal")
        return
    url = os.environ.get("OPENSEARCH_URL")
    if not url:
        pytest.skip("OPENSEARCH_URL is not set: the cluster's shopper store needs a cluster")
    from opensearchpy import OpenSearch

    from indexer.settings import OpenSearchSettings
    from ranker.events.cluster_store import ClusterShopperStore
    from tests.opensearch_wire import CheckedConnection

    alias = f"shoprank-state-{secrets.token_hex(4)}"
    monkeypatch.setenv("SHOPRANK_BACKEND", "opensearch")
    monkeypatch.setenv("OPENSEARCH_ALIAS", alias)
    client = OpenSearch(hosts=[url], connection_class=CheckedConnection, timeout=60)
    CheckedConnection.violations.clear()
    yield lambda: ClusterShopperStore(client, OpenSearchSettings(url=url, alias=alias))
    violations = list(CheckedConnection.violations)
    client.indices.delete(index=f"{alias}_*", ignore_unavailable=True)
    assert violations == [], violations


def stored_text(store: ShopperStore) -> list[str]:
    """Every record the store keeps, read from its files or indices, not through it."""
    from ranker.events.store import EventStore

    if isinstance(store, EventStore):
        from tests.test_events import stored_rows

        store.close()
        files = [p for p in store.path.parent.iterdir() if p.name.startswith(store.path.stem + ".")]
        return stored_rows(store.path) + [p.read_bytes().decode("latin-1") for p in files]
    client: Any = store.client  # type: ignore[attr-defined]
    names = ",".join(store.index.values())  # type: ignore[attr-defined]
    client.indices.refresh(index=names)
    found = client.search(index=names, body={"query": {"match_all": {}}, "size": 10_000})["hits"]["hits"]
    return [json.dumps(hit["_source"]) for hit in found]
