"""Where a search spends its time: each stage of the query path timed in-process.

    python bench/stages.py --data-dir DIR [--queries 1000]

Runs the serving code's stages one after the other on one thread, the way a server
worker does: query correction, query encoding (no cache), BM25 and k-NN top-N, fusion, count + facets,
product lookup, and, when DIR/rankers holds a trained model, its re-ranking steps
(features, neural scorer, XGBoost). N is 100, or the model's depth when that is larger,
as in serving. Queries come from the judgments file when there is one.
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

from bench.latency import HOME_DEPOT, load_queries  # noqa: E402
from indexer.encoder import TextEncoder  # noqa: E402
from indexer.generations import current_generation_dir  # noqa: E402
from indexer.mapping import load_definition  # noqa: E402
from indexer.settings import models_dir, resolve_data_dir  # noqa: E402
from indexer.store.base import Filters  # noqa: E402
from indexer.store.embedded import EmbeddedReader  # noqa: E402
from ranker.features import Candidates, GenerationFeatures, ProductTable, features_for  # noqa: E402
from ranker.recall import FusionConfig, fuse  # noqa: E402
from ranker.rerank import LearnedRanker, latest_model  # noqa: E402
from ranker.spelling import query_corrector  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--catalog", type=Path, default=HOME_DEPOT, help="where to find queries (judgments.csv beside it)")
    parser.add_argument("--queries", type=int, default=1000)
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    data_dir = resolve_data_dir(args.data_dir)
    reader = EmbeddedReader(current_generation_dir(data_dir), load_definition())
    encoder = TextEncoder(models_dir(data_dir), reader.encoder_variant, threads=1, query_cache_size=0)
    model = latest_model(data_dir)
    ranker = None
    if model is not None:
        table = ProductTable(reader.all_products(), reader.analyze, reader.definition)
        ranker = LearnedRanker(model, GenerationFeatures(reader, table))
    query_encoder = "shipped"
    if ranker is not None and ranker.query_encoder is not None:  # what re-ranked searches encode with
        encoder, query_encoder = ranker.query_encoder, "tuned (the model's)"  # queries are distinct: no cache hits
    depth = max(100, ranker.depth if ranker else 0)
    started = time.perf_counter()
    corrector = query_corrector(reader)  # built once per generation, as a server worker does
    dictionary_seconds = time.perf_counter() - started
    names = ["correct", "encode", "bm25", "knn", "fuse"]
    if ranker is not None:
        names += ["features", "neural", "xgboost"]
    stages: dict[str, list[float]] = {s: [] for s in (*names, "count+facets", "products")}
    none = Filters()
    for query in load_queries(args.catalog, args.queries):
        marks = [time.perf_counter()]
        query = corrector.correct(query) if corrector is not None else query
        marks.append(time.perf_counter())
        vector = encoder.encode_query(query)
        marks.append(time.perf_counter())
        bm25 = reader.bm25(query, depth, none)
        marks.append(time.perf_counter())
        knn = reader.knn(vector, depth, none)
        marks.append(time.perf_counter())
        candidates = fuse(bm25, knn, FusionConfig())
        marks.append(time.perf_counter())
        if ranker is not None:
            head = candidates[:depth]
            ranks = np.arange(1, len(head) + 1, dtype=np.float64)
            side = [np.array([np.nan if r is None else r for r in (getattr(c, f) for c in head)], dtype=np.float64)
                    for f in ("bm25_rank", "vector_rank")]
            features, vectors = features_for(ranker.source, query, vector,
                                             Candidates([c.id for c in head], ranks, *side))
            marks.append(time.perf_counter())
            neural = ranker.neural.score(vector, vectors, features) if ranker.neural is not None else None
            marks.append(time.perf_counter())
            if ranker.combine == "feature":
                features = np.hstack([features, neural[:, None]])
            ranker.trees.score(features)
            marks.append(time.perf_counter())
        reader.match_summary(query, [h.id for h in knn], none)
        marks.append(time.perf_counter())
        reader.products([c.id for c in candidates[:10]])
        marks.append(time.perf_counter())
        for name, start, end in zip(stages, marks, marks[1:], strict=False):
            stages[name].append((end - start) * 1000)
    total = np.sum([stages[s] for s in stages], axis=0)
    print(f"{reader.document_count:,} products, {len(total)} queries, encoder {reader.encoder_variant} "
          f"({query_encoder} query encoder), one thread, "
          f"depth {depth}, " + (f"model {ranker.version} (neural: {ranker.combine})" if ranker else "no model"))
    print(f"correction dictionary: {len(corrector.counts) if corrector else 0:,} words, built in "
          f"{dictionary_seconds:.2f} s")
    for name, values in [*stages.items(), ("total", list(total))]:
        print(f"{name:<13} p50 {np.percentile(values, 50):6.2f} ms   p99 {np.percentile(values, 99):6.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
