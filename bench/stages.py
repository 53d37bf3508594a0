"""Where a search spends its time: the search pipeline's own per-stage timings, in process.

    python bench/stages.py --data-dir DIR [--queries 1000] [--param rerank=false ...]

Loads DIR the way a server worker does (ranker.serving: the serving index and the newest
model) and runs each query once through the pipeline with `timings=true`, one thread.
Prints p50 and p99 of every stage (correct, recall, fuse, rerank, personalize,
merchandise, page, facets), of the steps inside them (recall.encode, recall.bm25,
recall.knn, rerank.features, rerank.models) and of the whole search. Queries come from
the judgments file next to the catalog when there is one; each is distinct, so the query
encoders' caches never hit.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import faiss
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.queries import HOME_DEPOT, load_queries, parse_params  # noqa: E402
from indexer import settings  # noqa: E402
from indexer.backends import open_backend  # noqa: E402
from ranker.pipeline import STAGES  # noqa: E402
from ranker.serving import ServingState  # noqa: E402
from web.params import parse_search_args  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--catalog", type=Path, default=HOME_DEPOT, help="where to find queries (judgments.csv beside it)")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a search parameter for every query, e.g. rerank=false (repeatable)")
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    started = time.perf_counter()
    pipeline = ServingState(open_backend(settings.data_dir(args.data_dir))).pipeline()
    load_seconds = time.perf_counter() - started
    # the request a server would make of `GET /search?q=...&k=...&timings=true&<--param>...`
    base = parse_search_args({"q": "x", "k": str(args.k), "timings": "true", **parse_params(args.param)},
                             pipeline.fusion)
    queries = load_queries(args.catalog, args.queries)
    for query in queries[:50]:  # warm-up: page cache, lazy allocations (not measured)
        pipeline.search(replace(base, query=query + " warmup"))
    timings: dict[str, list[float]] = {}
    totals = []
    for query in queries:
        response = pipeline.search(replace(base, query=query))
        assert response.timings is not None
        for name, ms in response.timings.items():
            timings.setdefault(name, []).append(ms)
        totals.append(response.took_ms)
    ranker = pipeline.ranker
    plan = pipeline.plan(base)
    print(f"{pipeline.reader.document_count:,} products, {len(queries)} queries, encoder "
          f"{pipeline.reader.encoder_variant}, one thread, recall window {plan.window}, "
          + (f"model {ranker.version} re-ranking {plan.rerank_depth} (neural: {ranker.combine})" if ranker and
             plan.rerank_depth else "no model re-ranking") + (f", {' '.join(args.param)}" if args.param else "")
          + f"; loaded in {load_seconds:.1f} s")
    ordered = [n for stage in STAGES for n in timings if n == stage or n.startswith(stage + ".")]
    for name, values in [*((n, timings[n]) for n in ordered), ("total (took_ms)", totals)]:
        shown = f"  {name}" if "." in name else name
        print(f"{shown:<20} p50 {np.percentile(values, 50):6.2f} ms   p99 {np.percentile(values, 99):6.2f} ms"
              + ("" if len(values) == len(totals) else f"   ({len(values)} searches)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
