"""What the precise matching set costs or buys on judged queries, paired, in process.

    python bench/matching.py --data-dir DIR --judgments FILE [--limit N] [--json OUT]
        [--variant NAME=MSM,THRESHOLD,RELAX_BELOW ...]

Loads DIR the way a server worker does (its model, if one is trained) and searches the
same queries under each matching variant: `loose` (any one word, every vector neighbour:
what ShopRank did before precise matching), the served default (indexer.settings), and
any `--variant` given ("none" for no minimum-should-match or no threshold). Prints for
each nDCG@10 and recall@100 over the whole catalog (unjudged = not relevant), how many
queries kept the precise set (were not relaxed) and their mean total, and each
variant's paired difference from `loose` with a 95% bootstrap interval over queries: the
noise a "no drop" claim is judged against.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from indexer import settings  # noqa: E402
from indexer.backends import open_backend  # noqa: E402
from ranker.evaluate import known_judgments, read_judgments  # noqa: E402
from ranker.metrics import ndcg_at, recall_at  # noqa: E402
from ranker.request import SearchRequest  # noqa: E402
from ranker.serving import ServingState  # noqa: E402
from ranker.stages import Matching  # noqa: E402

BOOTSTRAP_SAMPLES = 2_000


def parse_variant(text: str) -> tuple[str, Matching]:
    name, _, spec = text.partition("=")
    msm, threshold, relax = [*spec.split(","), "", "", ""][:3]
    return name, Matching(None if msm in ("", "none") else msm, None if threshold in ("", "none") else float(threshold),
                          int(relax or 0))


def measure(pipeline, matching: Matching, judgments, queries):  # type: ignore[no-untyped-def]
    pipeline.matching = matching
    ndcg, recall, precise, totals = [], [], 0, []
    for query in queries:
        ranked = pipeline.rank(SearchRequest(query, k=100))
        ids = [c.id for c in ranked.candidates[:100]]
        ndcg.append(ndcg_at(ids, judgments[query], 10))
        found = recall_at(ids, judgments[query], 100)  # None: the query has no relevant product
        recall.append(np.nan if found is None else found)
        if ranked.search.matching.minimum_should_match is not None:
            precise += 1
            totals.append(pipeline.facets(ranked.search, ranked.recalled).total)
    return np.array(ndcg), np.array(recall), precise, float(np.mean(totals)) if totals else 0.0


def interval(diff: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    diff = diff[~np.isnan(diff)]
    means = [diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(BOOTSTRAP_SAMPLES)]
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--judgments", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=MSM,THRESHOLD,RELAX_BELOW")
    parser.add_argument("--json")
    args = parser.parse_args()
    pipeline = ServingState(open_backend(settings.data_dir(args.data_dir))).pipeline()
    judgments, queries = known_judgments(read_judgments(args.judgments), pipeline.reader, args.limit)
    served = Matching(settings.minimum_should_match(), settings.vector_threshold(), settings.match_relax_below())
    variants = {"loose": Matching(), "served": served, **dict(parse_variant(v) for v in args.variant)}
    rng = np.random.default_rng(7)
    results, base = {}, None
    print(f"{len(queries):,} queries, model {pipeline.ranker.version if pipeline.ranker else 'none'}")
    print(f"{'variant':<10} {'setting':<34} {'nDCG@10':>8} {'recall@100':>10} {'precise':>8} {'total':>7}  "
          "paired vs loose (95% interval)")
    for name, matching in variants.items():
        ndcg, recall, precise, total = measure(pipeline, matching, judgments, queries)
        base = base or (ndcg, recall)
        d_ndcg, d_recall = ndcg - base[0], recall - base[1]
        row = {"setting": matching.__dict__, "ndcg@10": round(float(ndcg.mean()), 4),
               "recall@100": round(float(np.nanmean(recall)), 4), "precise_queries": precise,
               "mean_precise_total": round(total, 1), "delta_ndcg@10": round(float(d_ndcg.mean()), 4),
               "delta_ndcg@10_interval": [round(x, 4) for x in interval(d_ndcg, rng)],
               "delta_recall@100": round(float(np.nanmean(d_recall)), 4),
               "delta_recall@100_interval": [round(x, 4) for x in interval(d_recall, rng)]}
        results[name] = row
        setting = f"{matching.minimum_should_match}, {matching.vector_threshold}, {matching.relax_below}"
        print(f"{name:<10} {setting:<34} {row['ndcg@10']:>8.4f} {row['recall@100']:>10.4f} {precise:>8,} "
              f"{total:>7.1f}  nDCG {row['delta_ndcg@10']:+.4f} {row['delta_ndcg@10_interval']}, "
              f"recall {row['delta_recall@100']:+.4f} {row['delta_recall@100_interval']}")
    pipeline.matching = replace(served)
    if args.json:
        Path(args.json).write_text(json.dumps({"queries": len(queries), "variants": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
