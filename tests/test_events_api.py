"""The shopper event API through a real server: events in (each bad one named, good ones
kept), searches recorded with what they showed, profiles read, a shopper erased from the
SQLite file itself, and an acknowledged batch surviving kill -9 of every server process."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest


def post(base: str, path: str, body: bytes, content_type: str = "application/json") -> tuple[int, Any]:
    request = urllib.request.Request(base + path, data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def post_events(base: str, events: Any) -> tuple[int, Any]:
    return post(base, "/events", json.dumps(events).encode())


def rows_mentioning(database: Path, text: str) -> list[str]:
    from tests.test_events import stored_rows

    return [r for r in stored_rows(database) if text in r]


@pytest.fixture
def events_server(fresh_index: Path, make_server):  # type: ignore[no-untyped-def]
    return make_server(fresh_index)


def test_a_batch_keeps_its_good_events_and_names_the_bad(events_server, fresh_index: Path) -> None:  # type: ignore[no-untyped-def]
    product = events_server.get("/search?q=chair&k=1")[1]["results"][0]["id"]
    status, body = post_events(events_server.base, [
        {"action_name": "click", "user_id": "u1", "object_id": product, "position": 2},
        {"action_name": "click", "user_id": "u1"},
        {"action_name": "add_to_cart", "session_id": "s1", "event_attributes": {"object": {"object_id": product}}},
        "not an event",
    ])
    assert status == 200
    assert (body["accepted"], body["duplicates"]) == (2, 0)
    assert [e["index"] for e in body["errors"]] == [1, 3]
    assert "object_id" in body["errors"][0]["message"]
    status, again = post_events(events_server.base, {"action_name": "click", "user_id": "u1", "object_id": product,
                                                     "position": 2, "timestamp": "2026-01-01T00:00:00Z"})
    assert status == 200 and again["accepted"] == 1


def test_a_body_that_is_not_events_stores_nothing(events_server, fresh_index: Path) -> None:  # type: ignore[no-untyped-def]
    assert post(events_server.base, "/events", b"{not json")[0] == 400
    status, body = post_events(events_server.base, [{"action_name": "click", "user_id": "u", "object_id": "p"}] * 1001)
    assert status == 400 and body["parameter"] == "body" and "1000" in body["message"]
    assert post_events(events_server.base, 7)[0] == 400
    assert post(events_server.base, "/events", b"[]", "text/plain")[0] == 415
    assert not rows_mentioning(fresh_index / "events.sqlite", "click")


def test_search_records_what_it_showed_and_a_click_shapes_the_profile(events_server, fresh_index: Path) -> None:  # type: ignore[no-untyped-def]
    status, found = events_server.get("/search?q=table&user_id=alice&k=5")
    assert status == 200 and found["results"]
    query_id, shown = found["query_id"], [r["id"] for r in found["results"]]
    status, body = post_events(events_server.base, [
        {"action_name": "impression", "user_id": "alice", "query_id": query_id, "object_id": shown[1], "position": 2},
        {"action_name": "click", "user_id": "alice", "query_id": query_id, "object_id": shown[1], "position": 2}])
    assert (body["accepted"], body["duplicates"]) == (1, 1)  # the server had recorded the impression
    status, profile = events_server.get("/users/alice/profile")
    assert status == 200 and profile["event_counts"] == {"click": 1}
    assert profile["brands"][0]["value"] == found["results"][1].get("brand", profile["brands"][0]["value"])
    assert profile["has_embedding"] and profile["evidence"] > 0
    status, nobody = events_server.get("/users/nobody/profile")
    assert status == 200 and nobody["evidence"] == 0 and nobody["brands"] == [] and nobody["event_counts"] == {}


def test_erasing_a_shopper_leaves_nothing_in_the_store(events_server, fresh_index: Path) -> None:  # type: ignore[no-untyped-def]
    events_server.get("/search?q=lamp&session_id=carol-session")
    post_events(events_server.base, [
        {"action_name": "click", "session_id": "carol-session", "object_id": "SR-000001"},
        {"action_name": "purchase", "session_id": "carol-session", "user_id": "carol", "object_id": "SR-000002"},
        {"action_name": "click", "user_id": "dave", "object_id": "SR-000001"}])
    assert events_server.get("/users/carol/profile")[1]["evidence"] > 0
    status, _ = events_server.get("/users/carol", method="DELETE")
    assert status == 204
    assert events_server.get("/users/carol/profile")[1]["evidence"] == 0
    database = fresh_index / "events.sqlite"
    assert not rows_mentioning(database, "carol") and rows_mentioning(database, "dave")


def test_acknowledged_events_survive_kill_9(events_server, fresh_index: Path) -> None:  # type: ignore[no-untyped-def]
    status, body = post_events(events_server.base, [
        {"action_name": "click", "user_id": f"shopper-{i}", "object_id": "SR-000001"} for i in range(200)])
    assert status == 200 and body["accepted"] == 200
    master = events_server.process.pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    for pid in [master, *map(int, children)]:
        os.kill(pid, signal.SIGKILL)
    events_server.process.wait(timeout=10)
    db = sqlite3.connect(fresh_index / "events.sqlite")
    assert db.execute("SELECT count(*) FROM events WHERE action = 'click'").fetchone()[0] == 200
    assert db.execute("SELECT count(*) FROM profiles").fetchone()[0] == 200
    db.close()
