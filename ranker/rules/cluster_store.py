"""Merchandising rules and their versions in the OpenSearch cluster, so every web node
serves the same rules (the SQLite store's twin: ranker/rules/store.py).

Two indices beside the catalog's: `<alias>_rules` (each rule's current version, and one
`~stamp` document) and `<alias>_rule_versions` (one document per version, `_id`
`<rule>:<version>`). A change reads the rule (real time), writes the new version over the
one it read (`if_seq_no` / `if_primary_term`: of two editors saving at once, one retries on
top of the other), then its history document, then re-indexes the stamp document; each
with `refresh=true`, so a search of the rules right after sees it. The stamp is that
document's `_version`, read by id (one request) when a worker checks for changes.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from opensearchpy.exceptions import ConflictError

from indexer.settings import OpenSearchSettings
from indexer.store.base import BackendUnavailable
from indexer.store.opensearch_client import guarded
from ranker.rules.store import NoSuchRule, NoSuchVersion, StoredRule, Version

STAMP = "~stamp"
ATTEMPTS = 10
PAGE = 10_000  # rules and versions per rule are read whole: far fewer in practice
MAPPINGS = {
    "rules": {"dynamic": False, "properties": {"version": {"type": "integer"}, "created": {"type": "double"},
                                               "live": {"type": "boolean"}}},
    "rule_versions": {"dynamic": False, "properties": {"id": {"type": "keyword"}, "version": {"type": "integer"}}},
}


class ClusterRuleStore:
    def __init__(self, client: Any, settings: OpenSearchSettings):
        self.client = client
        self.settings = settings
        self.index = {name: f"{settings.alias}_{name}" for name in MAPPINGS}
        self._created = False

    def _call(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        return guarded(self.settings, func, *args, passing=(ConflictError,), **kwargs)

    def _ensure(self) -> None:
        if not self._created:
            for name, mappings in MAPPINGS.items():
                self._call(self.client.indices.create, index=self.index[name], body={"mappings": mappings},
                           ignore=400)  # 400: another worker or node made it first
            self._created = True

    def stamp(self) -> int:
        self._ensure()
        found = self._call(self.client.get, index=self.index["rules"], id=STAMP, ignore=404)
        return int(found.get("_version", 0)) if found.get("found") else 0

    def rules(self) -> list[StoredRule]:
        self._ensure()
        body = {"query": {"term": {"live": True}}, "sort": ["created", "_doc"], "size": PAGE}
        hits = self._call(self.client.search, index=self.index["rules"], body=body)["hits"]["hits"]
        return [_stored(hit) for hit in hits]

    def _read(self, rule_id: str) -> dict[str, Any] | None:
        if rule_id == STAMP:
            return None
        found = self._call(self.client.get, index=self.index["rules"], id=rule_id, ignore=404)
        return found if found.get("found") else None

    def get(self, rule_id: str) -> StoredRule:
        self._ensure()
        found = self._read(rule_id)
        if found is None or not found["_source"].get("live"):
            raise NoSuchRule(rule_id)
        return _stored(found)

    def create(self, body: dict[str, Any], who: str) -> StoredRule:
        return self._write(f"r-{secrets.token_hex(6)}", body, who, "create")

    def update(self, rule_id: str, body: dict[str, Any], who: str) -> StoredRule:
        self.get(rule_id)
        return self._write(rule_id, body, who, "update")

    def delete(self, rule_id: str, who: str) -> None:
        self.get(rule_id)
        self._write(rule_id, None, who, "delete")

    def restore(self, rule_id: str, version: int, who: str) -> StoredRule:
        self._ensure()
        found = self._call(self.client.get, index=self.index["rule_versions"], id=f"{rule_id}:{version}", ignore=404)
        if not found.get("found"):
            if self._read(rule_id) is None:
                raise NoSuchRule(rule_id)
            raise NoSuchVersion(version)
        after = found["_source"].get("after")
        if after is None:
            raise NoSuchVersion(version)  # that version is a delete: nothing to restore
        return self._write(rule_id, after, who, "restore")

    def history(self, rule_id: str) -> list[Version]:
        self._ensure()
        body = {"query": {"term": {"id": rule_id}}, "sort": ["version"], "size": PAGE}
        hits = self._call(self.client.search, index=self.index["rule_versions"], body=body)["hits"]["hits"]
        if not hits:
            raise NoSuchRule(rule_id)
        return [Version(h["_source"]["version"], h["_source"]["at"], h["_source"]["who"], h["_source"]["action"],
                        h["_source"].get("before"), h["_source"].get("after")) for h in hits]

    def _write(self, rule_id: str, body: dict[str, Any] | None, who: str, action: str) -> StoredRule:
        self._ensure()
        for _ in range(ATTEMPTS):
            now = time.time()
            current = self._read(rule_id)
            version = 1 if current is None else int(current["_source"]["version"]) + 1
            before = None if current is None else current["_source"].get("body")
            document = {"version": version, "body": body, "live": body is not None, "updated": now,
                        "created": now if current is None else current["_source"]["created"]}
            occ = {} if current is None else {"if_seq_no": current["_seq_no"], "if_primary_term": current["_primary_term"]}
            try:
                self._call(self.client.index, index=self.index["rules"], id=rule_id, body=document,
                           params={"refresh": "true", **({"op_type": "create"} if current is None else occ)})
            except ConflictError:
                continue  # another editor saved first: this change goes on top of theirs
            self._call(self.client.index, index=self.index["rule_versions"], id=f"{rule_id}:{version}", body={
                "id": rule_id, "version": version, "at": now, "who": who, "action": action, "before": before,
                "after": body}, params={"refresh": "true"})
            self._call(self.client.index, index=self.index["rules"], id=STAMP, body={"at": now},
                       params={"refresh": "true"})
            return StoredRule(rule_id, version, body or {}, now)
        raise BackendUnavailable(f"rule {rule_id} kept changing under {ATTEMPTS} attempts in a row to save it")

    def close(self) -> None:
        pass


def _stored(hit: dict[str, Any]) -> StoredRule:
    source = hit["_source"]
    return StoredRule(hit["_id"], int(source["version"]), source.get("body") or {}, float(source["updated"]))
