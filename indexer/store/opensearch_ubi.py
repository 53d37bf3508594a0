"""Searches and shopper events into the cluster's User Behavior Insights indices
(`ubi_queries`, `ubi_events`), so OpenSearch's own UBI tooling sees them.

Written in the background: a search or an event batch only queues its documents, and a
thread per server process sends them with `_bulk` (up to BATCH documents, or whatever
arrived within FLUSH_SECONDS), retrying a failed request with backoff. Nothing here can
block or fail a search; a full queue or a request that fails every retry drops its
documents with one warning. Each document's `_id` is its query id or event key, so a
retried or repeated send writes it once.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

log = logging.getLogger(__name__)

QUERIES, EVENTS = "ubi_queries", "ubi_events"
BATCH = 500
FLUSH_SECONDS = 1.0
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)
MAX_QUEUED = 50_000
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
        self._pid = 0
        self._queue: queue.Queue[tuple[str, str, dict[str, Any]]] = queue.Queue(MAX_QUEUED)
        self._created = False
        self._dropped = 0

    def _started(self) -> queue.Queue[tuple[str, str, dict[str, Any]]]:
        """The queue and its sending thread of this process (a server worker is a fork)."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._queue = queue.Queue(MAX_QUEUED)
            threading.Thread(target=self._run, name="ubi-writer", daemon=True).start()
        return self._queue

    def submit(self, index: str, documents: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Queue (id, document) pairs for `index`; never blocks."""
        pending = self._started()
        for doc_id, document in documents:
            try:
                pending.put_nowait((index, doc_id, document))
            except queue.Full:
                self._dropped += 1
                if self._dropped == 1 or self._dropped % 10_000 == 0:
                    log.warning("event=ubi_queue_full dropped=%d", self._dropped)

    def queries(self, documents: Iterable[tuple[str, dict[str, Any]]]) -> None:
        self.submit(QUERIES, documents)

    def events(self, documents: Iterable[tuple[str, dict[str, Any]]]) -> None:
        self.submit(EVENTS, documents)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued so far was sent (or dropped); False on timeout."""
        pending = self._started()
        deadline = time.monotonic() + timeout
        while pending.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        return not pending.unfinished_tasks

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

    def _run(self) -> None:
        pending = self._queue
        while True:
            batch = [pending.get()]
            deadline = time.monotonic() + FLUSH_SECONDS
            while len(batch) < BATCH:
                try:
                    batch.append(pending.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            try:
                self._send(batch)
            finally:
                for _ in batch:
                    pending.task_done()

    def _send(self, batch: list[tuple[str, str, dict[str, Any]]]) -> None:
        lines: list[dict[str, Any]] = []
        for index, doc_id, document in batch:
            lines += [{"index": {"_index": index, "_id": doc_id}}, document]
        for attempt, delay in enumerate((*RETRY_DELAYS, None)):
            try:
                self._ensure_indices()
                answer = self.client.bulk(body=lines)
                failed = [item for item in answer.get("items", []) if next(iter(item.values())).get("status", 200) >= 300]
                if failed:
                    log.warning("event=ubi_documents_refused count=%d first=%r", len(failed),
                                next(iter(failed[0].values())).get("error"))
                return
            except Exception as exc:  # the cluster down, a timeout: retried, never raised into a search
                log.info("event=ubi_send_failed attempt=%d error=%r", attempt + 1, str(exc))
                if delay is None:
                    log.warning("event=ubi_documents_dropped count=%d attempts=%d error=%r", len(batch), attempt + 1,
                                str(exc))
                    return
                time.sleep(delay)
