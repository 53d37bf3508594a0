"""Merchandising rules and every version of each, in SQLite (`DATA/admin.sqlite`, WAL,
shared by every server worker).

A change (create, update, delete, restore) is one transaction that writes the rule's new
version and its history row together, synced to disk before it returns: an acknowledged
change survives `kill -9`, and no rule is ever half-saved. Versions are numbered from 1
per rule; a delete and a restore are versions too, so the history says who did what,
when, before and after. `stamp()` changes with every change: a server worker compares it
(a one-row read) to know when to reload.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from indexer.state_db import StateDB

SCHEMA = """
CREATE TABLE IF NOT EXISTS rules (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    body TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rule_versions (
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    at REAL NOT NULL,
    who TEXT NOT NULL,
    action TEXT NOT NULL,
    before TEXT,
    after TEXT,
    PRIMARY KEY (id, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rule_changes (one INTEGER PRIMARY KEY CHECK (one = 1), stamp INTEGER NOT NULL);
INSERT OR IGNORE INTO rule_changes VALUES (1, 0);
"""


class NoSuchRule(KeyError):
    pass


class NoSuchVersion(KeyError):
    pass


@dataclass(frozen=True)
class StoredRule:
    id: str
    version: int
    body: dict[str, Any]  # the rule's JSON, without its id
    updated: float


@dataclass(frozen=True)
class Version:
    version: int
    at: float
    who: str
    action: str  # create, update, delete, restore
    before: dict[str, Any] | None
    after: dict[str, Any] | None  # None: deleted


class RuleStore(StateDB):
    def __init__(self, path: Path):
        super().__init__(path, SCHEMA)

    @contextmanager
    def _change(self) -> Iterator[sqlite3.Connection]:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("UPDATE rule_changes SET stamp = stamp + 1")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def stamp(self) -> int:
        return int(self.db.execute("SELECT stamp FROM rule_changes").fetchone()[0])

    def rules(self) -> list[StoredRule]:
        """Every rule not deleted, oldest first."""
        rows = self.db.execute("SELECT id, version, body, updated FROM rules WHERE body IS NOT NULL "
                              "ORDER BY created, id")
        return [StoredRule(r[0], r[1], orjson.loads(r[2]), r[3]) for r in rows]

    def get(self, rule_id: str) -> StoredRule:
        row = self.db.execute("SELECT id, version, body, updated FROM rules WHERE id = ? AND body IS NOT NULL",
                              (rule_id,)).fetchone()
        if row is None:
            raise NoSuchRule(rule_id)
        return StoredRule(row[0], row[1], orjson.loads(row[2]), row[3])

    def create(self, body: dict[str, Any], who: str) -> StoredRule:
        rule_id = f"r-{secrets.token_hex(6)}"
        return self._write(rule_id, body, who, "create")

    def update(self, rule_id: str, body: dict[str, Any], who: str) -> StoredRule:
        self.get(rule_id)
        return self._write(rule_id, body, who, "update")

    def delete(self, rule_id: str, who: str) -> None:
        self.get(rule_id)
        self._write(rule_id, None, who, "delete")

    def restore(self, rule_id: str, version: int, who: str) -> StoredRule:
        """The rule as it was after `version`, as a new version (a deleted rule comes back)."""
        found = self.db.execute("SELECT after FROM rule_versions WHERE id = ? AND version = ?",
                                (rule_id, version)).fetchone()
        if found is None:
            if self.db.execute("SELECT 1 FROM rule_versions WHERE id = ?", (rule_id,)).fetchone() is None:
                raise NoSuchRule(rule_id)
            raise NoSuchVersion(version)
        if found[0] is None:
            raise NoSuchVersion(version)  # that version is a delete: nothing to restore
        return self._write(rule_id, orjson.loads(found[0]), who, "restore")

    def history(self, rule_id: str) -> list[Version]:
        rows = self.db.execute("SELECT version, at, who, action, before, after FROM rule_versions WHERE id = ? "
                               "ORDER BY version", (rule_id,)).fetchall()
        if not rows:
            raise NoSuchRule(rule_id)
        return [Version(r[0], r[1], r[2], r[3], None if r[4] is None else orjson.loads(r[4]),
                        None if r[5] is None else orjson.loads(r[5])) for r in rows]

    def _write(self, rule_id: str, body: dict[str, Any] | None, who: str, action: str) -> StoredRule:
        now = time.time()
        after = None if body is None else orjson.dumps(body).decode()
        with self._change() as db:
            row = db.execute("SELECT version, body FROM rules WHERE id = ?", (rule_id,)).fetchone()
            version = 1 if row is None else row[0] + 1
            before = None if row is None else row[1]
            db.execute("INSERT INTO rules VALUES (?,?,?,?,?) ON CONFLICT (id) DO UPDATE SET "
                       "version = excluded.version, body = excluded.body, updated = excluded.updated",
                       (rule_id, version, after, now, now))
            db.execute("INSERT INTO rule_versions VALUES (?,?,?,?,?,?,?)",
                       (rule_id, version, now, who, action, before, after))
        return StoredRule(rule_id, version, body or {}, now)

