"""k-NN recall@100 against exact inner-product search, on the embedded backend and on
OpenSearch, for the same catalog and query vectors.

    python bench/knn_recall.py --data-dir DIR [--opensearch-data-dir DIR2] [--queries 500]

DIR is an embedded index (its vector matrix gives the exact answer); DIR2, with
OPENSEARCH_URL set, a data dir whose serving OpenSearch index holds the same catalog.
Queries are encoded with the shipped encoder of DIR's index (bench/queries.py picks them).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.queries import HOME_DEPOT, load_queries  # noqa: E402
from indexer import settings  # noqa: E402
from indexer.backends import open_backend  # noqa: E402
from indexer.encoder import TextEncoder  # noqa: E402
from indexer.store.base import Filters  # noqa: E402

K = 100


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--opensearch-data-dir", type=Path)
    parser.add_argument("--catalog", type=Path, default=HOME_DEPOT, help="where to find queries")
    parser.add_argument("--queries", type=int, default=500)
    args = parser.parse_args()
    os.environ["SHOPRANK_BACKEND"] = "embedded"
    embedded = open_backend(args.data_dir).reader()
    encoder = TextEncoder(settings.models_dir(args.data_dir), embedded.encoder_variant)
    catalog = embedded.catalog()  # the local_catalog capability: every product and vector in process
    matrix, ids = catalog.vectors, [p["id"] for p in catalog.products]
    readers = {"embedded (faiss HNSW)": embedded}
    if args.opensearch_data_dir:
        os.environ["SHOPRANK_BACKEND"] = "opensearch"
        readers["opensearch (lucene HNSW)"] = open_backend(args.opensearch_data_dir).reader()
    recall: dict[str, list[float]] = {name: [] for name in readers}
    took: dict[str, list[float]] = {name: [] for name in readers}
    queries = load_queries(args.catalog, args.queries)
    for query in queries:
        vector = encoder.encode_query(query)
        exact = {ids[i] for i in np.argsort(-(matrix @ vector))[:K]}
        for name, reader in readers.items():
            started = time.perf_counter()
            hits = reader.knn(vector, K, Filters())
            took[name].append((time.perf_counter() - started) * 1000)
            recall[name].append(len(exact & {h.id for h in hits}) / K)
    print(f"{embedded.document_count:,} products, {len(queries)} queries, k={K}")
    for name in readers:
        print(f"{name:<26} recall@{K} vs exact {np.mean(recall[name]):.4f} (worst query {np.min(recall[name]):.2f}), "
              f"p50 {np.median(took[name]):.2f} ms per k-NN request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
