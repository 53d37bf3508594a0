"""How much of a search on the OpenSearch backend the cluster itself spends: its own
`took` of every request a search sends, against the whole search's time, in process.

    SHOPRANK_BACKEND=opensearch OPENSEARCH_URL=... python bench/cluster_took.py --data-dir DIR [--queries 300]

Loads DIR as a server worker does (the serving index and the newest model) and runs each
query once through the pipeline; `--param rerank=false` as in bench/stages.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.queries import HOME_DEPOT, load_queries, parse_params  # noqa: E402
from indexer import settings  # noqa: E402
from indexer.backends import open_backend  # noqa: E402
from ranker.serving import ServingState  # noqa: E402
from web.params import parse_search_args  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--catalog", type=Path, default=HOME_DEPOT, help="where to find queries")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    pipeline = ServingState(open_backend(settings.data_dir(args.data_dir))).pipeline()
    client = pipeline.reader.client  # type: ignore[attr-defined]
    took: list[tuple[str, float]] = []
    for name in ("search", "mget"):
        original = getattr(client, name)

        def recorded(*a: Any, _original: Any = original, _name: str = name, **kw: Any) -> Any:
            response = _original(*a, **kw)
            took.append((_name, float(response.get("took", 0.0))))
            return response

        setattr(client, name, recorded)
    base = parse_search_args({"q": "x", "k": "10", **parse_params(args.param)}, pipeline.fusion)
    queries = load_queries(args.catalog, args.queries)
    for query in queries[:20]:
        pipeline.search(replace(base, query=query + " warmup"))
    per_search, requests, whole = [], [], []
    for query in queries:
        took.clear()
        started = time.perf_counter()
        pipeline.search(replace(base, query=query))
        whole.append((time.perf_counter() - started) * 1000)
        per_search.append(sum(t for _, t in took))
        requests.append(len(took))
    print(f"{len(queries)} queries, {' '.join(args.param) or 'defaults'}, model "
          f"{pipeline.ranker.version if pipeline.ranker else 'none'}: requests per search {np.median(requests):.0f}; "
          f"the cluster's took summed per search p50 {np.median(per_search):.1f} ms (p99 {np.percentile(per_search, 99):.1f}); "
          f"the whole search p50 {np.median(whole):.1f} ms (p99 {np.percentile(whole, 99):.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
