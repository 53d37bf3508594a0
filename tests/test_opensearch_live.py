"""The OpenSearch backend against a real cluster (OPENSEARCH_URL; `.ci/run` starts two
nodes with `python -m indexer opensearch-dev start` and sizes the index at two shards and
one replica): the same catalog on both backends gives the same totals and facets, close
BM25, the same non-BM25 features, and a reindex under load fails no search."""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from indexer.__main__ import EXIT_OK
from indexer.__main__ import main as indexer_main
from indexer.store.base import Filters, TextQuery

pytestmark = pytest.mark.skipif(
    not os.environ.get("OPENSEARCH_URL"),
    reason="OPENSEARCH_URL is not set: start a cluster with `python -m indexer opensearch-dev start`")

# Each shard scores with its own term statistics: on the demo catalog over two shards
# the per-field BM25 was 0.87-1.16 times ours (docs/opensearch.md).
RELATIVE_BM25 = 0.25
QUERIES = ("wireless speaker", "gray velvet sofa", "espresso machine", "running shoes", "desk lamp", "cordless drill")
FILTERS = (Filters(), Filters(category="Electronics"), Filters(price_max=150, in_stock=True),
           Filters(brands=("Sonora",)), Filters(attributes=(("color", ("black",)),)))


@pytest.fixture(scope="module")
def cluster_index(tmp_path_factory: pytest.TempPathFactory, demo_catalog: Path, demo_reader,  # type: ignore[no-untyped-def]
                  shipped_encoder) -> Iterator[Path]:
    """The demo catalog in the cluster, under an alias of this module's own (the embedded
    fixtures it compares with are opened first, before the environment names OpenSearch)."""
    from indexer.backends import open_backend

    data_dir = tmp_path_factory.mktemp("opensearch-live")
    alias = f"shoprank-live-{secrets.token_hex(4)}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SHOPRANK_BACKEND", "opensearch")
        env.setenv("OPENSEARCH_ALIAS", alias)
        assert indexer_main(["reindex", "--catalog", str(demo_catalog), "--data-dir", str(data_dir), "-q"]) == EXIT_OK
        yield data_dir
        open_backend(data_dir).client.indices.delete(index=f"{alias}-*", ignore_unavailable=True)


@pytest.fixture(scope="module")
def cluster_reader(cluster_index: Path):  # type: ignore[no-untyped-def]
    from indexer.backends import open_backend

    return open_backend(cluster_index).reader()


def test_the_index_is_spread_as_configured(cluster_reader) -> None:  # type: ignore[no-untyped-def]
    """The reindex switched only once every copy was started (the writer waits for them)."""
    shards = cluster_reader.client.cat.shards(index=cluster_reader.generation, format="json")
    primaries = [s for s in shards if s["prirep"] == "p"]
    wanted_shards = int(os.environ.get("OPENSEARCH_SHARDS") or 1)
    wanted_replicas = int(os.environ.get("OPENSEARCH_REPLICAS") or 0)
    assert len(primaries) == wanted_shards and len(shards) == wanted_shards * (1 + wanted_replicas)
    assert all(s["state"] == "STARTED" for s in shards), [(s["shard"], s["prirep"], s["state"]) for s in shards]
    if wanted_replicas:
        assert len({s["node"] for s in shards}) >= 2  # a replica never shares its primary's node


def test_totals_and_facets_equal_the_embedded_backend(cluster_reader, demo_reader, shipped_encoder) -> None:  # type: ignore[no-untyped-def]
    """The matching set is the text matches plus the vector candidates, on both backends."""
    matching = 0
    for query in QUERIES:
        vector_candidates = [h.id for h in demo_reader.knn(shipped_encoder.encode_query(query), 30, Filters())]
        for filters in FILTERS:
            for ids, text in (([], query), (vector_candidates, query), ([], TextQuery(query, (), "3<-1 6<-2")),
                              (vector_candidates, TextQuery(query, ("sofa",), "100%"))):
                local = demo_reader.match_summary(text, ids, filters)
                remote = cluster_reader.match_summary(text, ids, filters)
                assert remote.total == local.total, (text, filters, len(ids))
                matching += local.total > 0
                for facet, buckets in local.facets.items():
                    assert ({(b.value, b.count) for b in remote.facets[facet]}
                            == {(b.value, b.count) for b in buckets}), (query, filters, facet)
    assert matching >= len(QUERIES) * len(FILTERS)  # most searches match something: not a comparison of empties


def test_knn_similarities_and_value_counts_equal_the_embedded_backend(cluster_reader, demo_reader,  # type: ignore[no-untyped-def]
                                                                     shipped_encoder) -> None:
    """The same similarity threshold means the same on both backends, and query
    understanding reads the same vocabulary from each."""
    for query in QUERIES:
        vector = shipped_encoder.encode_query(query)
        local = {h.id: h.score for h in demo_reader.knn(vector, 20, Filters())}
        remote = {h.id: h.score for h in cluster_reader.knn(vector, 20, Filters())}
        shared = set(local) & set(remote)
        assert len(shared) >= 15 and all(abs(local[i] - remote[i]) < 1e-3 for i in shared), query
    assert cluster_reader.value_counts() == demo_reader.value_counts()


def test_did_you_mean_and_sort_on_the_cluster(cluster_reader, demo_reader, shipped_encoder) -> None:  # type: ignore[no-untyped-def]
    """The cluster's pipeline (its own server-side fusion where it has one) offers the same
    "did you mean" as the embedded one, and sorts the same matching set."""
    from ranker.pipeline import SearchPipeline
    from ranker.request import SearchRequest
    from ranker.spelling import query_corrector
    from ranker.suggest import Suggester

    pipelines = []
    for reader in (cluster_reader, demo_reader):
        corrector = query_corrector(reader)
        assert corrector is not None
        pipelines.append(SearchPipeline(reader, shipped_encoder, suggester=Suggester(corrector.counts, None, corrector)))
    for pipeline in pipelines:
        assert pipeline.search(SearchRequest("sfa")).did_you_mean == "sofa"
        assert pipeline.search(SearchRequest("sofa")).did_you_mean is None
    remote, local = (p.search(SearchRequest("sofa", k=50, sort="price_asc")) for p in pipelines)
    assert remote.total == local.total
    assert [r["price"] for r in remote.results] == [r["price"] for r in local.results]


def test_bm25_ranks_close_to_the_embedded_backend(cluster_reader, demo_reader) -> None:  # type: ignore[no-untyped-def]
    """The same documents match; the order differs only where scores are close: each
    shard scores with its own term statistics (two shards here), which
    `dfs_query_then_fetch` would make global at the cost of a round trip. The demo
    catalog's generated titles tie often, and ties break by segment order, so the test
    asks of every product in OpenSearch's top 10 that our own BM25 scores it close to our
    10th best, not that the two lists agree rank by rank."""
    for query in QUERIES:
        precise = TextQuery(query, (), "3<-1 6<-2")
        assert ({h.id for h in cluster_reader.bm25(precise, 1000, Filters())}
                == {h.id for h in demo_reader.bm25(precise, 1000, Filters())}), query
        local = demo_reader.bm25(query, 1000, Filters())
        remote = cluster_reader.bm25(query, 1000, Filters())
        assert {h.id for h in remote} == {h.id for h in local}, query
        ours = {h.id: h.score for h in local}
        tenth = local[min(9, len(local) - 1)].score
        assert all(ours[h.id] >= (1 - RELATIVE_BM25) * tenth for h in remote[:10]), (
            query, [(h.id, ours[h.id]) for h in remote[:10]], tenth)


def test_features_from_the_cluster_match_the_embedded_ones(cluster_reader, demo_reader, shipped_encoder) -> None:  # type: ignore[no-untyped-def]
    """Every feature but BM25 is computed identically from the cluster's documents; the
    per-field BM25 (named queries with scores) is the cluster's own and close to ours."""
    from ranker.features.compute import CandidateRanks
    from ranker.features.names import FEATURE_NAMES
    from ranker.features.sources import feature_source, features_for

    for query in ("3/4 in. cordless drill 20v", "gray velvet sofa"):
        vector = shipped_encoder.encode_query(query)
        ids = [h.id for h in demo_reader.knn(vector, 40, Filters())]
        ranks = np.arange(1, len(ids) + 1, dtype=np.float64)
        candidates = CandidateRanks(ids, ranks, ranks, ranks)
        local, _ = features_for(feature_source(demo_reader), query, vector, candidates)
        remote, _ = features_for(feature_source(cluster_reader), query, vector, candidates)
        bm25 = [i for i, name in enumerate(FEATURE_NAMES) if name.startswith("bm25_")]
        others = [i for i in range(len(FEATURE_NAMES)) if i not in bm25]
        np.testing.assert_allclose(remote[:, others], local[:, others], atol=1e-5)
        for column in bm25:
            name = FEATURE_NAMES[column]
            assert np.array_equal(local[:, column] > 0, remote[:, column] > 0), (query, name)  # same matches
            matched = local[:, column] > 0
            ratio = remote[matched, column] / local[matched, column]
            assert np.all(np.abs(ratio - 1) < RELATIVE_BM25), (query, name, ratio)


def test_a_reindex_under_searches_fails_none(cluster_index: Path, demo_catalog: Path, shipped_encoder) -> None:  # type: ignore[no-untyped-def]
    from indexer.backends import open_backend
    from ranker.pipeline import SearchPipeline
    from ranker.request import SearchRequest

    backend = open_backend(cluster_index)
    before = backend.reader().generation
    failures: list[BaseException] = []
    searched = [0]
    generations: set[str] = set()
    stop = threading.Event()

    def search_all_the_time() -> None:
        while not stop.is_set():
            try:
                reader = backend.reader()
                response = SearchPipeline(reader, shipped_encoder).search(SearchRequest("wireless speaker", k=10))
                assert response.results and response.total > 0
                generations.add(reader.generation)
                searched[0] += 1
            except BaseException as exc:  # every failure counts
                failures.append(exc)

    worker = threading.Thread(target=search_all_the_time)
    worker.start()
    try:
        assert indexer_main(["reindex", "--catalog", str(demo_catalog), "--data-dir", str(cluster_index),
                             "-q"]) == EXIT_OK
    finally:
        stop.set()
        worker.join(timeout=60)
    after = backend.reader().generation
    assert after != before and failures == [] and searched[0] > 0
    assert before in generations  # searches ran on the old index while the new one was loading


def test_searches_and_events_reach_the_clusters_ubi_indices(cluster_index: Path, models_dir: Path) -> None:
    """Through a real server on the cluster backend: UBI documents in the cluster, in the
    format its UBI tooling reads, and gone after the shopper is erased."""
    from indexer.backends import open_backend
    from tests.conftest import Server
    from tests.test_events_api import post_events

    shopper = f"ubi-live-{secrets.token_hex(4)}"
    alias = open_backend(cluster_index).settings.alias
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SHOPRANK_BACKEND", "opensearch")
        env.setenv("OPENSEARCH_ALIAS", alias)
        server = Server(cluster_index, workers=1)
        try:
            status, found = server.get(f"/search?q=sofa&k=5&user_id={shopper}")
            assert status == 200
            status, answer = post_events(server.base, {"action_name": "click", "user_id": shopper, "position": 2,
                                                       "object_id": found["results"][1]["id"],
                                                       "query_id": found["query_id"]})
            assert status == 200 and answer["accepted"] == 1
            client = open_backend(cluster_index).client

            def count(index: str) -> int:  # 0 until the writer has made the index
                client.indices.refresh(index=index, params={"ignore_unavailable": "true"})
                body = {"query": {"term": {"user_id": shopper}}}
                return int(client.count(index=index, body=body, params={"ignore_unavailable": "true"})["count"])

            deadline = time.monotonic() + 30
            while (count("ubi_queries"), count("ubi_events")) != (1, 1) and time.monotonic() < deadline:
                time.sleep(0.5)
            assert (count("ubi_queries"), count("ubi_events")) == (1, 1)
            hits = client.search(index="ubi_events", body={"query": {"term": {"user_id": shopper}}})["hits"]["hits"]
            event = hits[0]["_source"]
            assert event["event_attributes"]["object"]["object_id"] == found["results"][1]["id"]
            assert event["query_id"] == found["query_id"] and event["event_attributes"]["position"]["ordinal"] == 2
            assert server.get(f"/users/{shopper}", method="DELETE")[0] == 204
            assert (count("ubi_queries"), count("ubi_events")) == (0, 0)
        finally:
            server.stop()


def test_two_web_nodes_share_one_shopper_store(cluster_index: Path, tmp_path: Path) -> None:
    """Two servers with data dirs of their own (two machines) on one cluster: an event sent
    to one is in the profile the other reads, the other's search changes with it, and an
    erase on either leaves the shopper anonymous on both."""
    from indexer.backends import open_backend
    from tests.conftest import Server, copy_data_dir
    from tests.test_events_api import post_events

    shopper = f"two-nodes-{secrets.token_hex(4)}"
    alias = open_backend(cluster_index).settings.alias
    second_dir = copy_data_dir(cluster_index, tmp_path / "node-b")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SHOPRANK_BACKEND", "opensearch")
        env.setenv("OPENSEARCH_ALIAS", alias)
        env.delenv("SHOPRANK_STATE_STORE", raising=False)  # the cluster backend's default: the cluster
        nodes = [Server(cluster_index, workers=1), Server(second_dir, workers=1)]
        try:
            status, anonymous = nodes[0].get("/search?q=lamp&k=10")
            assert status == 200 and len(anonymous["results"]) == 10
            chosen = anonymous["results"][-1]["id"]
            status, answer = post_events(nodes[1].base, [
                {"action_name": action, "user_id": shopper, "object_id": chosen} for action in ("click", "purchase")])
            assert status == 200 and answer["accepted"] == 2
            status, profile = nodes[0].get(f"/users/{shopper}/profile")
            assert status == 200 and profile["event_counts"] == {"click": 1, "purchase": 1}
            assert profile["has_embedding"]  # the product's vector came from the cluster with it
            status, personal = nodes[0].get(f"/search?q=lamp&k=10&user_id={shopper}")
            assert [r["id"] for r in personal["results"]] != [r["id"] for r in anonymous["results"]]
            assert nodes[0].get(f"/users/{shopper}", method="DELETE")[0] == 204
            status, profile = nodes[1].get(f"/users/{shopper}/profile")
            assert status == 200 and profile["event_counts"] == {}
            status, after = nodes[1].get(f"/search?q=lamp&k=10&user_id={shopper}")
            assert [r["id"] for r in after["results"]] == [r["id"] for r in anonymous["results"]]
            assert not (cluster_index / "events.sqlite").exists() and not (second_dir / "events.sqlite").exists()
        finally:
            for node in nodes:
                node.stop()


def test_two_web_nodes_share_rules_and_tokens(cluster_index: Path, tmp_path: Path) -> None:
    """A token made with `python -m web tokens add` on one machine works on another; a
    pin posted to one node shows in the other's searches within a second; a delete on
    the other takes it away on both."""
    import json
    import subprocess
    import sys
    import urllib.request

    from indexer.backends import open_backend
    from tests.conftest import ROOT, Server, copy_data_dir

    alias = open_backend(cluster_index).settings.alias
    second_dir = copy_data_dir(cluster_index, tmp_path / "node-b")
    env = {"SHOPRANK_BACKEND": "opensearch", "OPENSEARCH_ALIAS": alias}
    made = subprocess.run([sys.executable, "-m", "web", "tokens", "add", f"ed-{secrets.token_hex(3)}", "--role",
                           "editor", "--data-dir", str(cluster_index)], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        nodes = [Server(cluster_index, workers=1), Server(second_dir, workers=1)]
        try:
            _, before = nodes[1].get("/search?q=desk+lamp&k=5")
            chosen = before["results"][-1]["id"]
            request = urllib.request.Request(nodes[0].base + "/admin/rules", method="POST", data=json.dumps({
                "kind": "pin", "scope": {"query": "desk lamp"}, "products": [{"id": chosen, "position": 1}]}).encode(),
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(request, timeout=30) as answer:
                rule_id = json.loads(answer.read())["id"]
            deadline = time.monotonic() + 1.0
            while nodes[1].get("/search?q=desk+lamp&k=5")[1]["results"][0]["id"] != chosen:
                assert time.monotonic() < deadline, "the other node did not show the pin within a second"
                time.sleep(0.05)
            delete = urllib.request.Request(nodes[1].base + f"/admin/rules/{rule_id}", method="DELETE",
                                            headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(delete, timeout=30) as answer:
                assert answer.status == 204
            time.sleep(0.6)
            assert [r["id"] for r in nodes[0].get("/search?q=desk+lamp&k=5")[1]["results"]] == [
                r["id"] for r in before["results"]]
            assert not (cluster_index / "admin.sqlite").exists() and not (second_dir / "admin.sqlite").exists()
        finally:
            for node in nodes:
                node.stop()
