"""HNSW search depth vs exact search: overlap, vector recall@100 and time per query.

    python bench/hnsw.py --data-dir DIR [--judgments ../shared/data/home-depot/judgments.csv]

DIR must hold an index of the catalog the judgments are about (an HNSW index, i.e. at
least 10,000 products), e.g. the one `python bench/reindex.py` leaves behind. Queries
are the held-out half of the judged queries (the first 2,000 of them).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import faiss
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from indexer import settings  # noqa: E402
from indexer.backends import EmbeddedBackend  # noqa: E402
from indexer.encoder import TextEncoder  # noqa: E402
from indexer.mapping import load_definition  # noqa: E402
from ranker.evaluate import read_judgments, score_runs  # noqa: E402
from ranker.training.folds import split  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--judgments", type=Path,
                        default=ROOT.parent / "shared" / "data" / "home-depot" / "judgments.csv")
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    data_dir = settings.data_dir(args.data_dir)
    reader = EmbeddedBackend(data_dir, load_definition()).reader()
    index = reader._vector_index  # type: ignore[attr-defined]  # this bench measures the embedded HNSW graph itself
    if not isinstance(index, faiss.IndexHNSW):
        print("this index is exact (flat): nothing to compare", file=sys.stderr)
        return 1
    encoder = TextEncoder(settings.models_dir(data_dir), reader.encoder_variant)
    judgments = read_judgments(args.judgments)
    queries = split(sorted(judgments), 1, 2)[1][:2000]
    vectors = np.stack([encoder.encode_query(q) for q in queries])
    ids = [p["id"] for p in reader.catalog().products]
    similarities = vectors @ np.asarray(reader.vectors).T
    exact = {q: [ids[t] for t in np.argsort(-similarities[i])[:100]] for i, q in enumerate(queries)}
    print(f"{len(queries)} held-out queries, {len(ids):,} vectors")
    print(f"exact      vector recall@100 {score_runs(exact, judgments).recall100:.3f}")
    for ef in (64, 128, 256, 512):
        index.hnsw.efSearch = ef
        started = time.perf_counter()
        _, found = index.search(vectors, 100)
        ms = (time.perf_counter() - started) / len(queries) * 1000
        runs = {q: [ids[t] for t in found[i]] for i, q in enumerate(queries)}
        overlap = np.mean([len(set(runs[q]) & set(exact[q])) / 100 for q in queries])
        print(f"ef {ef:<4}    vector recall@100 {score_runs(runs, judgments).recall100:.3f}   "
              f"overlap with exact {overlap:.3f}   {ms:.2f} ms/query")
    return 0


if __name__ == "__main__":
    sys.exit(main())
