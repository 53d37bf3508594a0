"""A SQLite file of durable state (admin rules, tokens) with one connection per process:
a connection must not cross a fork (server workers are forks). WAL, so readers never wait
for the writer; `synchronous=FULL`, so a committed change is on disk before it returns."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path


class StateDB:
    def __init__(self, path: Path, schema: str):
        self.path = path
        self.schema = schema
        self._db: sqlite3.Connection | None = None
        self._pid = 0

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(self.schema)
            self._db, self._pid = db, os.getpid()
        return self._db

    def close(self) -> None:
        if self._db is not None and self._pid == os.getpid():
            self._db.close()
        self._db = None
