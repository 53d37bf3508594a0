"""The event log in SQLite: durable before it is acknowledged, each event stored once.

Two files under the data directory, in WAL mode, shared by every server worker (readers
never wait for the writer): the events and profiles (`events.sqlite`), and what each
search showed (`events.searches.sqlite`, beside it). They are apart so that recording a
search never waits for an event batch's write lock: SQLite has one writer per file.

A batch is one transaction: `add` returns only once the batch is committed, so an
acknowledged event survives the server being killed. An event whose key is already
stored is a duplicate and is counted, not stored again; a client's impression of a
product a recorded search showed is a duplicate of that record.

`secure_delete` is on, so an erased shopper's rows are overwritten in the file, not
merely unlinked from its pages.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson

from ranker.events.book import ProfileBook
from ranker.events.contract import Added, FactsOf, Search
from ranker.events.profile import DEFAULT_HALF_LIFE_DAYS, Profile, dump_profile, load_profile
from ranker.events.schema import IMPRESSION, Event
from ranker.interleave import Interleaving

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    key TEXT PRIMARY KEY,
    action TEXT NOT NULL,
    ts REAL NOT NULL,
    shopper TEXT NOT NULL,
    user_id TEXT,
    session_id TEXT,
    client_id TEXT,
    query_id TEXT,
    object_id TEXT,
    position INTEGER,
    document TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_shopper ON events (shopper);
CREATE INDEX IF NOT EXISTS events_user ON events (user_id);
CREATE INDEX IF NOT EXISTS events_session ON events (session_id);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE TABLE IF NOT EXISTS profiles (
    shopper TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    embedding BLOB
) WITHOUT ROWID;
"""
SEARCH_SCHEMA = """
CREATE TABLE IF NOT EXISTS searches (
    query_id TEXT PRIMARY KEY,
    ts REAL NOT NULL,
    shopper TEXT,
    user_id TEXT,
    session_id TEXT,
    query TEXT NOT NULL,
    shown TEXT NOT NULL,
    rules TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS searches_shopper ON searches (shopper);
CREATE INDEX IF NOT EXISTS searches_ts ON searches (ts);
CREATE TABLE IF NOT EXISTS interleavings (
    query_id TEXT PRIMARY KEY,
    ts REAL NOT NULL,
    served TEXT NOT NULL,
    candidate TEXT NOT NULL,
    teams TEXT NOT NULL
) WITHOUT ROWID;
"""
SYNC_MODES = ("full", "normal")
_CHUNK = 500  # ids per IN (...) list: well under SQLite's limit on variables


class EventStore:
    def __init__(self, path: Path, sync: str = "full", half_life_days: float = DEFAULT_HALF_LIFE_DAYS):
        """`sync`: full (each commit is on disk before it returns: survives a power cut)
        or normal (in the operating system's hands: survives the process being killed)."""
        if sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {', '.join(SYNC_MODES)}, got {sync!r}")
        self.path = path
        self.sync = sync
        self.half_life_days = half_life_days
        self.searches_path = searches_path(path)
        self._connections: dict[tuple[Path, str], sqlite3.Connection] = {}
        self._pid = 0

    def where(self) -> str:
        return str(self.path)

    def exists(self) -> bool:
        return self.path.exists()

    def _connect(self, path: Path, schema: str, sync: str) -> sqlite3.Connection:
        """Connections per process (one must not cross a fork: server workers), per file
        and sync mode: `synchronous` is a connection's setting."""
        if self._pid != os.getpid():
            self._connections, self._pid = {}, os.getpid()
        if (path, sync) not in self._connections:
            path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(f"PRAGMA synchronous={sync.upper()}")
            connection.execute("PRAGMA secure_delete=ON")
            connection.executescript(schema)
            if schema is SEARCH_SCHEMA:  # a log from before searches kept their rules
                columns = {row[1] for row in connection.execute("PRAGMA table_info(searches)")}
                if "rules" not in columns:
                    connection.execute("ALTER TABLE searches ADD COLUMN rules TEXT")
            self._connections[(path, sync)] = connection
        return self._connections[(path, sync)]

    @property
    def db(self) -> sqlite3.Connection:
        """The events and profiles, synced as the store was asked."""
        return self._connect(self.path, SCHEMA, self.sync)

    @property
    def searches_db(self) -> sqlite3.Connection:
        """The search records: no disk sync (no client was promised them)."""
        return self._connect(self.searches_path, SEARCH_SCHEMA, "normal")

    def add(self, events: Sequence[Event], facts_of: FactsOf | None = None) -> Added:
        """Store the events not stored before and update their shoppers' profiles, in
        one transaction: an acknowledged event is in the profile too, and a duplicate
        never counts twice. `facts_of`: the products' brand, category, … (None: events
        are only stored)."""
        db = self.db
        recorded = self._recorded_impressions(events)
        with _transaction(db):
            fresh: dict[str, Event] = {}
            for e in events:
                if e.key not in fresh and not (e.action == IMPRESSION and (e.query_id, e.object_id) in recorded):
                    fresh[e.key] = e
            stored = _existing(db, "SELECT key FROM events WHERE key IN ({})", list(fresh))
            new = [e for key, e in fresh.items() if key not in stored]
            db.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?)", [(
                e.key, e.action, e.timestamp, e.shopper, e.user_id, e.session_id, e.client_id, e.query_id,
                e.object_id, e.position, orjson.dumps(e.document).decode()) for e in new])
            if facts_of is not None and new:
                self._update_profiles(new, facts_of)
        return Added(len(new), len(events) - len(new), tuple(new))

    def _recorded_impressions(self, events: Sequence[Event]) -> set[tuple[str | None, str | None]]:
        """(query id, product) of the client impressions a recorded search already shows."""
        asked = sorted({e.query_id for e in events if e.action == IMPRESSION and e.query_id})
        if not asked or not self.searches_path.exists():
            return set()
        found = set()
        for start in range(0, len(asked), _CHUNK):
            chunk = asked[start : start + _CHUNK]
            for query_id, shown in self.searches_db.execute(
                    f"SELECT query_id, shown FROM searches WHERE query_id IN ({','.join('?' * len(chunk))})", chunk):
                found.update((query_id, product) for product in orjson.loads(shown))
        return found

    def _update_profiles(self, events: list[Event], facts_of: FactsOf) -> None:
        facts = facts_of(sorted({e.object_id for e in events if e.object_id and e.action != IMPRESSION}))
        wanted = sorted({s for e in events if e.action != IMPRESSION for s in (e.shopper, e.session_id) if s})
        stored = {}
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            stored.update((row[0], load_profile(row[1], row[2])) for row in self.db.execute(
                f"SELECT shopper, state, embedding FROM profiles WHERE shopper IN ({','.join('?' * len(chunk))})",
                chunk))
        book = ProfileBook(stored.get, self.half_life_days)
        for e in events:
            book.apply(e, facts.get(e.object_id or ""))
        self.db.executemany("DELETE FROM profiles WHERE shopper = ?", [(s,) for s in book.removed])
        rows = []
        for shopper in book.changed:
            profile = book.profiles[shopper]
            assert profile is not None
            rows.append((shopper, *dump_profile(profile)))
        self.db.executemany("INSERT OR REPLACE INTO profiles VALUES (?,?,?)", rows)

    def _stored_profile(self, shopper: str) -> Profile | None:
        row = self.db.execute("SELECT state, embedding FROM profiles WHERE shopper = ?", (shopper,)).fetchone()
        return None if row is None else load_profile(row[0], row[1])

    def profile(self, user_id: str | None, session_id: str | None = None) -> Profile | None:
        """The profile a search uses: the user's; for a session alone, the user it logged
        in as (if it did), else the session's own."""
        if user_id is None and session_id is not None:
            linked = self.db.execute("SELECT user_id FROM events WHERE session_id = ? AND user_id IS NOT NULL "
                                     "LIMIT 1", (session_id,)).fetchone()
            user_id = linked[0] if linked else None
        shopper = user_id or session_id
        return None if shopper is None else self._stored_profile(shopper)

    def record_search(self, search: Search, interleaving: Interleaving | None = None) -> None:
        """What a search showed (each product an impression at its position, for training
        and for recognising a client's copy of it) and its interleaving draft, if any.
        Written without a disk sync: it is on every search's path, and no client was
        promised it (a crash of the machine, not of the server, can lose the last searches'
        records)."""
        shopper = search.user_id or search.session_id
        db = self.searches_db
        with _transaction(db):
            db.execute("INSERT OR IGNORE INTO searches VALUES (?,?,?,?,?,?,?,?)",
                       (search.query_id, search.timestamp, shopper, search.user_id, search.session_id,
                        search.query, orjson.dumps(search.shown).decode(),
                        orjson.dumps(search.rules).decode() if search.rules else None))
            if interleaving is not None:
                db.execute("INSERT OR IGNORE INTO interleavings VALUES (?,?,?,?,?)", (
                    interleaving.query_id, search.timestamp, interleaving.served, interleaving.candidate,
                    orjson.dumps(interleaving.teams).decode()))

    def interleavings(self) -> Iterator[Interleaving]:
        for row in self.searches_db.execute("SELECT query_id, served, candidate, teams FROM interleavings "
                                            "ORDER BY ts"):
            yield Interleaving(row[0], row[1], row[2], orjson.loads(row[3]))

    def clicked(self) -> dict[str, set[str]]:
        """query id -> the products clicked after that search."""
        out: dict[str, set[str]] = {}
        for query_id, product in self.db.execute("SELECT query_id, object_id FROM events WHERE action = 'click' "
                                                 "AND query_id IS NOT NULL AND object_id IS NOT NULL"):
            out.setdefault(query_id, set()).add(product)
        return out

    def linked_sessions(self, user_id: str) -> list[str]:
        """Sessions that events tie to this user (an event that carried both ids)."""
        found = self.db.execute("SELECT DISTINCT session_id FROM events WHERE user_id = ? AND session_id IS NOT NULL",
                                (user_id,))
        return [row[0] for row in found]

    def erase(self, shopper_id: str) -> int:
        """Every event, search and profile of this shopper (a user id or a session id), and
        of the sessions linked to it. Returns the rows deleted."""
        db, searches = self.db, self.searches_db
        deleted = 0
        with _transaction(db):
            ids = [shopper_id, *self.linked_sessions(shopper_id)]
            marks = ",".join("?" * len(ids))
            before = db.total_changes
            db.execute(f"DELETE FROM events WHERE shopper IN ({marks}) OR user_id IN ({marks}) "
                       f"OR session_id IN ({marks})", ids * 3)
            db.execute(f"DELETE FROM profiles WHERE shopper IN ({marks})", ids)
            deleted += db.total_changes - before
        with _transaction(searches):
            before = searches.total_changes
            mine = f"shopper IN ({marks}) OR user_id IN ({marks}) OR session_id IN ({marks})"
            searches.execute(f"DELETE FROM interleavings WHERE query_id IN (SELECT query_id FROM searches WHERE "
                             f"{mine})", ids * 3)
            searches.execute(f"DELETE FROM searches WHERE {mine}", ids * 3)
            deleted += searches.total_changes - before
        # The write-ahead logs still hold the pages as they were before the delete: copy
        # the new pages into the files and empty the logs, so no old copy stays on disk.
        for connection in (db, searches):
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return deleted

    def delete_before(self, cutoff: float) -> int:
        """Retention: every event and search older than `cutoff` (seconds since the epoch),
        and the profiles of shoppers with no engagement since (nothing they were built from
        is kept). Returns the rows deleted."""
        db, searches = self.db, self.searches_db
        with _transaction(db):
            before = db.total_changes
            db.execute("DELETE FROM events WHERE ts < ?", (cutoff,))
            db.execute("DELETE FROM profiles WHERE coalesce(json_extract(state, '$.at'), 0) < ?", (cutoff,))
            deleted = db.total_changes - before
        with _transaction(searches):
            before = searches.total_changes
            searches.execute("DELETE FROM searches WHERE ts < ?", (cutoff,))
            searches.execute("DELETE FROM interleavings WHERE ts < ?", (cutoff,))
            deleted += searches.total_changes - before
        for connection in (db, searches):  # as for an erase: no old page stays in a log
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return deleted

    def events(self, since: float = 0.0) -> Iterator[Event]:
        """Every stored event from `since`, in time order (ties in arrival order)."""
        for row in self.db.execute("SELECT key, action, ts, user_id, session_id, client_id, query_id, object_id, "
                                   "position, document FROM events WHERE ts >= ? ORDER BY ts", (since,)):
            yield Event(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], orjson.loads(row[9]))

    def searches(self, since: float = 0.0) -> Iterator[Search]:
        for row in self.searches_db.execute("SELECT query_id, ts, user_id, session_id, query, shown, rules "
                                            "FROM searches WHERE ts >= ? ORDER BY ts", (since,)):
            yield Search(row[0], row[1], row[2], row[3], row[4], orjson.loads(row[5]),
                         orjson.loads(row[6]) if row[6] else {})

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM events").fetchone()[0])

    def close(self) -> None:
        if self._pid == os.getpid():
            for connection in self._connections.values():
                connection.close()
        self._connections = {}


def searches_path(events_path: Path) -> Path:
    """`events.sqlite` -> `events.searches.sqlite`, beside it."""
    return events_path.with_name(events_path.stem + ".searches" + events_path.suffix)


def _existing(db: sqlite3.Connection, query: str, keys: list[str]) -> set[str]:
    """The keys among `keys` that `query` (with one `{}` for the placeholders) finds."""
    found: set[str] = set()
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        found.update(row[0] for row in db.execute(query.format(",".join("?" * len(chunk))), chunk))
    return found


class _transaction:
    """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error): the write lock is taken at the start,
    so two workers never deadlock upgrading a read to a write."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *_: object) -> None:
        self.db.execute("ROLLBACK" if kind is not None else "COMMIT")

