"""The shopper store in the OpenSearch cluster, so that several web nodes share one event
log, one profile per shopper and one erase.

Four indices beside the catalog's (`<alias>_events`, `_profiles`, `_searches`,
`_sessions`; never `<alias>-…`, the names a reindex prunes):
- An event's `_id` is its key and it is written with `create`: a second copy, from a
  retry or from another node, is refused by the cluster and counted as a duplicate. The
  `_bulk` is answered once the cluster has the batch in its translog (fsynced per
  request, OpenSearch's default durability), so an acknowledged event survives a node
  being killed.
- Profiles are read and written by id, which is real-time in OpenSearch (no refresh to
  wait for), with optimistic concurrency (`if_seq_no` / `if_primary_term`): two nodes
  updating one shopper never lose an update; the loser reads again and re-applies. Each
  profile keeps the keys of its last APPLIED_KEPT events, so re-applying (after a
  conflict, or a retried batch whose events were not yet stored) never counts an event
  twice. A batch updates the profiles before it stores the events: an event is never
  stored (and so a duplicate on retry) without being in its profile.
- A session's login (an event with both ids) is a `_sessions` document: a search by the
  session alone uses the user's profile, read by id.
- Search records go in the background (indexer.store.background_bulk): they are on every
  search's path and no client was promised them.
- Reads of the whole log (training, reports, retention) refresh first and page with
  `search_after`; an erase and a retention delete by query, then expunge the deleted
  documents from the segments, so no copy stays in the index files.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from indexer.settings import OpenSearchSettings
from indexer.store.background_bulk import BackgroundBulk
from indexer.store.base import BackendUnavailable
from indexer.store.opensearch_client import guarded
from ranker.events.book import ProfileBook
from ranker.events.contract import Added, FactsOf, Search
from ranker.events.profile import DEFAULT_HALF_LIFE_DAYS, Profile, dump_profile, load_profile
from ranker.events.schema import IMPRESSION, Event
from ranker.interleave import Interleaving

APPLIED_KEPT = 1000  # event keys a profile remembers having applied
ATTEMPTS = 20  # profile writes that lose to another node's before a batch gives up
PAGE = 2000
_KEYWORD = {"type": "keyword"}
_TIME = {"type": "double"}
_SHOPPER_FIELDS = ("shopper", "user_id", "session_id")
MAPPINGS: dict[str, dict[str, Any]] = {
    "events": {"dynamic": False, "properties": {
        **{name: _KEYWORD for name in ("key", "action", *_SHOPPER_FIELDS, "client_id", "query_id", "object_id")},
        "ts": _TIME, "arrival": {"type": "long"}, "position": {"type": "integer"}}},
    "profiles": {"dynamic": False, "properties": {"shopper": _KEYWORD, "at": _TIME}},
    "searches": {"dynamic": False, "properties": {
        **{name: _KEYWORD for name in ("query_id", *_SHOPPER_FIELDS)}, "ts": _TIME, "interleaved": {"type": "boolean"}}},
    "sessions": {"dynamic": False, "properties": {"session_id": _KEYWORD, "user_id": _KEYWORD, "ts": _TIME}},
}


@dataclass
class _Stored:
    """A profile as the cluster holds it, and the version it was read at."""

    profile: Profile
    applied: list[str]
    merged: list[str]  # sessions folded in by the write that made this version
    seq_no: int
    primary_term: int


@dataclass
class _Batch:
    """One attempt at a batch's profile updates."""

    stored: dict[str, _Stored]
    applied: dict[str, list[str]] = field(default_factory=dict)
    merged: dict[str, list[str]] = field(default_factory=dict)
    leftover: set[str] = field(default_factory=set)  # sessions an earlier attempt merged but did not delete


class ClusterShopperStore:
    def __init__(self, client: Any, settings: OpenSearchSettings, half_life_days: float = DEFAULT_HALF_LIFE_DAYS):
        self.client = client
        self.settings = settings
        self.half_life_days = half_life_days
        self.index = {name: f"{settings.alias}_{name}" for name in MAPPINGS}
        self._created = False
        self._records = BackgroundBulk(client, "search_records", self._ensure)

    def _call(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        return guarded(self.settings, func, *args, **kwargs)

    def _ensure(self) -> None:
        if self._created:
            return
        for name, mappings in MAPPINGS.items():
            # 400 is resource_already_exists: another worker or node made it first
            self._call(self.client.indices.create, index=self.index[name], body={"mappings": mappings}, ignore=400)
        self._created = True

    def where(self) -> str:
        return f"{self.settings.url} (indices {self.settings.alias}_events, _profiles, _searches, _sessions)"

    def exists(self) -> bool:
        return bool(self._call(self.client.indices.exists, index=self.index["events"]))

    # --- writing events ----------------------------------------------------------------

    def add(self, events: Sequence[Event], facts_of: FactsOf | None = None) -> Added:
        self._ensure()
        recorded = self._recorded_impressions(events)
        fresh: dict[str, Event] = {}
        for e in events:
            if e.key not in fresh and not (e.action == IMPRESSION and (e.query_id, e.object_id) in recorded):
                fresh[e.key] = e
        stored = self._found(self.index["events"], list(fresh))
        new = [e for key, e in fresh.items() if key not in stored]
        if facts_of is not None and new:
            self._update_profiles(new, facts_of)
        created = self._store_events(new)
        return Added(len(created), len(events) - len(created), tuple(created))

    def _found(self, index: str, ids: list[str]) -> set[str]:
        """The ids among `ids` stored in `index` (a real-time read)."""
        if not ids:
            return set()
        answer = self._call(self.client.mget, index=index, body={"ids": ids}, params={"_source": "false"})
        return {doc["_id"] for doc in answer["docs"] if doc.get("found")}

    def _recorded_impressions(self, events: Sequence[Event]) -> set[tuple[str | None, str | None]]:
        asked = sorted({e.query_id for e in events if e.action == IMPRESSION and e.query_id})
        if not asked:
            return set()
        answer = self._call(self.client.mget, index=self.index["searches"], body={"ids": asked},
                            params={"_source_includes": "shown"})
        return {(doc["_id"], product) for doc in answer["docs"] if doc.get("found")
                for product in doc["_source"].get("shown", [])}

    def _store_events(self, events: list[Event]) -> list[Event]:
        """Create each event (a duplicate's create is refused: 409) and each login's
        session link; the events the cluster created."""
        if not events:
            return []
        arrival = time.time_ns()
        lines: list[dict[str, Any]] = []
        for n, e in enumerate(events):
            lines += [{"create": {"_index": self.index["events"], "_id": e.key}}, {
                "key": e.key, "action": e.action, "ts": e.timestamp, "arrival": arrival + n, "shopper": e.shopper,
                "user_id": e.user_id, "session_id": e.session_id, "client_id": e.client_id, "query_id": e.query_id,
                "object_id": e.object_id, "position": e.position, "document": e.document}]
        logins = {e.session_id: e for e in events if e.user_id and e.session_id}
        for session, e in logins.items():  # the first login of a session is the one kept
            lines += [{"create": {"_index": self.index["sessions"], "_id": session}},
                      {"session_id": session, "user_id": e.user_id, "ts": e.timestamp}]
        items = self._call(self.client.bulk, body=lines)["items"]
        created = []
        for n, item in enumerate(items):
            status, error = item["create"]["status"], item["create"].get("error")
            if status >= 300 and status != 409:
                raise BackendUnavailable(f"OpenSearch refused an event or session document ({status}): {error}")
            if n < len(events) and status < 300:
                created.append(events[n])
        return created

    # --- profiles ----------------------------------------------------------------------

    def _read_profiles(self, shoppers: Sequence[str]) -> dict[str, _Stored]:
        if not shoppers:
            return {}
        answer = self._call(self.client.mget, index=self.index["profiles"], body={"ids": list(shoppers)})
        found = {}
        for doc in answer["docs"]:
            if doc.get("found"):
                source = doc["_source"]
                embedding = base64.b64decode(source["embedding"]) if source.get("embedding") else None
                found[doc["_id"]] = _Stored(load_profile(source["state"], embedding), source.get("applied", []),
                                            source.get("merged", []), doc["_seq_no"], doc["_primary_term"])
        return found

    def _update_profiles(self, events: list[Event], facts_of: FactsOf) -> None:
        engaged = [e for e in events if e.action != IMPRESSION]
        if not engaged:
            return
        facts = facts_of(sorted({e.object_id for e in engaged if e.object_id}))
        shoppers = sorted({s for e in engaged for s in (e.shopper, e.session_id) if s})
        for _ in range(ATTEMPTS):
            batch = _Batch(self._read_profiles(shoppers))
            read = {shopper: stored.profile for shopper, stored in batch.stored.items()}
            book = ProfileBook(read.get, self.half_life_days)
            for e in engaged:
                self._apply(book, batch, e, facts.get(e.object_id or ""))
            if self._write_profiles(book, batch):
                return
        raise BackendUnavailable(f"a shopper's profile changed under {ATTEMPTS} attempts in a row to update it")

    @staticmethod
    def _apply(book: ProfileBook, batch: _Batch, e: Event, facts: Any) -> None:
        shopper = batch.stored.get(e.shopper)
        if shopper is not None and e.key in shopper.applied:  # an earlier attempt or request applied it
            if e.session_id and e.session_id in shopper.merged and e.session_id in batch.stored:
                batch.leftover.add(e.session_id)  # …and folded the session in without deleting it
            return
        session = e.session_id if e.user_id and e.session_id and book.get(e.session_id) is not None else None
        if session is not None:  # the session's applied keys join the user's with its tastes
            before = batch.stored[session].applied if session in batch.stored else []
            batch.applied.setdefault(e.shopper, []).extend(before + batch.applied.pop(session, []))
            batch.merged.setdefault(e.shopper, []).append(session)
        book.apply(e, facts)
        batch.applied.setdefault(e.shopper, []).append(e.key)

    def _write_profiles(self, book: ProfileBook, batch: _Batch) -> bool:
        """The changed profiles, each only over the version read; then the merged-away
        sessions. False: another writer got in first (read and apply again)."""
        lines: list[dict[str, Any]] = []
        for shopper in sorted(book.changed):
            profile = book.profiles[shopper]
            assert profile is not None
            state, embedding = dump_profile(profile)
            before = batch.stored.get(shopper)
            applied = ([] if before is None else before.applied) + batch.applied.get(shopper, [])
            document = {"shopper": shopper, "at": profile.at, "state": state,
                        "embedding": None if embedding is None else base64.b64encode(embedding).decode(),
                        "applied": applied[-APPLIED_KEPT:], "merged": batch.merged.get(shopper, [])}
            lines += [self._versioned("index" if before else "create", shopper, before), document]
        if lines and not self._bulk_profiles(lines):
            return False
        gone = sorted((book.removed | batch.leftover) & set(batch.stored))
        deletes = [self._versioned("delete", s, batch.stored[s]) for s in gone]
        return not deletes or self._bulk_profiles(deletes)

    def _versioned(self, action: str, shopper: str, before: _Stored | None) -> dict[str, Any]:
        meta: dict[str, Any] = {"_index": self.index["profiles"], "_id": shopper}
        if before is not None:
            meta.update(if_seq_no=before.seq_no, if_primary_term=before.primary_term)
        return {action: meta}

    def _bulk_profiles(self, lines: list[dict[str, Any]]) -> bool:
        conflicted = False
        for item in self._call(self.client.bulk, body=lines)["items"]:
            (action, result), = item.items()
            if result["status"] == 409:
                conflicted = True
            elif result["status"] >= 300 and not (action == "delete" and result["status"] == 404):
                raise BackendUnavailable(f"OpenSearch refused a profile ({result['status']}): {result.get('error')}")
        return not conflicted

    def profile(self, user_id: str | None, session_id: str | None = None) -> Profile | None:
        self._ensure()
        if user_id is None and session_id is not None:
            login = self._call(self.client.get, index=self.index["sessions"], id=session_id, ignore=404)
            user_id = login["_source"]["user_id"] if login.get("found") else None
        shopper = user_id or session_id
        if shopper is None:
            return None
        found = self._read_profiles([shopper])
        return found[shopper].profile if shopper in found else None

    # --- searches --------------------------------------------------------------------

    def record_search(self, search: Search, interleaving: Interleaving | None = None) -> None:
        self._records.submit(self.index["searches"], [(search.query_id, {
            "query_id": search.query_id, "ts": search.timestamp, "shopper": search.user_id or search.session_id,
            "user_id": search.user_id, "session_id": search.session_id, "query": search.query,
            "shown": search.shown, "rules": search.rules, "interleaved": interleaving is not None,
            "interleaving": None if interleaving is None else {
                "served": interleaving.served, "candidate": interleaving.candidate, "teams": interleaving.teams}})])

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until the search records queued so far are in the cluster."""
        return self._records.flush(timeout)

    # --- reading the whole log ---------------------------------------------------------

    def _scan(self, name: str, query: dict[str, Any], sort: list[str],
              source: list[str] | None = None) -> Iterator[dict[str, Any]]:
        """Every matching document's source, in `sort` order (fields, ascending; the last
        one unique, so pages neither skip nor repeat a document)."""
        self._ensure()
        self.flush()
        self._call(self.client.indices.refresh, index=self.index[name])
        after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {"query": query, "sort": sort, "size": PAGE, "track_total_hits": False}
            if source is not None:
                body["_source"] = source
            if after is not None:
                body["search_after"] = after
            hits = self._call(self.client.search, index=self.index[name], body=body)["hits"]["hits"]
            yield from (hit["_source"] for hit in hits)
            if len(hits) < PAGE:
                return
            after = hits[-1]["sort"]

    def events(self, since: float = 0.0) -> Iterator[Event]:
        for d in self._scan("events", {"range": {"ts": {"gte": since}}},
                            ["ts", "arrival", "key"]):
            yield Event(d["key"], d["action"], d["ts"], d.get("user_id"), d.get("session_id"), d.get("client_id"),
                        d.get("query_id"), d.get("object_id"), d.get("position"), d.get("document") or {})

    def searches(self, since: float = 0.0) -> Iterator[Search]:
        for d in self._scan("searches", {"range": {"ts": {"gte": since}}}, ["ts", "query_id"]):
            yield Search(d["query_id"], d["ts"], d.get("user_id"), d.get("session_id"), d["query"], d["shown"],
                         d.get("rules") or {})

    def interleavings(self) -> Iterator[Interleaving]:
        for d in self._scan("searches", {"term": {"interleaved": True}}, ["ts", "query_id"],
                            ["query_id", "interleaving"]):
            draft = d["interleaving"]
            yield Interleaving(d["query_id"], draft["served"], draft["candidate"], draft["teams"])

    def clicked(self) -> dict[str, set[str]]:
        query = {"bool": {"filter": [{"term": {"action": "click"}}, {"exists": {"field": "query_id"}},
                                     {"exists": {"field": "object_id"}}]}}
        out: dict[str, set[str]] = {}
        for d in self._scan("events", query, ["key"], ["query_id", "object_id"]):
            out.setdefault(d["query_id"], set()).add(d["object_id"])
        return out

    def linked_sessions(self, user_id: str) -> list[str]:
        return sorted(d["session_id"] for d in self._scan("sessions", {"term": {"user_id": user_id}},
                                                           ["session_id"], ["session_id"]))

    def count(self) -> int:
        self._ensure()
        self._call(self.client.indices.refresh, index=self.index["events"])
        return int(self._call(self.client.count, index=self.index["events"])["count"])

    # --- deleting ----------------------------------------------------------------------

    def _refresh_all(self) -> None:
        """A delete by query sees what a search sees: what was refreshed."""
        self.flush()
        self._call(self.client.indices.refresh, index=",".join(self.index.values()))

    def _delete(self, name: str, query: dict[str, Any]) -> int:
        answer = self._call(self.client.delete_by_query, index=self.index[name], body={"query": query},
                            params={"refresh": "true", "conflicts": "proceed"})
        return int(answer.get("deleted", 0))

    def _expunge(self) -> None:
        """Deleted documents stay in their segments until a merge: merge them out now."""
        self._call(self.client.indices.forcemerge, index=",".join(self.index.values()),
                   params={"only_expunge_deletes": "true"})

    def erase(self, shopper_id: str) -> int:
        self._ensure()
        self._refresh_all()  # a search record still queued must not land after the erase
        ids = [shopper_id, *self.linked_sessions(shopper_id)]
        mine = {"bool": {"should": [{"terms": {name: ids}} for name in _SHOPPER_FIELDS], "minimum_should_match": 1}}
        deleted = sum(self._delete(name, mine) for name in ("events", "searches", "profiles"))
        deleted += self._delete("sessions", {"bool": {"should": [{"terms": {"session_id": ids}},
                                                                 {"terms": {"user_id": ids}}],
                                                      "minimum_should_match": 1}})
        self._expunge()
        return deleted

    def delete_before(self, cutoff: float) -> int:
        self._ensure()
        self._refresh_all()
        old = {"range": {"ts": {"lt": cutoff}}}
        deleted = sum(self._delete(name, old) for name in ("events", "searches", "sessions"))
        deleted += self._delete("profiles", {"bool": {"should": [{"range": {"at": {"lt": cutoff}}},
                                                                 {"bool": {"must_not": {"exists": {"field": "at"}}}}],
                                                      "minimum_should_match": 1}})
        self._expunge()
        return deleted

    def close(self) -> None:
        self.flush(timeout=5.0)
