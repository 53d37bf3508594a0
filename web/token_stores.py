"""The one place that chooses where admin tokens live (SHOPRANK_STATE_STORE): the cluster
on the OpenSearch backend (a token works on every web node), else DATA/admin.sqlite."""

from __future__ import annotations

from typing import Any

from indexer import settings
from indexer.backends import Backend


def open_token_store(backend: Backend) -> Any:
    """A web.tokens.TokenStore or its twin, web.cluster_tokens.ClusterTokenStore."""
    if settings.state_store(backend.name) == "cluster":
        from web.cluster_tokens import ClusterTokenStore

        cluster: Any = backend  # the setting allows `cluster` only on the OpenSearch backend
        return ClusterTokenStore(cluster.client, cluster.settings)
    from web.tokens import TokenStore

    return TokenStore(settings.admin_path(backend.data_dir))
