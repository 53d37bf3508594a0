"""The one place that chooses the shopper store (SHOPRANK_STATE_STORE): the SQLite files
in the data dir, or the indices of the cluster the OpenSearch backend serves from (so that
several web nodes share them). The server, training and the commands call
`open_shopper_store` and use only the contract (ranker.events.contract)."""

from __future__ import annotations

from indexer import settings
from indexer.backends import Backend
from ranker.events.contract import ShopperStore


def open_shopper_store(backend: Backend) -> ShopperStore:
    half_life = settings.profile_half_life_days()
    if settings.state_store(backend.name) == "cluster":
        from ranker.events.cluster_store import ClusterShopperStore

        cluster = backend  # the setting allows `cluster` only on the OpenSearch backend
        return ClusterShopperStore(cluster.client, cluster.settings, half_life)  # type: ignore[attr-defined]
    from ranker.events.store import EventStore

    return EventStore(settings.events_path(backend.data_dir), settings.events_sync(), half_life)
