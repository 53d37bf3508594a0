"""Query understanding on the demo catalog, in process: what it does and what it costs.

    python bench/understanding.py --data-dir DIR

DIR must hold the demo catalog (`python -m indexer demo-catalog`, then `reindex`). Prints:
1. the queries of every `[color or material] noun` and `[color] [material] noun` form the
   catalog's templates make (the set tests/test_understanding.py checks), how many have
   at least 10 such products, and how many of those have 9 or more of their top 10 with
   the named values;
2. `gray velvet sofa`, with and without `price_max=1000&in_stock=true`, loose (any word,
   every vector neighbour) and as served: the total and the leading department and brands;
3. the best vector similarity of queries that match nothing (emoji, `*`, CJK, letters)
   and the 100th of real ones, beside the served threshold;
4. each generated query with understanding on and off, alternating, after a warm-up:
   p50 and p99 of each and the median per-query difference (the lifted recalls: one text
   search per named value, and one for all of them).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from indexer import settings  # noqa: E402
from indexer.backends import open_backend  # noqa: E402
from indexer.encoder import TextEncoder  # noqa: E402
from indexer.store.base import Filters  # noqa: E402
from ranker.pipeline import SearchPipeline  # noqa: E402
from ranker.request import SearchRequest  # noqa: E402
from ranker.spelling import query_corrector  # noqa: E402
from ranker.stages import Matching  # noqa: E402
from tests.test_understanding import _has_noun, _has_values, generated_queries  # noqa: E402

NOTHING = ("😀", "*", "沙发", "asdfgh")
REAL = ("sofa", "cordless drill")


def percentile(values: list[float], share: float) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * share))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()
    data_dir = settings.data_dir(args.data_dir)
    reader = open_backend(data_dir).reader()
    encoder = TextEncoder(settings.models_dir(data_dir), reader.encoder_variant)
    corrector = query_corrector(reader)
    on = SearchPipeline(reader, encoder, corrector=corrector)
    off = SearchPipeline(reader, encoder, corrector=corrector, understand=False)
    products = reader.catalog().products
    checked = passed = 0
    for query, noun, values in generated_queries():
        if sum(1 for p in products if _has_noun(p, noun) and _has_values(p, values)) < 10:
            continue
        checked += 1
        top = on.search(SearchRequest(query, k=10)).results
        passed += sum(_has_values(r, values) for r in top) >= 9
    print(f"generated queries with 10+ such products: {checked}; with 9+ of the top 10 having the values: {passed}")
    served = on.matching
    for filters in (Filters(), Filters(price_max=1000, in_stock=True)):
        for name, matching in (("loose", Matching()), ("served", served)):
            on.matching = matching
            response = on.search(SearchRequest("gray velvet sofa", k=10, filters=filters))
            departments = [(b["value"], b["count"]) for b in response.facets.get("category", []) if " > " not in b["value"]]
            brands = [b["value"] for b in response.facets.get("brand", [])[:3]]
            print(f"gray velvet sofa{' (filtered)' if filters != Filters() else ''}, {name}: total {response.total:,}, "
                  f"departments {departments[:3]}, brands {brands}")
    on.matching = served
    for query in (*NOTHING, *REAL):
        hits = reader.knn(encoder.encode_query(query), 100, Filters())
        print(f"vector neighbours of {query!r}: best {hits[0].score:.3f}, 100th {hits[-1].score:.3f} "
              f"(threshold {served.vector_threshold})")
    queries = sorted({q for q, _, _ in generated_queries()})
    for pipeline in (on, off):
        for query in queries[:50]:
            pipeline.search(SearchRequest(query))
    times: dict[str, list[float]] = {"on": [], "off": []}
    for query in queries:
        for name, pipeline in (("on", on), ("off", off)):
            started = time.perf_counter()
            pipeline.search(SearchRequest(query))
            times[name].append((time.perf_counter() - started) * 1000)
    diff = statistics.median(a - b for a, b in zip(times["on"], times["off"], strict=True))
    print(f"{len(queries)} queries naming values, {reader.document_count:,} products, in process")
    for name, values in times.items():
        print(f"understanding {name:<3}: p50 {statistics.median(values):.2f} ms, p99 {percentile(values, 0.99):.2f} ms")
    print(f"paired difference p50: {diff:+.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
