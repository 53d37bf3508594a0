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


def _cluster(request: pytest.FixtureRequest) -> tuple[Any, Any] | None:
    """A spec-checked client and settings of an alias of the test's own (None: local)."""
    if request.param == "local":
        return None
    url = os.environ.get("OPENSEARCH_URL")
    if not url:
        pytest.skip("OPENSEARCH_URL is not set: the cluster's store needs a cluster")
    from opensearchpy import OpenSearch

    from indexer.settings import OpenSearchSettings
    from tests.opensearch_wire import CheckedConnection

    CheckedConnection.violations.clear()
    client = OpenSearch(hosts=[url], connection_class=CheckedConnection, timeout=60)
    return client, OpenSearchSettings(url=url, alias=f"shoprank-admin-{secrets.token_hex(4)}")


def _cleanup(cluster: tuple[Any, Any] | None) -> None:
    if cluster is not None:
        from tests.opensearch_wire import CheckedConnection

        violations = list(CheckedConnection.violations)
        cluster[0].indices.delete(index=f"{cluster[1].alias}_*", ignore_unavailable=True)
        assert violations == [], violations


@pytest.fixture(params=STORES)
def make_rule_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """Rules and their versions, in SQLite or in the cluster; each call another worker's handle."""
    cluster = _cluster(request)
    if cluster is None:
        from ranker.rules.store import RuleStore

        yield lambda: RuleStore(tmp_path / "admin.sqlite")
    else:
        from ranker.rules.cluster_store import ClusterRuleStore

        yield lambda: ClusterRuleStore(*cluster)
    _cleanup(cluster)


@pytest.fixture(params=STORES)
def make_token_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    cluster = _cluster(request)
    if cluster is None:
        from web.tokens import TokenStore

        yield lambda: TokenStore(tmp_path / "admin.sqlite")
    else:
        from web.cluster_tokens import ClusterTokenStore

        yield lambda: ClusterTokenStore(*cluster)
    _cleanup(cluster)
