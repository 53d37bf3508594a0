"""Admin tokens in the OpenSearch cluster, so a token made on one web node works on every
one (the SQLite store's twin: web/tokens.py). One document per token in `<alias>_tokens`,
its `_id` the token's SHA-256: checking a request's token is one read by id (real time).
Writes refresh, so a list or a revoke right after sees them.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from indexer.settings import OpenSearchSettings
from indexer.store.opensearch_client import guarded
from web.tokens import NAME, ROLES, Holder, TokenError, TokenExists, token_hash

MAPPINGS = {"dynamic": False, "properties": {"name": {"type": "keyword"}, "role": {"type": "keyword"},
                                             "created": {"type": "double"}}}


class ClusterTokenStore:
    def __init__(self, client: Any, settings: OpenSearchSettings):
        self.client = client
        self.settings = settings
        self.index = f"{settings.alias}_tokens"
        self._created = False

    def _call(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        return guarded(self.settings, func, *args, **kwargs)

    def _ensure(self) -> None:
        if not self._created:
            self._call(self.client.indices.create, index=self.index, body={"mappings": MAPPINGS}, ignore=400)
            self._created = True

    def _named(self, name: str) -> list[dict[str, Any]]:
        body = {"query": {"term": {"name": name}}, "size": 10}
        return self._call(self.client.search, index=self.index, body=body)["hits"]["hits"]

    def add(self, name: str, role: str) -> str:
        if not NAME.fullmatch(name):
            raise TokenError(f"name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        if role not in ROLES:
            raise TokenError(f"role {role!r}: use one of {', '.join(ROLES)}")
        self._ensure()
        if self._named(name):
            raise TokenExists(f"a token named {name!r} exists: revoke it first")
        token = f"srk_{secrets.token_urlsafe(32)}"
        self._call(self.client.index, index=self.index, id=token_hash(token),
                   body={"name": name, "role": role, "created": time.time()},
                   params={"op_type": "create", "refresh": "true"})
        return token

    def holders(self) -> list[Holder]:
        self._ensure()
        body = {"query": {"match_all": {}}, "sort": ["name"], "size": 10_000}
        hits = self._call(self.client.search, index=self.index, body=body)["hits"]["hits"]
        return [Holder(h["_source"]["name"], h["_source"]["role"], h["_source"]["created"]) for h in hits]

    def revoke(self, name: str) -> bool:
        self._ensure()
        answer = self._call(self.client.delete_by_query, index=self.index, body={"query": {"term": {"name": name}}},
                            params={"refresh": "true", "conflicts": "proceed"})
        return int(answer.get("deleted", 0)) > 0

    def holder(self, token: str) -> Holder | None:
        return self.holder_by_hash(token_hash(token))

    def holder_by_hash(self, hashed: str) -> Holder | None:
        self._ensure()
        found = self._call(self.client.get, index=self.index, id=hashed, ignore=404)
        if not found.get("found"):
            return None
        source = found["_source"]
        return Holder(source["name"], source["role"], source["created"])
