"""The rules a server worker applies, reloaded when the store changes: each search asks
`book()`, which reads the store's change stamp (one row) at most every CHECK_SECONDS and
re-reads the rules only when it moved, so a change reaches every worker within a second
without a restart."""

from __future__ import annotations

import logging
import threading
import time

from ranker.rules.engine import RuleBook
from ranker.rules.model import RuleError, parse_rule
from ranker.rules.store import RuleStore

log = logging.getLogger(__name__)
CHECK_SECONDS = 0.25


class LiveRules:
    def __init__(self, store: RuleStore):
        self.store = store
        self._book = RuleBook()
        self._stamp: int | None = None
        self._checked = -float("inf")
        self._lock = threading.Lock()

    def book(self) -> RuleBook:
        now = time.monotonic()
        if now - self._checked < CHECK_SECONDS:
            return self._book
        with self._lock:
            if now - self._checked >= CHECK_SECONDS:
                self._checked = now
                stamp = self.store.stamp()
                if stamp != self._stamp:
                    self._book, self._stamp = self.read(), stamp
        return self._book

    def read(self) -> RuleBook:
        """Every stored rule (each was checked when saved; one that no longer reads, after
        an upgrade, is skipped with a warning rather than failing every search)."""
        rules = []
        for stored in self.store.rules():
            try:
                rules.append(parse_rule(stored.body, rule_id=stored.id))
            except RuleError as exc:
                log.warning("event=rule_skipped rule=%s error=%r", stored.id, str(exc))
        return RuleBook(tuple(rules))
