"""A reindex killed at any moment leaves the serving generation intact, and a running
server switches generations without failing a single request."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from indexer.demo_catalog import write_demo_catalog
from indexer.store.generations import read_pointer
from tests.conftest import ROOT, index_catalog


def start_reindex(data_dir: Path, catalog: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "indexer", "reindex", "--catalog", str(catalog), "--data-dir", str(data_dir), "-q"],
        cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def kill_when(process: subprocess.Popen, condition: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"reindex finished before the kill point: {process.stderr.read() if process.stderr else ''}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("kill point not reached in time")
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait()


@pytest.mark.slow
def test_killed_reindex_leaves_serving_generation_usable(fresh_index: Path, tmp_path: Path, make_server) -> None:  # type: ignore[no-untyped-def]
    serving = read_pointer(fresh_index)
    server = make_server(fresh_index, workers=1)
    catalog = write_demo_catalog(tmp_path / "bigger.jsonl", size=2_500, seed=99)
    generations = fresh_index / "generations"

    kill_points = {
        "while encoding": lambda: (fresh_index / "embeddings.sqlite-wal").exists()
        and (fresh_index / "embeddings.sqlite-wal").stat().st_size > 0,
        "while writing the new generation": lambda: any(generations.glob(".building-*/tantivy")),
        "after sealing, before the switch": lambda: any(
            p.name != serving.current for p in generations.glob("g-*")),
    }
    for _where, condition in kill_points.items():
        kill_when(start_reindex(fresh_index, catalog), condition)
        assert read_pointer(fresh_index) == serving
        status, body = server.get("/search?q=sofa&k=5")
        assert status == 200 and body["generation"] == serving.current and body["results"]
        assert server.get("/healthz")[1]["documents"] == 600

    # The next reindex cleans up, resumes from the cache and completes.
    process = start_reindex(fresh_index, catalog)
    assert process.wait(timeout=300) == 0, process.stderr.read() if process.stderr else ""
    assert not list(generations.glob(".building-*"))
    assert read_pointer(fresh_index).previous == serving.current
    deadline = time.monotonic() + 10
    while server.get("/healthz")[1]["documents"] != 2_500:
        assert time.monotonic() < deadline, "server did not pick up the new generation"
        time.sleep(0.05)


@pytest.mark.slow
def test_queries_keep_succeeding_while_generations_switch(fresh_index: Path, tmp_path: Path, demo_catalog: Path,
                                                          make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server(fresh_index, workers=2)
    first = read_pointer(fresh_index).current
    statuses: list[int] = []
    generations_seen: set[str] = set()
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            status, body = server.get("/search?q=quokka+lamp&k=5")
            statuses.append(status)
            if status == 200:
                generations_seen.add(body["generation"])

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        updated = tmp_path / "updated.jsonl"
        lines = demo_catalog.read_text().splitlines()
        lines.append(json.dumps({"id": "NEW-1", "title": "Quokka Lamp", "brand": "Lumiere", "price": 40.0}))
        updated.write_text("\n".join(lines) + "\n")
        index_catalog(fresh_index, updated)
        second = read_pointer(fresh_index).current
        deadline = time.monotonic() + 15
        while second not in generations_seen:
            assert time.monotonic() < deadline, "new generation never served"
            time.sleep(0.05)
        # some worker serves the new generation; the other may take a moment longer, so ask
        # until an answer comes from it (a worker answering from it must have NEW-1)
        _status, body = server.get("/search?q=quokka+lamp&k=1")
        while body["generation"] != second:
            assert time.monotonic() < deadline, "new generation never served by the asked worker"
            time.sleep(0.05)
            _status, body = server.get("/search?q=quokka+lamp&k=1")
        assert body["results"][0]["id"] == "NEW-1"
        from indexer.__main__ import main

        assert main(["rollback", "--data-dir", str(fresh_index)]) == 0
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert len(statuses) > 50
    assert set(statuses) == {200}, f"failed requests: {[s for s in statuses if s != 200][:5]}"
    assert {first, second} <= generations_seen
    assert server.get("/healthz")[1]["generation"] == first
