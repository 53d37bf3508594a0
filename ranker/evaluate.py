"""One way to score every ranking: any search function `(query, k) -> ranked ids` over
judged queries (the way pyvespa's evaluator works). The in-process search pipeline with
any stage switched on or off, a fold's models, and the live HTTP API are all measured
by the same `score_runs`.

Metrics are averaged over queries; recall@100 over the queries that have at least one
relevant product. Judgments are read from the file given, never copied anywhere.
"""

from __future__ import annotations

import csv
import json
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ranker.metrics import ndcg_at, recall_at, reciprocal_rank
from ranker.pipeline import SearchPipeline
from ranker.request import SearchRequest

Judgments = dict[str, dict[str, float]]  # query -> product id -> relevance
SearchFunction = Callable[[str, int], list[str]]


def read_judgments(path: str | Path) -> Judgments:
    judgments: Judgments = defaultdict(dict)
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            judgments[row["query"].strip()][row["product_id"].strip()] = float(row["relevance"])
    return dict(judgments)


def known_judgments(judgments: Judgments, reader: Any, limit: int = 0) -> tuple[Judgments, list[str]]:
    """The judgments of products the index holds, and the queries that still have one
    (sorted; the first `limit` for a smoke run)."""
    ids = sorted({i for js in judgments.values() for i in js})
    known = {p["id"] for p in reader.products(ids)}
    kept = {q: {d: r for d, r in js.items() if d in known} for q, js in judgments.items()}
    return kept, sorted(q for q, js in kept.items() if js)[: limit or None]


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


def evaluate_search(search: SearchFunction, judgments: Judgments, queries: Iterable[str], k: int = 100,
                    progress: bool = True) -> tuple[Scores, dict[str, list[str]]]:
    """Run `search` for every query; the scores and the runs."""
    queries = list(queries)
    runs = {q: search(q, k) for q in tqdm(queries, desc="searching", unit="query", disable=None if progress else True,
                                          leave=False)}
    return score_runs(runs, judgments), runs


def pipeline_search(pipeline: SearchPipeline, **options: Any) -> SearchFunction:
    """The in-process pipeline as a search function; `options` are SearchRequest fields
    (`rerank=False`, `correct=False`, `mode="bm25"`, …)."""
    base = SearchRequest("", **options)

    def search(query: str, k: int) -> list[str]:
        return [c.id for c in pipeline.rank(replace(base, query=query, k=k)).candidates[:k]]

    return search


def http_search(base_url: str, timeout: float = 30.0, **params: str) -> SearchFunction:
    """`GET /search` of a running server as a search function."""
    base_url = base_url.rstrip("/")

    def search(query: str, k: int) -> list[str]:
        url = f"{base_url}/search?" + urllib.parse.urlencode({"q": query, "k": k, **params})
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return [r["id"] for r in json.loads(response.read())["results"]]

    return search
