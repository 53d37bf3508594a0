"""Search latency over HTTP against the real server (gunicorn, `python -m web`).

    python bench/latency.py [--catalog ../shared/data/home-depot/products.csv] [--queries 2000]

Indexes the catalog (skipped when the data dir already serves it), starts the server
on a free port, warms it up, then fires each query once:
  1. one client at a time -> latency p50 / p95 / p99 as the client sees it;
  2. --concurrency clients at once -> queries per second.
With --versus NAME=VALUE, step 1 sends every query twice, as is and with that parameter,
in a random order per query, and reports the median per-query difference: both variants
meet the same moment of a noisy machine, which separate runs (a millisecond apart from
run to run on the 2-core machine) do not.
Queries come from the judgments file next to the catalog when there is one (query text
only), otherwise from words of product titles (bench/queries.py). The load generator runs
on the same machine and takes CPU from the server: figures are conservative.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.queries import HOME_DEPOT, load_queries, parse_params  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def worker_rss_mb(pid: int) -> list[float]:
    """Resident memory of the server's worker processes (Linux /proc)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    sizes = []
    for child in children.read_text().split() if children.exists() else []:
        for line in Path(f"/proc/{child}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                sizes.append(int(line.split()[1]) / 1024)
    return sizes


def fetch(base: str, query: str, k: int, extra: dict[str, str] | None = None) -> tuple[float, float]:
    url = f"{base}/search?" + urllib.parse.urlencode({"q": query, "k": k, **(extra or {})})
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as response:
        body = json.loads(response.read())
    return (time.perf_counter() - started) * 1000, float(body["took_ms"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", type=Path, default=HOME_DEPOT)
    parser.add_argument("--data-dir", type=Path, help="default: a new temporary directory")
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--k", type=int, default=10, help="results per page (recall depth is 100 either way)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--encoder", default="int8", choices=("fp32", "int8"))
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="extra search parameter, e.g. rerank=false (repeatable)")
    parser.add_argument("--versus", metavar="NAME=VALUE",
                        help="also time each query with this parameter changed, e.g. rerank=false")
    args = parser.parse_args()
    extra = parse_params(args.param)
    other = {**extra, **parse_params([args.versus])} if args.versus else None
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="shoprank-latency-"))
    from indexer.backends import open_backend
    from indexer.publish import ensure_indexed

    ensure_indexed(open_backend(data_dir), args.catalog, args.encoder)
    queries = load_queries(args.catalog, args.queries)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "web", "--data-dir", str(data_dir), "--port", str(port),
                               "--workers", str(args.workers)], cwd=ROOT, env=os.environ.copy(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not start") from None
                time.sleep(0.2)
        for query in queries[:100]:  # warm-up: page cache, lazy allocations (not measured)
            fetch(base, query + " warmup", args.k, extra)

        client, server_side, paired = [], [], []
        coin = random.Random(3)
        for query in queries:
            if other is None:
                c, s = fetch(base, query, args.k, extra)
            else:  # both variants, in a random order so neither always runs second
                first_base = coin.random() < 0.5
                timings = [fetch(base, query, args.k, params) for params in
                           ((extra, other) if first_base else (other, extra))]
                (c, s), versus = timings if first_base else timings[::-1]
                paired.append((c, s, *versus))
            client.append(c)
            server_side.append(s)

        shuffled = queries[:]
        random.Random(2).shuffle(shuffled)
        lock = threading.Lock()
        position = [0]

        def worker() -> None:
            while True:
                with lock:
                    if position[0] >= len(shuffled):
                        return
                    query = shuffled[position[0]] + " again"  # a new string: no query-cache hits
                    position[0] += 1
                fetch(base, query, args.k, extra)

        started = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        qps = len(shuffled) / (time.perf_counter() - started)
        rss = worker_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=20)

    print(f"catalog {args.catalog.name}, {len(queries)} distinct queries, "
          f"k={args.k}, {args.workers} gunicorn workers, {os.cpu_count()} CPUs, encoder {args.encoder}"
          + (f", {' '.join(args.param)}" if args.param else ""))
    print(f"one client   : p50 {percentile(client, 50):6.2f} ms   p95 {percentile(client, 95):6.2f} ms   "
          f"p99 {percentile(client, 99):6.2f} ms   (server-side took_ms p50 {statistics.median(server_side):.2f})")
    if paired:
        a = np.array(paired)
        print(f"with {args.versus:<8}: p50 {percentile(list(a[:, 2]), 50):6.2f} ms   p95 "
              f"{percentile(list(a[:, 2]), 95):6.2f} ms   p99 {percentile(list(a[:, 2]), 99):6.2f} ms   "
              f"(server-side took_ms p50 {np.median(a[:, 3]):.2f})")
        print(f"paired       : per-query difference (as is - {args.versus}) median "
              f"{np.median(a[:, 0] - a[:, 2]):+.2f} ms (server-side {np.median(a[:, 1] - a[:, 3]):+.2f} ms)")
    print(f"{args.concurrency} clients    : {qps:6.0f} queries/s")
    if rss:
        print(f"memory       : {' + '.join(f'{mb:.0f}' for mb in rss)} MB resident (one figure per worker)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
