"""Fixtures that build real things: the exported ONNX models, a real tantivy+faiss index
on disk, and a real server process on a free local port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
HOME_DEPOT = SHARED / "data" / "home-depot"
DEMO_SIZE = 600


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """Exported once into .cache/ (git-ignored) and reused by later runs."""
    from indexer.model_export import export_models

    path = ROOT / ".cache" / "models"
    export_models(path)
    os.environ["SHOPRANK_MODELS"] = str(path)  # subprocesses share it too
    return path


@pytest.fixture(scope="session")
def demo_products() -> list[dict[str, Any]]:
    from indexer.demo_catalog import generate

    return generate(DEMO_SIZE, seed=7)


@pytest.fixture(scope="session")
def demo_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from indexer.demo_catalog import write_demo_catalog

    return write_demo_catalog(tmp_path_factory.mktemp("catalog") / "demo.jsonl", size=DEMO_SIZE, seed=7)


def index_catalog(data_dir: Path, catalog: Path) -> None:
    from indexer.__main__ import main

    assert main(["reindex", "--catalog", str(catalog), "--data-dir", str(data_dir), "--quiet"]) == 0


@pytest.fixture(scope="session")
def demo_index(tmp_path_factory: pytest.TempPathFactory, models_dir: Path, demo_catalog: Path) -> Path:
    """A data dir holding one generation of the demo catalog; tests must not modify it."""
    data_dir = tmp_path_factory.mktemp("data")
    index_catalog(data_dir, demo_catalog)
    return data_dir


@pytest.fixture(scope="session")
def demo_reader(demo_index: Path):  # type: ignore[no-untyped-def]
    from indexer.generations import current_generation_dir
    from indexer.mapping import load_definition
    from indexer.store.embedded import EmbeddedReader

    return EmbeddedReader(current_generation_dir(demo_index), load_definition())


@pytest.fixture(scope="session")
def demo_searcher(demo_reader, models_dir: Path):  # type: ignore[no-untyped-def]
    from indexer.encoder import TextEncoder
    from ranker.recall import HybridSearcher

    return HybridSearcher(demo_reader, TextEncoder(models_dir, demo_reader.encoder_variant))


@pytest.fixture
def fresh_index(tmp_path: Path, models_dir: Path, demo_catalog: Path) -> Path:
    """A data dir of this test's own, indexed once, free to reindex, roll back, break."""
    index_catalog(tmp_path, demo_catalog)
    return tmp_path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 10.0) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read()
            status = response.status
            ctype = response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as err:
        body, status, ctype = err.read(), err.code, err.headers.get("Content-Type", "")
    return status, json.loads(body) if "json" in ctype else body.decode()


class Server:
    def __init__(self, data_dir: Path, workers: int = 2):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "web", "--data-dir", str(data_dir), "--port", str(self.port),
             "--workers", str(workers)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.process.stdout.read() if self.process.stdout else ''}")
            try:
                status, _ = http_get(self.base + "/openapi.json", timeout=1)
                if status == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("server did not start in 60 s")

    def get(self, path: str) -> tuple[int, Any]:
        return http_get(self.base + path)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="session")
def server(demo_index: Path) -> Iterator[Server]:
    srv = Server(demo_index)
    yield srv
    srv.stop()


@pytest.fixture
def make_server() -> Iterator[Any]:
    started: list[Server] = []

    def start(data_dir: Path, workers: int = 2) -> Server:
        srv = Server(data_dir, workers)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()
