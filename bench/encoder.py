"""Encoder throughput and agreement: ONNX fp32 vs int8 (all-MiniLM-L6-v2).

    python bench/encoder.py [--catalog ../shared/data/home-depot/products.csv] [--n 5000]

Prints, per variant: catalog-encoding throughput (products/s, all threads, batch 16,
the indexer's settings), one-query latency (1 thread, the server's settings), and for
int8 its agreement with fp32: cosine per product and top-10 neighbour overlap.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
HOME_DEPOT = ROOT.parent / "shared" / "data" / "home-depot" / "products.csv"
sys.path.insert(0, str(ROOT))

from indexer import settings  # noqa: E402
from indexer.catalog import read_catalog  # noqa: E402
from indexer.encoder import TextEncoder, embedding_text  # noqa: E402
from indexer.model_export import export_models  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", type=Path, default=HOME_DEPOT)
    parser.add_argument("--n", type=int, default=5000, help="products to encode")
    parser.add_argument("--data-dir")
    parser.add_argument("--batch-sizes", default="16,64,256", help="int8 throughput per batch size")
    args = parser.parse_args()
    directory = settings.models_dir(settings.data_dir(args.data_dir))
    export_models(directory)
    products = read_catalog(args.catalog).products[: args.n]
    texts = [embedding_text(p) for p in products]
    queries = [p["title"].split(" ")[0] + " " + p["title"].split(" ")[-1] for p in products[:300]]
    vectors = {}
    print(f"{len(texts)} products from {args.catalog.name}, {os.cpu_count()} CPUs")
    for variant in ("fp32", "int8"):
        encoder = TextEncoder(directory, variant, threads=0)
        encoder.encode(texts[:256])  # warm-up
        started = time.perf_counter()
        vectors[variant] = encoder.encode(texts)
        rate = len(texts) / (time.perf_counter() - started)
        single = TextEncoder(directory, variant, threads=1, query_cache_size=0)
        timings = []
        for query in queries:
            t = time.perf_counter()
            single._run([query])
            timings.append((time.perf_counter() - t) * 1000)
        print(f"{variant}: {rate:7.0f} products/s (batch 16, all threads)   "
              f"one query p50 {statistics.median(timings):.2f} ms (1 thread)")
    encoder = TextEncoder(directory, "int8", threads=0)
    for batch_size in (int(b) for b in args.batch_sizes.split(",")):
        started = time.perf_counter()
        encoder.encode(texts, batch_size=batch_size)
        print(f"int8 batch {batch_size:<4}: {len(texts) / (time.perf_counter() - started):5.0f} products/s")
    cosine = (vectors["fp32"] * vectors["int8"]).sum(1)
    sample = slice(0, min(1000, len(texts)))
    overlap = []
    for v32, v8 in zip(vectors["fp32"][sample], vectors["int8"][sample], strict=True):
        top32 = set(np.argsort(-(vectors["fp32"] @ v32))[:10])
        top8 = set(np.argsort(-(vectors["int8"] @ v8))[:10])
        overlap.append(len(top32 & top8) / 10)
    print(f"int8 vs fp32: cosine mean {cosine.mean():.4f}, min {cosine.min():.4f}, 1st percentile "
          f"{np.percentile(cosine, 1):.4f}; top-10 neighbour overlap {np.mean(overlap):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
