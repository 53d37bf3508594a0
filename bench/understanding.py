"""What query understanding costs a search that names catalog values, in process, paired.

    python bench/understanding.py --data-dir DIR

DIR must hold the demo catalog (`python -m indexer demo-catalog`, then `reindex`): the
queries are every `[color or material] noun` and `[color] [material] noun` its templates
can make (the set tests/test_understanding.py checks). Each query runs with understanding
on and off, alternating, after a warm-up; prints p50 and p99 of each and the median
per-query difference (the lifted recalls: one text search per named value, and one for
all of them).
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
from ranker.pipeline import SearchPipeline  # noqa: E402
from ranker.request import SearchRequest  # noqa: E402
from ranker.spelling import query_corrector  # noqa: E402
from tests.test_understanding import generated_queries  # noqa: E402


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
