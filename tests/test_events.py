"""Shopper events: the UBI format and the shorthand in, every bad field named, each event
stored once, erased completely, and an acknowledged batch surviving kill -9."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ranker.events.schema import EventError, parse_event
from ranker.events.store import EventStore, Search

ROOT = Path(__file__).resolve().parents[1]
UBI_SAMPLE = ROOT.parent / "shared" / "data" / "ubi-sample" / "ubi_queries_events.ndjson"


def ubi_events() -> list[dict]:
    if not UBI_SAMPLE.exists():
        pytest.skip("the UBI sample is not here (../shared/data/ubi-sample)")
    lines = [json.loads(line) for line in UBI_SAMPLE.read_text().splitlines() if line.strip()]
    return [doc for meta, doc in zip(lines[::2], lines[1::2], strict=True) if meta["index"]["_index"] == "ubi_events"]


def test_the_ubi_sample_reads_as_events() -> None:
    """The generator writes 0-based ordinals; ShopRank's positions are 1-based, so the
    sample's are shifted once here, as a client converting its positions would."""
    docs = ubi_events()
    events = []
    for doc in docs:
        position = (doc.get("event_attributes") or {}).get("position")
        if position and position.get("ordinal") is not None:
            position["ordinal"] += 1
        events.append(parse_event(doc))
    assert len(events) == len(docs)
    clicks = [e for e in events if e.action == "click"]
    assert clicks and all(e.object_id and e.session_id for e in clicks)
    assert {e.action for e in events} >= {"impression", "click", "add_to_cart", "purchase"}


def test_the_shorthand_is_the_same_event() -> None:
    flat = parse_event({"action_name": "click", "user_id": "u1", "object_id": "SR-1", "position": 3,
                        "query_id": "q1", "timestamp": "2026-12-02T10:00:00Z"})
    ubi = parse_event({"action_name": "click", "user_id": "u1", "query_id": "q1", "timestamp": "2026-12-02T10:00:00Z",
                       "event_attributes": {"object": {"object_id": "SR-1"}, "position": {"ordinal": 3}}})
    assert (flat.key, flat.object_id, flat.position, flat.timestamp) == (ubi.key, ubi.object_id, ubi.position,
                                                                         ubi.timestamp)
    assert flat.shopper == "u1"


@pytest.mark.parametrize(("raw", "field"), [
    ([], "event"),
    ({"user_id": "u"}, "action_name"),
    ({"action_name": "click", "object_id": "p"}, "user_id"),
    ({"action_name": "click", "user_id": "u"}, "event_attributes.object.object_id"),
    ({"action_name": "click", "user_id": "u", "object_id": 7}, "object_id"),
    ({"action_name": "click", "user_id": "u", "object_id": "p", "position": 0}, "position"),
    ({"action_name": "click", "user_id": "u", "object_id": "p", "position": True}, "position"),
    ({"action_name": "click", "user_id": "u", "object_id": "p", "event_attributes": {"position": {"ordinal": "2"}}},
     "event_attributes.position.ordinal"),
    ({"action_name": "click", "user_id": "u", "object_id": "p", "timestamp": "yesterday"}, "timestamp"),
    ({"action_name": "click", "user_id": "u\n", "object_id": "p"}, "user_id"),
    ({"action_name": "click", "session_id": "x" * 129, "object_id": "p"}, "session_id"),
    ({"action_name": "click", "user_id": "u", "event_attributes": "p"}, "event_attributes"),
])
def test_a_bad_event_names_its_field(raw: object, field: str) -> None:
    with pytest.raises(EventError) as caught:
        parse_event(raw)
    assert caught.value.field == field


def test_other_actions_need_no_product() -> None:
    assert parse_event({"action_name": "page_exit", "session_id": "s"}).object_id is None


def click(**extra: object) -> dict:
    return {"action_name": "click", "user_id": "u1", "object_id": "SR-1", "timestamp": "2026-12-02T10:00:00Z",
            **extra}


def test_each_event_is_stored_once(make_store) -> None:  # type: ignore[no-untyped-def]
    store = make_store()
    first = store.add([parse_event(click()), parse_event(click(event_id="e1")), parse_event(click(object_id="SR-2"))])
    assert (first.accepted, first.duplicates) == (3, 0)
    again = store.add([parse_event(click()), parse_event(click(event_id="e1", object_id="SR-9"))])
    assert (again.accepted, again.duplicates) == (0, 2)  # same content; same event_id whatever the content
    later = store.add([parse_event(click(timestamp="2026-12-02T10:00:01Z"))])
    assert later.accepted == 1 and store.count() == 4


def test_an_impression_the_server_recorded_is_a_duplicate(make_store) -> None:  # type: ignore[no-untyped-def]
    store = make_store()
    store.record_search(Search("q1", time.time(), "u1", None, "oak table", ["SR-1", "SR-2"]))
    flushed(store)
    sent = store.add([parse_event({"action_name": "impression", "user_id": "u1", "query_id": "q1",
                                   "object_id": "SR-2", "event_id": "client-made", "position": 2}),
                      parse_event({"action_name": "impression", "user_id": "u1", "query_id": "q1",
                                   "object_id": "SR-7", "position": 3})])
    assert (sent.accepted, sent.duplicates) == (1, 1)
    shown = [e for e in store.events() if e.action == "impression"]
    assert [(e.object_id, e.position) for e in shown] == [("SR-7", 3)]  # the client's, of a product not recorded
    assert [s.shown for s in store.searches()] == [["SR-1", "SR-2"]]  # the server's, once
    assert [s.shown for s in store.searches()] == [["SR-1", "SR-2"]]


def test_erase_leaves_nothing_of_the_shopper_or_their_sessions(make_store) -> None:  # type: ignore[no-untyped-def]
    from tests.shopper_stores import stored_text

    store = make_store()
    store.add([parse_event({"action_name": "click", "session_id": "s-before-login", "object_id": "SR-1"}),
               parse_event({"action_name": "click", "session_id": "s-before-login", "user_id": "alice",
                            "object_id": "SR-2"}),
               parse_event({"action_name": "purchase", "user_id": "alice", "object_id": "SR-3"}),
               parse_event({"action_name": "click", "user_id": "bob", "object_id": "SR-1"})], facts)
    store.record_search(Search("q-alice", time.time(), "alice", None, "sofa", ["SR-1"]))
    store.record_search(Search("q-session", time.time(), None, "s-before-login", "lamp", ["SR-4"]))
    assert store.linked_sessions("alice") == ["s-before-login"]
    assert store.erase("alice") > 0
    kept = stored_text(store)
    assert kept and all("alice" not in r and "s-before-login" not in r for r in kept)
    assert any("bob" in r for r in kept)
    assert store.profile("alice") is None and store.profile(None, "s-before-login") is None
    assert store.profile("bob") is not None


def flushed(store) -> None:  # type: ignore[no-untyped-def]
    """The cluster writes search records in the background: wait for them."""
    if hasattr(store, "flush"):
        assert store.flush()


def stored_rows(path: Path) -> list[str]:
    """Every row of the event store and of its search records, read from the files."""
    from ranker.events.store import searches_path

    rows = []
    for file, tables in ((path, ("events", "profiles")), (searches_path(path), ("searches", "interleavings"))):
        if file.exists():
            raw = sqlite3.connect(file)
            rows += [" ".join(map(str, r)) for t in tables for r in raw.execute(f"SELECT * FROM {t}")]
            raw.close()
    return rows


def test_retention_deletes_old_events(make_store) -> None:  # type: ignore[no-untyped-def]
    store = make_store()
    store.add([parse_event(click(timestamp="2025-01-01T00:00:00Z")), parse_event(click())])
    assert store.delete_before(time.time() - 86400 * 365) == 1
    assert [e.timestamp for e in store.events()] == [parse_event(click()).timestamp]



def test_the_retention_command_deletes_old_events_and_the_profiles_built_only_from_them(  # type: ignore[no-untyped-def]
        tmp_path: Path, capsys, make_store) -> None:
    from ranker.__main__ import main

    store = make_store()
    store.add([parse_event(click(user_id="gone", timestamp="2025-01-01T00:00:00Z")),
               parse_event(click(user_id="kept", timestamp="2025-01-01T00:00:00Z")),
               parse_event(click(user_id="kept", object_id="SR-2", timestamp=time.time() * 1000))], facts)
    assert main(["retention", "--data-dir", str(tmp_path)]) == 1  # no period given: nothing deleted
    assert "SHOPRANK_EVENTS_RETENTION_DAYS" in capsys.readouterr().err and store.count() == 3
    assert main(["retention", "--days", "30", "--data-dir", str(tmp_path)]) == 0
    assert "1 remain" in capsys.readouterr().out
    assert [e.user_id for e in store.events()] == ["kept"]
    assert store.profile("gone") is None and store.profile("kept") is not None


WRITER = """
import sys, time
from pathlib import Path
from ranker.events.schema import parse_event
from ranker.events.store import EventStore
store = EventStore(Path(sys.argv[1]))
added = store.add([parse_event({"action_name": "click", "user_id": f"u{i}", "object_id": "SR-1"}) for i in range(100)])
print(added.accepted, flush=True)
time.sleep(60)
"""


def test_an_acknowledged_batch_survives_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "100"  # acknowledged
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=10)
    assert EventStore(path).count() == 100


def test_ubi_clients_ids_and_epoch_milliseconds_are_read() -> None:
    event = parse_event({"action_name": "click", "client_id": "browser-1", "object_id": "p",
                         "timestamp": 1717527762025})
    assert (event.shopper, event.client_id, event.timestamp) == ("browser-1", "browser-1", 1717527762.025)
    nested = parse_event({"action_name": "click", "client_id": "b", "object_id": "p",
                          "event_attributes": {"session_id": "s-9"}})
    assert nested.shopper == "s-9"


def facts(ids):  # type: ignore[no-untyped-def]
    from ranker.events.profile import ProductFacts

    known = {"SR-1": ProductFacts("Acme", "Furniture > Tables", {"material": "oak"}, 120.0, None),
             "SR-2": ProductFacts("Steelco", "Furniture > Chairs", {}, 40.0, None)}
    return {i: known[i] for i in ids if i in known}


def test_an_event_is_in_the_profile_once_it_is_acknowledged(make_store) -> None:  # type: ignore[no-untyped-def]
    store = make_store()
    store.add([parse_event(click()), parse_event(click(action_name="purchase", object_id="SR-2"))], facts)
    store.add([parse_event(click())], facts)  # a duplicate: the profile does not count it again
    store.add([parse_event(click(action_name="impression", query_id="q", object_id="SR-2"))], facts)
    profile = make_store().profile("u1")  # another process's (or node's) view
    assert profile is not None
    assert profile.counts == {"click": 1, "purchase": 1}  # impressions say nothing of taste
    assert profile.shares(profile.brands) == pytest.approx({"Acme": 1 / 6, "Steelco": 5 / 6})
    assert store.profile(None, "nobody") is None and store.profile(None) is None


def test_a_session_that_logs_in_brings_its_tastes(make_store) -> None:  # type: ignore[no-untyped-def]
    store = make_store()
    store.add([parse_event({"action_name": "click", "session_id": "s1", "object_id": "SR-1"})], facts)
    assert store.profile(None, "s1").brands == {"Acme": 1.0}  # type: ignore[union-attr]
    store.add([parse_event({"action_name": "click", "session_id": "s1", "user_id": "alice", "object_id": "SR-2"})],
              facts)
    alice = store.profile("alice")
    assert alice is not None and set(alice.brands) == {"Acme", "Steelco"}
    assert store.profile(None, "s1").brands == alice.brands  # type: ignore[union-attr]  # the session is alice now
    store.erase("alice")
    assert store.profile("alice") is None and store.profile(None, "s1") is None


def test_two_writers_at_once_lose_no_profile_update(make_store) -> None:  # type: ignore[no-untyped-def]
    """Two workers (or two web nodes) adding events for one shopper at the same time."""
    import threading

    def send(writer: int) -> None:
        store = make_store()
        for i in range(12):
            store.add([parse_event(click(event_id=f"w{writer}-{i}", object_id=f"SR-{1 + i % 2}"))], facts)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    profile = make_store().profile("u1")
    assert profile is not None and profile.counts == {"click": 24}
    assert profile.shares(profile.brands) == pytest.approx({"Acme": 0.5, "Steelco": 0.5})


def test_a_batch_retried_after_only_its_profiles_were_written_counts_once(make_store) -> None:  # type: ignore[no-untyped-def]
    """The cluster store writes profiles before events: a node dying between the two
    leaves events that a retry stores without adding them to the profile again."""
    from ranker.events.cluster_store import ClusterShopperStore

    store = make_store()
    if not isinstance(store, ClusterShopperStore):
        pytest.skip("the SQLite store writes both in one transaction")
    batch = [parse_event(click()), parse_event(click(action_name="purchase", object_id="SR-2"))]
    store._update_profiles(batch, facts)  # …and the node dies before storing the events
    assert store.count() == 0
    added = store.add(batch, facts)  # the client's retry
    assert (added.accepted, added.duplicates) == (2, 0)
    assert store.profile("u1").counts == {"click": 1, "purchase": 1}


def test_the_whole_log_reads_back_in_time_order(make_store) -> None:  # type: ignore[no-untyped-def]
    """What training replays and the interleaving report reads: events by time (a late
    arrival in its place), searches by time, interleaving drafts and the clicks after
    each search."""
    from ranker.interleave import Interleaving

    store = make_store()
    store.record_search(Search("q-late", 2000.0, "u1", None, "lamp", ["SR-3", "SR-1"], {"r-1": ["SR-3"]}),
                        Interleaving("q-late", "v1", "v2", {"SR-3": "served", "SR-1": "candidate"}))
    store.record_search(Search("q-early", 1000.0, None, "s1", "desk", ["SR-2"]))
    store.add([parse_event(click(query_id="q-late", object_id="SR-1", timestamp=2001.5 * 1000)),
               parse_event(click(query_id="q-early", object_id="SR-2", timestamp=1001.0 * 1000, user_id=None,
                                 session_id="s1")),
               parse_event(click(action_name="purchase", object_id="SR-1", timestamp=2002.0 * 1000))], facts)
    flushed(store)
    assert [(e.action, e.timestamp) for e in store.events()] == [("click", 1001.0), ("click", 2001.5),
                                                                  ("purchase", 2002.0)]
    assert [e.timestamp for e in store.events(since=2000.0)] == [2001.5, 2002.0]
    assert [(s.query_id, s.shown, s.session_id, s.rules) for s in store.searches()] == [
        ("q-early", ["SR-2"], "s1", {}), ("q-late", ["SR-3", "SR-1"], None, {"r-1": ["SR-3"]})]
    (draft,) = store.interleavings()
    assert (draft.query_id, draft.served, draft.candidate, draft.teams) == (
        "q-late", "v1", "v2", {"SR-3": "served", "SR-1": "candidate"})
    assert store.clicked() == {"q-late": {"SR-1"}, "q-early": {"SR-2"}}
    assert store.count() == 3 and store.exists()
