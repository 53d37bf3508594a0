"""`python -m indexer opensearch-dev`: what it says when it cannot start or has nothing to
stop. (Starting a real cluster is what `.ci/run` does before the suite; the live tests
then check the cluster it started: two nodes, shards and replicas placed.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from indexer import opensearch_dev
from indexer.__main__ import EXIT_FAILED, EXIT_OK, main


def test_stop_with_nothing_running_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["opensearch-dev", "stop", "--dir", str(tmp_path)]) == EXIT_OK
    assert f"no cluster running from {tmp_path}" in capsys.readouterr().out


def test_a_cluster_whose_process_is_gone_is_not_running(tmp_path: Path) -> None:
    (tmp_path / "cluster.json").write_text(json.dumps({"url": "http://127.0.0.1:1", "pid": 2**22 + 7, "nodes": 2}))
    assert opensearch_dev.running(tmp_path) is None
    assert opensearch_dev.stop(tmp_path) is False and not (tmp_path / "cluster.json").exists()


def test_start_explains_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no mvn, no java
    assert main(["opensearch-dev", "start", "--dir", str(tmp_path / "dev")]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Maven (mvn) is not on PATH" in err and "Traceback" not in err


def test_a_cluster_needs_a_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["opensearch-dev", "start", "--dir", str(tmp_path), "--nodes", "0"])
    assert exit_.value.code == 2 and "argument --nodes: 0 must be at least 1" in capsys.readouterr().err
    with pytest.raises(opensearch_dev.DevClusterError, match="a cluster needs at least one node"):
        opensearch_dev.start(tmp_path, nodes=0)


@pytest.mark.parametrize(("fresh", "stopped"), [(False, False), (True, True)])
def test_a_healthy_cluster_is_reused_unless_fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  fresh: bool, stopped: bool) -> None:
    """`--fresh` promises no indices: a healthy cluster already running from the
    directory is stopped first, not handed back with its data."""
    live = opensearch_dev.DevCluster(tmp_path, "http://127.0.0.1:9201", 12345, 2)
    calls: list[Path] = []
    monkeypatch.setattr(opensearch_dev, "running", lambda directory: live)
    monkeypatch.setattr(opensearch_dev, "_health", lambda url, nodes: {"status": "green"})
    monkeypatch.setattr(opensearch_dev, "stop", lambda directory: calls.append(directory) or True)

    def no_maven(cache: Path) -> Path:
        raise opensearch_dev.DevClusterError("stop here: the test does not start Java")

    monkeypatch.setattr(opensearch_dev, "resolve_libraries", no_maven)
    if fresh:
        with pytest.raises(opensearch_dev.DevClusterError, match="stop here"):
            opensearch_dev.start(tmp_path, fresh=True)
    else:
        assert opensearch_dev.start(tmp_path) is live
    assert (calls == [tmp_path]) is stopped


def test_the_nodes_bootstrap_from_the_first_and_stay_on_loopback() -> None:
    config = opensearch_dev._config()
    assert "network.host: 127.0.0.1" in config and 'cluster.initial_cluster_manager_nodes: ["Node 1"]' in config
    assert opensearch_dev.HTTP_PORT_LINE.findall("HTTP Port:      9201\n[x][stdout] HTTP Port:      9202") == [
        "9201", "9202"]
