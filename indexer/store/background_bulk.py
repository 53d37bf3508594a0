"""Documents sent to a cluster in the background with `_bulk`: what a search writes on
its way out (the UBI copies, the search records of the cluster's event store) must never
wait for the cluster, nor fail because it is down.

`submit` only queues; a thread per process (a server worker is a fork) sends up to BATCH
documents, or whatever arrived within FLUSH_SECONDS, retrying a failed request with
backoff. A full queue, or a request that fails every retry, drops its documents with one
warning. Each document has its own `_id`, so a retried send writes it once.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger(__name__)

BATCH = 500
FLUSH_SECONDS = 1.0
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)
MAX_QUEUED = 50_000

Pending = tuple[str, str, dict[str, Any]]  # (index, _id, document)


class BackgroundBulk:
    """`prepare` runs before each send (creating the indices, say); `name` labels the
    thread and the log lines."""

    def __init__(self, client: Any, name: str, prepare: Callable[[], None] = lambda: None):
        self.client = client
        self.name = name
        self.prepare = prepare
        self._pid = 0
        self._queue: queue.Queue[Pending] = queue.Queue(MAX_QUEUED)
        self._dropped = 0

    def _started(self) -> queue.Queue[Pending]:
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._queue = queue.Queue(MAX_QUEUED)
            threading.Thread(target=self._run, name=self.name, daemon=True).start()
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
                    log.warning("event=%s_queue_full dropped=%d", self.name, self._dropped)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued so far was sent (or dropped); False on timeout."""
        pending = self._started()
        deadline = time.monotonic() + timeout
        while pending.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        return not pending.unfinished_tasks

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

    def _send(self, batch: list[Pending]) -> None:
        lines: list[dict[str, Any]] = []
        for index, doc_id, document in batch:
            lines += [{"index": {"_index": index, "_id": doc_id}}, document]
        for attempt, delay in enumerate((*RETRY_DELAYS, None)):
            try:
                self.prepare()
                answer = self.client.bulk(body=lines)
                failed = [item for item in answer.get("items", []) if next(iter(item.values())).get("status", 200) >= 300]
                if failed:
                    log.warning("event=%s_documents_refused count=%d first=%r", self.name, len(failed),
                                next(iter(failed[0].values())).get("error"))
                return
            except Exception as exc:  # the cluster down, a timeout: retried, never raised into a search
                log.info("event=%s_send_failed attempt=%d error=%r", self.name, attempt + 1, str(exc))
                if delay is None:
                    log.warning("event=%s_documents_dropped count=%d attempts=%d error=%r", self.name, len(batch),
                                attempt + 1, str(exc))
                    return
                time.sleep(delay)
