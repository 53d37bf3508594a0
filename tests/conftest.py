"""Fixtures that build real things once per session and share them between modules: the
exported ONNX models, a real tantivy+faiss index of the demo catalog on disk, a real
server process on a free local port, and one evaluate + train run on made-up judgments
for every test that needs a trained model. A test that changes an index gets a copy of
its own (`fresh_index`: a directory copy, milliseconds)."""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["tests.shopper_stores"]  # make_store: each shopper store contract test on both stores

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
HOME_DEPOT = SHARED / "data" / "home-depot"
DEMO_SIZE = 600
TRAIN_DEPTH = 50


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


def copy_data_dir(source: Path, target: Path) -> Path:
    """A data dir of its own with the same generation(s), in milliseconds."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".writer.lock"))
    return target


@pytest.fixture(scope="session")
def demo_index(tmp_path_factory: pytest.TempPathFactory, models_dir: Path, demo_catalog: Path) -> Path:
    """A data dir holding one generation of the demo catalog; tests must not modify it."""
    data_dir = tmp_path_factory.mktemp("data")
    index_catalog(data_dir, demo_catalog)
    return data_dir


@pytest.fixture(scope="session")
def demo_reader(demo_index: Path):  # type: ignore[no-untyped-def]
    from indexer.backends import EmbeddedBackend
    from indexer.mapping import load_definition

    return EmbeddedBackend(demo_index, load_definition()).reader()


@pytest.fixture(scope="session")
def shipped_encoder(models_dir: Path, demo_reader):  # type: ignore[no-untyped-def]
    from indexer.encoder import TextEncoder

    return TextEncoder(models_dir, demo_reader.encoder_variant)


@pytest.fixture(scope="session")
def demo_pipeline(demo_reader, shipped_encoder):  # type: ignore[no-untyped-def]
    """The search pipeline as a server without a model runs it, query correction on."""
    from ranker.pipeline import SearchPipeline
    from ranker.spelling import query_corrector

    return SearchPipeline(demo_reader, shipped_encoder, corrector=query_corrector(demo_reader))


@pytest.fixture
def fresh_index(tmp_path: Path, demo_index: Path) -> Path:
    """A data dir of this test's own (a copy of the demo index), free to reindex, roll back, break."""
    return copy_data_dir(demo_index, tmp_path / "data")


def write_judgments(path: Path, products: list[dict[str, Any]], queries: int = 120, seed: int = 3) -> Path:
    """Judgments made up from the catalog itself: a title query's own product is a perfect
    match (3), same-category products partial (2), others irrelevant (1)."""
    rng = random.Random(seed)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["query", "product_id", "relevance"])
        for product in rng.sample(products, queries):
            query = " ".join(product["title"].split()[1:]).lower()  # drop the brand
            writer.writerow([query, product["id"], 3])
            same = [p for p in products if p["category"] == product["category"] and p["id"] != product["id"]]
            for other in rng.sample(same, 3):
                writer.writerow([query, other["id"], 2])
            for other in rng.sample(products, 3):
                if other["category"] != product["category"]:
                    writer.writerow([query, other["id"], 1])
    return path


@pytest.fixture(scope="session")
def judgments(tmp_path_factory: pytest.TempPathFactory, demo_products: list[dict[str, Any]]) -> Path:
    return write_judgments(tmp_path_factory.mktemp("judgments") / "judgments.csv", demo_products)


@dataclass(frozen=True)
class Trained:
    """The demo index after `ranker evaluate` and `ranker train` (what each printed, the
    model's meta); tests must not modify `data_dir` (copy it)."""

    data_dir: Path
    evaluation: dict[str, Any]
    evaluate_output: str
    train_output: str
    meta: dict[str, Any]
    model: Path


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, demo_index: Path, judgments: Path) -> Trained:
    """One cross-validated evaluation (2 folds) and one training run, with the neural
    scorer and the tuned query encoder, shared by every test that needs a model."""
    import contextlib
    import io

    from ranker.__main__ import main

    data_dir = copy_data_dir(demo_index, tmp_path_factory.mktemp("trained") / "data")
    common = ["--judgments", str(judgments), "--data-dir", str(data_dir), "--depth", str(TRAIN_DEPTH)]
    outputs = []
    for command in (["evaluate", "--folds", "2", "--serve-depths", "30", "--json", str(data_dir / "evaluation.json")],
                    ["train"]):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            assert main([command[0], *common, *command[1:]]) == 0, err.getvalue()
        outputs.append(out.getvalue() + err.getvalue())
    from ranker.rerank import latest_model, meta_path

    model = latest_model(data_dir)
    assert model is not None
    return Trained(data_dir, json.loads((data_dir / "evaluation.json").read_text()), outputs[0], outputs[1],
                   json.loads(meta_path(model).read_text()), model)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 10.0, method: str = "GET") -> tuple[int, Any]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
            status = response.status
            ctype = response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as err:
        body, status, ctype = err.read(), err.code, err.headers.get("Content-Type", "")
    return status, json.loads(body) if "json" in ctype else body.decode()


class Server:
    def __init__(self, data_dir: Path, workers: int = 2, env: dict[str, str] | None = None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "web", "--data-dir", str(data_dir), "--port", str(self.port),
             "--workers", str(workers)],
            cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
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

    def get(self, path: str, method: str = "GET") -> tuple[int, Any]:
        return http_get(self.base + path, method=method)

    def output(self) -> str:
        """What the server logged (only once it has stopped)."""
        return self.process.stdout.read() if self.process.stdout else ""

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

    def start(data_dir: Path, workers: int = 2, env: dict[str, str] | None = None) -> Server:
        srv = Server(data_dir, workers, env)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()
