"""One way to score every ranking: ranked id lists per query (BM25, vectors, each fusion,
each model) go through `score_runs`, so they are all measured the same way.

Metrics are averaged over queries; recall@100 over the queries that have at least one
relevant product. Judgments are read from the file given, never copied anywhere.
"""

from __future__ import annotations

import csv
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ranker.metrics import ndcg_at, recall_at, reciprocal_rank

Judgments = dict[str, dict[str, float]]  # query -> product id -> relevance


def read_judgments(path: str | Path) -> Judgments:
    judgments: Judgments = defaultdict(dict)
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            judgments[row["query"].strip()][row["product_id"].strip()] = float(row["relevance"])
    return dict(judgments)


def split_queries(queries: Iterable[str], fold: int, folds: int = 2) -> list[str]:
    """A stable split by hash: the same query always lands in the same fold."""
    return [q for q in queries if int(hashlib.sha1(q.encode()).hexdigest(), 16) % folds == fold]


@dataclass(frozen=True)
class Scores:
    ndcg5: float
    ndcg10: float
    mrr: float
    recall100: float
    queries: int

    def as_dict(self) -> dict[str, float]:
        return {"ndcg@5": round(self.ndcg5, 4), "ndcg@10": round(self.ndcg10, 4), "mrr": round(self.mrr, 4),
                "recall@100": round(self.recall100, 4), "queries": self.queries}


def score_runs(runs: Mapping[str, list[str]], judgments: Judgments) -> Scores:
    """Metrics of ranked lists already computed (query -> ids)."""
    n5 = n10 = rr = 0.0
    recalls: list[float] = []
    for query, ranked in runs.items():
        judged = judgments[query]
        n5 += ndcg_at(ranked, judged, 5)
        n10 += ndcg_at(ranked, judged, 10)
        rr += reciprocal_rank(ranked, judged)
        r = recall_at(ranked, judged, 100)
        if r is not None:
            recalls.append(r)
    n = max(1, len(runs))
    return Scores(n5 / n, n10 / n, rr / n, sum(recalls) / max(1, len(recalls)), len(runs))
