"""How long `python -m ranker train --events` takes for a given size of event log.

    python bench/train_events.py --data-dir DIR [--events 100000]

Writes a log of its own (a temporary SHOPRANK_EVENTS_DB) of simulated shoppers
(ranker/simulate.py) until it holds --events clicks, carts and purchases — the
server-recorded impressions of their searches come on top — then runs the command as an
operator does and prints its wall time. DIR must hold an index of the demo catalog (the
one `python -m ranker evaluate-personalization` makes in DATA/simulation will do); its
rankers directory gets the trained version.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--events", type=int, default=100_000, help="clicks, carts and purchases in the log")
    parser.add_argument("--searches", type=int, default=20, help="per shopper")
    args = parser.parse_args()

    from tqdm import tqdm

    from indexer import settings
    from indexer.backends import open_backend
    from indexer.encoder import TextEncoder
    from ranker.events.facts import facts_from
    from ranker.events.schema import parse_event
    from ranker.events.store import EventStore, Search
    from ranker.pipeline import SearchPipeline
    from ranker.request import SearchRequest
    from ranker.simulate import Catalog, browse, new_taste, next_query, seeded

    reader = open_backend(args.data_dir).reader()
    pipeline = SearchPipeline(reader, TextEncoder(settings.models_dir(args.data_dir), reader.encoder_variant,
                                                  threads=1))
    catalog, facts = Catalog(reader.catalog().products), facts_from(reader)
    log_path = Path(tempfile.mkdtemp(prefix="shoprank-train-events-")) / "events.sqlite"
    store = EventStore(log_path, sync="normal")
    pages: dict[str, list[str]] = {}  # the recall order of each query text (shoppers browse it)
    engaged = searches = 0
    clock = time.time() - 30 * 86400.0
    started = time.perf_counter()
    with tqdm(total=args.events, desc="log", unit="event") as bar:
        shopper = 0
        while engaged < args.events:
            taste, queries = new_taste(seeded("bench", shopper)), seeded("bench", shopper, "queries")
            for number in range(args.searches):
                query = next_query(taste, queries)
                if query.text not in pages:
                    pages[query.text] = [c.id for c in pipeline.rank(SearchRequest(query.text)).candidates][:10]
                shown = pages[query.text]
                clock += 5.0
                query_id = f"bench-{shopper}-{number}"
                store.record_search(Search(query_id, clock, f"u{shopper}", None, query.text, shown))
                outcome = browse(taste, catalog, query, shown, seeded("bench", shopper, number))
                events = [parse_event({"action_name": e.action, "user_id": f"u{shopper}", "object_id": e.product,
                                       "position": e.position, "query_id": query_id,
                                       "timestamp": (clock + 1 + n) * 1000}, 0.0)
                          for n, e in enumerate(outcome.engaged)]
                if events:
                    store.add(events, facts)
                engaged += len(events)
                searches += 1
                bar.update(len(events))
            shopper += 1
    logged = time.perf_counter() - started
    print(f"log: {engaged:,} clicks, carts and purchases from {shopper:,} shoppers in {searches:,} searches "
          f"({searches * 10:,} recorded impressions) in {logged:.0f}s")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "ranker", "train", "--events", "--data-dir", str(args.data_dir)],
                          cwd=ROOT, env={**os.environ, "SHOPRANK_EVENTS_DB": str(log_path)}, capture_output=True,
                          text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
        return 1
    print(done.stdout.strip())
    print(f"train --events on {engaged:,} events: {seconds:.0f}s wall")
    return 0


if __name__ == "__main__":
    sys.exit(main())
