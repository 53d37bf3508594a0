"""Searches and shopper events into the cluster's User Behavior Insights indices
(`ubi_queries`, `ubi_events`), so OpenSearch's own UBI tooling sees them.

Written in the background (indexer.store.background_bulk): a search or an event batch only
queues its documents, so nothing here can block or fail a search. Each document's `_id` is
its query id or event key, so a retried or repeated send writes it once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from indexer.store.background_bulk import BackgroundBulk

QUERIES, EVENTS = "ubi_queries", "ubi_events"
_KEYWORDS = ("application", "query_id", "client_id", "user_id", "session_id", "action_name", "query_response_id",
             "query_response_object_ids", "object_id_field", "event_id")
# The fields UBI tooling reads; anything else a client sends is kept in `_source` only.
MAPPINGS: dict[str, dict[str, Any]] = {
    QUERIES: {"dynamic": False, "properties": {
        **{name: {"type": "keyword"} for name in _KEYWORDS},
        "user_query": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}},
        "timestamp": {"type": "date"}}},
    EVENTS: {"dynamic": False, "properties": {
        **{name: {"type": "keyword"} for name in _KEYWORDS},
        "timestamp": {"type": "date"},
        "event_attributes": {"properties": {
            "object": {"properties": {"object_id": {"type": "keyword"}, "object_id_field": {"type": "keyword"}}},
            "position": {"properties": {"ordinal": {"type": "integer"}}}}}}},
}


class UbiWriter:
    def __init__(self, client: Any):
        self.client = client
        self._created = False
        self._sender = BackgroundBulk(client, "ubi", self._ensure_indices)

    def queries(self, documents: Iterable[tuple[str, dict[str, Any]]]) -> None:
        self._sender.submit(QUERIES, documents)

    def events(self, documents: Iterable[tuple[str, dict[str, Any]]]) -> None:
        self._sender.submit(EVENTS, documents)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued so far was sent (or dropped); False on timeout."""
        return self._sender.flush(timeout)

    def erase(self, shopper_ids: Sequence[str]) -> None:
        """Every UBI query and event of these user or session ids (after what is queued)."""
        self.flush()
        self._ensure_indices()
        body = {"query": {"bool": {"should": [{"terms": {"user_id": list(shopper_ids)}},
                                              {"terms": {"session_id": list(shopper_ids)}}],
                                   "minimum_should_match": 1}}}
        for index in (QUERIES, EVENTS):
            self.client.delete_by_query(index=index, body=body, params={"refresh": "true", "conflicts": "proceed"})

    def _ensure_indices(self) -> None:
        if self._created:
            return
        for index, mappings in MAPPINGS.items():
            # 400 is resource_already_exists: another worker or node made it first
            self.client.indices.create(index=index, body={"mappings": mappings}, ignore=400)
        self._created = True
