"""How much of the re-ranking task the titles can decide: facts about the judgments alone.

    python bench/label_noise.py --judgments FILE --catalog FILE

Prints the re-ranking nDCG@5 of random order (the floor) and of the judgments' own
order (the ceiling: queries with nothing relevant score 0 for every order), and how
often two products with the same title, judged for the same query, got different grades.
A ranker that reads titles must give such a pair one score, so their disagreement is
noise that no title model can follow.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from indexer.catalog import read_catalog  # noqa: E402
from ranker.evaluate import read_judgments  # noqa: E402
from ranker.metrics import ndcg_at  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--judgments", required=True, type=Path)
    parser.add_argument("--catalog", required=True, type=Path)
    parser.add_argument("--shuffles", type=int, default=20, help="random orders averaged for the floor")
    args = parser.parse_args()
    judgments = read_judgments(args.judgments)
    titles = {p["id"]: p["title"] for p in read_catalog(args.catalog).products}
    rng = np.random.default_rng(0)

    def mean_ndcg5(order) -> float:  # type: ignore[no-untyped-def]
        return float(np.mean([ndcg_at(order(judged), judged, 5) for judged in judgments.values()]))

    floor = np.mean([mean_ndcg5(lambda j: list(rng.permutation(list(j)))) for _ in range(args.shuffles)])
    ceiling = mean_ndcg5(lambda j: sorted(j, key=lambda d: -j[d]))
    nothing_relevant = sum(max(j.values()) <= 1.0 for j in judgments.values())
    gaps = []
    for judged in judgments.values():
        by_title: dict[str, list[float]] = defaultdict(list)
        for product, relevance in judged.items():
            by_title[titles[product]].append(relevance)
        gaps += [abs(a - b) for grades in by_title.values() for a, b in itertools.combinations(grades, 2)]
    gaps_array = np.array(gaps)
    print(f"{len(judgments):,} queries; re-ranking nDCG@5 of random order {floor:.4f}, "
          f"of the judgments' own order {ceiling:.4f}")
    print(f"queries with nothing relevant (every order scores 0): {nothing_relevant}")
    print(f"same query, same title: {len(gaps):,} pairs; graded differently {np.mean(gaps_array > 0.01):.0%}, "
          f"by {gaps_array.mean():.2f} on average (1-3 scale); 2/3 of a grade or more apart {np.mean(gaps_array >= 0.66):.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
