"""The one place that chooses where merchandising rules live (SHOPRANK_STATE_STORE): the
cluster on the OpenSearch backend (every web node sees them), else DATA/admin.sqlite."""

from __future__ import annotations

from typing import Any

from indexer import settings
from indexer.backends import Backend


def open_rule_store(backend: Backend) -> Any:
    """A ranker.rules.store.RuleStore or its twin, ranker.rules.cluster_store.ClusterRuleStore."""
    if settings.state_store(backend.name) == "cluster":
        from ranker.rules.cluster_store import ClusterRuleStore

        cluster: Any = backend  # the setting allows `cluster` only on the OpenSearch backend
        return ClusterRuleStore(cluster.client, cluster.settings)
    from ranker.rules.store import RuleStore

    return RuleStore(settings.admin_path(backend.data_dir))
