"""Shopper event ingestion over HTTP against the real server (`python -m web`, --workers 2).

    python bench/events.py [--data-dir DIR] [--seconds 15]

Indexes the demo catalog (skipped when the data dir already serves it), starts the
server on a free port with an event log of its own, then:
  1. /search alone: latency p50 / p99 (one client);
  2. batches of --batch events, flat out from --clients clients: events per second;
  3. single-event requests, flat out: requests per second;
  4. batches paced at --rate events/s, and single events paced at --single-rate
     requests/s, each while one client searches: /search p99 against step 1;
  5. reading a profile and its feature view in process, as the personalize stage does: p50;
  6. one batch stored in process (EventStore.add on a fresh log), with and without its commit's sync.
Every event is a click, cart or purchase of a random product by one of --shoppers
shoppers, so every one updates a profile. The load generator shares the machine's cores
with the server: figures are conservative.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ACTIONS = ("click", "click", "click", "add_to_cart", "purchase")
QUERIES = ("sofa", "frying pan", "headphones", "tent", "cordless drill", "yoga mat", "bath towel", "desk",
           "coffee maker", "dog bed", "running shoes", "ceiling light")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def post(base: str, body: object) -> None:
    request = urllib.request.Request(base + "/events", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    if answer["errors"]:
        raise RuntimeError(f"events refused: {answer['errors'][:3]}")


def search_ms(base: str, rng: random.Random) -> float:
    url = f"{base}/search?" + urllib.parse.urlencode({"q": rng.choice(QUERIES), "k": 10})
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as response:
        response.read()
    return (time.perf_counter() - started) * 1000


class EventMaker:
    def __init__(self, products: list[str], shoppers: int, seed: int):
        self.products, self.shoppers, self.rng = products, shoppers, random.Random(seed)

    def event(self) -> dict[str, object]:
        return {"action_name": self.rng.choice(ACTIONS), "user_id": f"u{self.rng.randrange(self.shoppers)}",
                "object_id": self.rng.choice(self.products), "position": self.rng.randint(1, 10)}


def flat_out(clients: int, seconds: float, send: Callable[[EventMaker], int], makers: list[EventMaker]) -> float:
    """Units sent per second by `clients` threads as fast as the server answers."""
    counts = [0] * clients
    deadline = time.monotonic() + seconds

    def run(i: int) -> None:
        while time.monotonic() < deadline:
            counts[i] += send(makers[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - started)


def paced(rate: float, per_send: int, seconds: float, send: Callable[[EventMaker], int], maker: EventMaker,
          base: str, clients: int = 4) -> tuple[float, list[float]]:
    """Sends paced to `rate` units/s (each send carries `per_send`) while one client searches;
    returns the units/s achieved and the searches' latencies."""
    interval = per_send / rate
    deadline = time.monotonic() + seconds
    sent = [0]
    lock = threading.Lock()
    next_at = [time.monotonic()]

    def run() -> None:
        while True:
            with lock:
                at = next_at[0]
                next_at[0] += interval
            if at > deadline:
                return
            delay = at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            n = send(maker)
            with lock:
                sent[0] += n

    latencies: list[float] = []
    rng = random.Random(5)

    def searcher() -> None:
        while time.monotonic() < deadline:
            latencies.append(search_ms(base, rng))

    threads = [threading.Thread(target=run) for _ in range(clients)] + [threading.Thread(target=searcher)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sent[0] / (time.monotonic() - started), latencies


def percentiles(values: list[float]) -> str:
    return f"p50 {np.percentile(values, 50):.2f} ms, p99 {np.percentile(values, 99):.2f} ms ({len(values)} searches)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, help="default: a new temporary directory with the demo catalog")
    parser.add_argument("--seconds", type=float, default=15.0, help="per step")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rate", type=float, default=5000.0, help="events/s of the paced batch step")
    parser.add_argument("--single-rate", type=float, default=500.0, help="requests/s of the paced single step")
    parser.add_argument("--shoppers", type=int, default=5000)
    parser.add_argument("--sync", choices=("full", "normal"), default="full", help="SHOPRANK_EVENTS_SYNC")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    args = parser.parse_args()

    from indexer.backends import open_backend
    from indexer.demo_catalog import write_demo_catalog
    from indexer.publish import ensure_indexed
    from ranker.events.store import EventStore
    from ranker.features.personal import PersonalView

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="shoprank-events-"))
    catalog = data_dir / "demo-catalog.jsonl"
    if not catalog.exists():
        write_demo_catalog(catalog)
    ensure_indexed(open_backend(data_dir), catalog)
    products = [p["id"] for p in open_backend(data_dir).reader().catalog().products]
    events_db = data_dir / f"bench-events-{int(time.time())}.sqlite"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "web", "--data-dir", str(data_dir), "--port", str(port),
                               "--workers", str(args.workers)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "SHOPRANK_EVENTS_DB": str(events_db),
                                   "SHOPRANK_EVENTS_SYNC": args.sync})
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        rng = random.Random(1)
        for _ in range(50):
            search_ms(base, rng)  # warm up
        makers = [EventMaker(products, args.shoppers, seed) for seed in range(args.clients)]

        def batch(maker: EventMaker) -> int:
            post(base, [maker.event() for _ in range(args.batch)])
            return args.batch

        def single(maker: EventMaker) -> int:
            post(base, maker.event())
            return 1

        deadline = time.monotonic() + args.seconds
        alone = []
        while time.monotonic() < deadline:
            alone.append(search_ms(base, rng))
        print(f"/search alone: {percentiles(alone)}")
        rate = flat_out(args.clients, args.seconds, batch, makers)
        print(f"batches of {args.batch}, flat out, {args.clients} clients: {rate:,.0f} events/s")
        requests = flat_out(args.clients, args.seconds, single, makers)
        print(f"single events, flat out, {args.clients} clients: {requests:,.0f} requests/s")
        achieved, during = paced(args.rate, args.batch, args.seconds, batch, makers[0], base)
        print(f"batches paced at {args.rate:,.0f} events/s (achieved {achieved:,.0f}): /search {percentiles(during)}; "
              f"p99 {np.percentile(during, 99) - np.percentile(alone, 99):+.2f} ms against alone")
        achieved, during = paced(args.single_rate, 1, args.seconds, single, makers[1], base)
        print(f"single events paced at {args.single_rate:,.0f} requests/s (achieved {achieved:,.0f}): /search "
              f"{percentiles(during)}; p99 {np.percentile(during, 99) - np.percentile(alone, 99):+.2f} ms "
              "against alone")
    finally:
        server.terminate()
        server.wait(timeout=20)
    store = EventStore(events_db)
    shoppers = [f"u{i}" for i in range(args.shoppers)]
    reads = []
    for shopper in random.Random(2).choices(shoppers, k=3000):
        started = time.perf_counter()
        profile = store.profile(shopper)
        if profile is not None:
            PersonalView.of(profile, time.time())
        reads.append((time.perf_counter() - started) * 1000)
    print(f"profile read and view ({store.count():,} events stored, {args.shoppers:,} shoppers): "
          f"p50 {np.percentile(reads, 50):.3f} ms, p99 {np.percentile(reads, 99):.3f} ms")
    from ranker.events.facts import facts_from
    from ranker.events.schema import parse_event

    facts = facts_from(open_backend(data_dir).reader())
    maker = EventMaker(products, args.shoppers, 9)
    for sync in ("full", "normal"):
        fresh = EventStore(Path(tempfile.mkdtemp(prefix="shoprank-batch-")) / "events.sqlite", sync=sync)
        took = []
        for n in range(150):
            now = time.time()
            batch = [parse_event(maker.event(), now) for _ in range(args.batch)]
            started = time.perf_counter()
            fresh.add(batch, facts)
            if n >= 50:  # the first batches create every profile
                took.append((time.perf_counter() - started) * 1000)
        print(f"one batch of {args.batch} in process, sync {sync}: p50 {np.percentile(took, 50):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
