"""Changes to the ranking model that were measured and not kept, rerunnable.

    python bench/ranking_ablation.py --judgments FILE [--catalog FILE] [--data-dir DIR] [--variant NAME ...]
                                     [--json OUT]

Each variant is a five-fold cross-validation by query of the XGBoost model (without the
neural scorer, to isolate the change) against the same baseline: training rows built as
`python -m ranker train` builds them (ranker.training.dataset: the search pipeline's
recall and features, the same folds), with the shipped query encoder, and the grid point
`XGB_GRID[0]`. Printed per variant: retrieval nDCG@10 and recall@100
over the whole catalog, and nDCG@5 re-ranking each query's judged products. The extra
features live here, not in `ranker/features.py`, because they did not earn their place;
this script is how to check that again after the features or the data change. About
2–3 minutes per variant on 2 cores, plus building the rows once (twice with `depth-300`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from indexer import settings  # noqa: E402
from indexer.backends import open_backend  # noqa: E402
from ranker.evaluate import score_runs  # noqa: E402
from ranker.features.names import FEATURE_INDEX  # noqa: E402
from ranker.training.dataset import QueryRows, build_rows, judged_view  # noqa: E402
from ranker.training.fit import TrainingSet  # noqa: E402
from ranker.training.folds import fold_splits, validation_split  # noqa: E402
from ranker.training.xgboost_models import XGB_GRID, predict, train_xgboost  # noqa: E402

NUMBER = re.compile(r"^[\d.]+$")


class ExtraFeatures:
    """Columns appended to a candidate list's feature matrix for one variant."""

    def __init__(self, data: TrainingSet, kinds: tuple[str, ...]):
        self.data, self.kinds = data, kinds
        if "head-word" in kinds:
            analyze = data.reader.analyze
            titles = [analyze(re.sub(r"\(.*?\)", " ", p["title"])) for p in data.catalog.products]
            self.title_words = [set(t) for t in titles]
            self.title_tail = [set(t[-3:]) for t in titles]
            self.title_bigrams = [set(itertools.pairwise(t)) for t in titles]

    def __call__(self, query: str, r: QueryRows) -> np.ndarray:
        columns = []
        if "list-relative" in self.kinds:
            columns.append(list_relative(r.features))
        if "head-word" in self.kinds:
            columns.append(self.head_word(self.data.searched_text(query), r.ordinals))
        return np.hstack(columns)

    def head_word(self, query: str, ordinals: np.ndarray) -> np.ndarray:
        """Is the query's head word (its last non-number word: 'drill' in 'cordless drill
        18v') in the title, in the title's last three words; its first word; bigrams."""
        tokens = self.data.reader.analyze(query)
        words = [t for t in tokens if not NUMBER.match(t)]
        head, first = (words[-1], words[0]) if words else (None, None)
        bigrams = set(itertools.pairwise(tokens))
        out = np.zeros((len(ordinals), 4), dtype=np.float32)
        for k, o in enumerate(ordinals):
            out[k] = (head in self.title_words[o], head in self.title_tail[o], first in self.title_words[o],
                      len(bigrams & self.title_bigrams[o]) / len(bigrams) if bigrams else 0.0)
        return out


def list_relative(features: np.ndarray) -> np.ndarray:
    """Each candidate against its list: BM25, cosine, title BM25 and coverage minus the
    list's best, and z-scores of BM25 and cosine."""
    def col(name: str) -> np.ndarray:
        return features[:, FEATURE_INDEX[name]]

    bm25, cosine = col("bm25_combined"), col("vector_cosine")
    return np.stack([bm25 - bm25.max(), cosine - cosine.max(), col("bm25_title") - col("bm25_title").max(),
                     col("query_coverage_all_fields") - col("query_coverage_all_fields").max(),
                     (bm25 - bm25.mean()) / (bm25.std() + 1e-6), (cosine - cosine.mean()) / (cosine.std() + 1e-6)],
                    axis=1).astype(np.float32)


@dataclass(frozen=True)
class Variant:
    description: str
    params: dict[str, Any] = field(default_factory=dict)
    extra: tuple[str, ...] = ()
    depth: int = 200
    judged_only: bool = False  # train on each query's judged products only


VARIANTS: dict[str, Variant] = {
    "baseline": Variant("none (baseline)"),
    "depth-300": Variant("re-rank the fused top 300 instead of 200", depth=300),
    "list-relative": Variant("list-relative features (BM25, cosine, coverage minus the list's best; z-scores)",
                             extra=("list-relative",)),
    "head-word": Variant("query head word in the title / its last 3 words; first word; bigrams",
                         extra=("head-word",)),
    "both-extras": Variant("both of the above", extra=("list-relative", "head-word")),
    "all-pairs": Variant("all pairs (`lambdarank_pair_method=mean`)", {"lambdarank_pair_method": "mean"}),
    "pairwise": Variant("`rank:pairwise`", {"objective": "rank:pairwise"}),
    "top-100-pairs": Variant("pairs from the top 100, not 16 (`lambdarank_num_pair_per_sample=100`)",
                             {"lambdarank_num_pair_per_sample": 100}),
    "stop-on-ndcg100": Variant("early stopping on validation nDCG@100, not @10", {"eval_metric": "ndcg@100"}),
    "judged-regression": Variant("trained on judged lists only, squared error on the gain",
                                 {"objective": "reg:squarederror"}, judged_only=True),
    "judged-lambdamart": Variant("trained on judged lists only, `rank:ndcg`", judged_only=True),
    "judged-extras": Variant("trained on judged lists only, `rank:ndcg`, list-relative and head-word features",
                             extra=("list-relative", "head-word"), judged_only=True),
}


def cross_validate_variant(rows: list[QueryRows], variant: Variant,
                           extra: Callable[[str, QueryRows], np.ndarray] | None) -> dict[str, dict[str, list[str]]]:
    """The folds and validation quarters of `python -m ranker evaluate` (ranker.training.folds)."""
    """task -> query -> ranked ids, every query scored by a model that never saw it."""
    def widen(r: QueryRows) -> QueryRows:
        return replace(r, features=np.hstack([r.features, extra(r.query, r)])) if extra else r

    lists = {r.query: widen(r) for r in rows}
    judged = {r.query: widen(judged_view(r)) for r in rows}
    params = {**XGB_GRID[0], **variant.params}
    runs: dict[str, dict[str, list[str]]] = {"retrieval": {}, "rerank": {}}
    by_query = {r.query: r for r in rows}
    for _fold, train_q, test_q in fold_splits(sorted(by_query), 5):
        fit_q, valid_q = validation_split(train_q)
        train, valid, test = ([by_query[q] for q in part] for part in (fit_q, valid_q, test_q))
        source = judged if variant.judged_only else lists
        model = train_xgboost([source[r.query] for r in train], [source[r.query] for r in valid], params)
        for r in test:
            recalled = np.flatnonzero(r.in_recall)
            scores = predict(model, lists[r.query].features)[recalled]
            runs["retrieval"][r.query] = [r.ids[recalled[i]] for i in np.argsort(-scores, kind="stable")][:100]
            j = judged[r.query]
            runs["rerank"][r.query] = [j.ids[i] for i in np.argsort(-predict(model, j.features), kind="stable")]
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--judgments", required=True, type=Path)
    parser.add_argument("--data-dir", help="default: $SHOPRANK_DATA or ./data, as for `python -m ranker`")
    parser.add_argument("--catalog", type=Path, help="index this catalog first (skipped if already serving)")
    parser.add_argument("--variant", action="append", choices=list(VARIANTS),
                        help="repeat to pick several (default: all); the baseline always runs")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--limit", type=int, default=0, help="only the first N queries (smoke runs)")
    args = parser.parse_args()
    names = ["baseline", *[n for n in (args.variant or VARIANTS) if n != "baseline"]]

    data, queries = TrainingSet.open(open_backend(settings.data_dir(args.data_dir)), args.judgments,
                                     catalog=args.catalog, limit=args.limit)
    judgments = data.judgments
    sets: dict[int, TrainingSet] = {}
    rows_by_depth: dict[int, list[QueryRows]] = {}
    results: dict[str, dict[str, Any]] = {}
    print(f"{'variant':<20} {'nDCG@10':>8} {'recall@100':>10} {'re-rank nDCG@5':>15} {'seconds':>8}")
    for name in names:
        variant = VARIANTS[name]
        if variant.depth not in rows_by_depth:
            sets[variant.depth] = replace(data, depth=variant.depth)
            rows_by_depth[variant.depth] = build_rows(sets[variant.depth].row_builder(), judgments, queries)
        started = time.perf_counter()
        extra = ExtraFeatures(sets[variant.depth], variant.extra) if variant.extra else None
        runs = cross_validate_variant(rows_by_depth[variant.depth], variant, extra)
        retrieval, rerank = score_runs(runs["retrieval"], judgments), score_runs(runs["rerank"], judgments)
        seconds = time.perf_counter() - started
        results[name] = {"change": variant.description, "retrieval_ndcg@10": round(retrieval.ndcg10, 4),
                         "retrieval_recall@100": round(retrieval.recall100, 4),
                         "rerank_ndcg@5": round(rerank.ndcg5, 4)}
        print(f"{name:<20} {retrieval.ndcg10:>8.4f} {retrieval.recall100:>10.4f} {rerank.ndcg5:>15.4f} "
              f"{seconds:>8.0f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"queries": len(queries), "params": XGB_GRID[0], "variants": results},
                                        indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
