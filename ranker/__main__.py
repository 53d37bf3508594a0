"""`python -m ranker evaluate`: measure recall and fusion on relevance judgments.

BM25 and vector top-100 lists are computed once per query through the serving code
(the same reader, the same query encoder); every fusion setting is then scored on them.
Settings are chosen on one half of the queries (a stable hash split) and reported on the
other half as well, so the chosen default is not graded on what it was tuned on.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from indexer.backends import backend_name
from indexer.catalog import read_catalog
from indexer.encoder import TextEncoder
from indexer.generations import current_generation_dir, read_pointer
from indexer.mapping import load_definition
from indexer.pipeline import choose_encoder, publish
from indexer.settings import add_common_arguments, configure_logging, models_dir, resolve_data_dir
from indexer.store.base import Filters
from indexer.store.embedded import EmbeddedReader
from ranker.evaluate import Scores, read_judgments, score_runs, split_queries
from ranker.fusion import blend_scores
from ranker.recall import FusionConfig, fuse
from ranker.report import per_query_ndcg, render
from ranker.training import fold_of

DEPTH = 100
RRF_KS = (5, 10, 20, 40, 60, 100)
RRF_WEIGHTS = (0.6, 0.7, 0.8)
WEIGHTS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def ensure_index(data_dir: Path, catalog: Path | None, encoder: str) -> None:
    """Index `catalog` into `data_dir` unless its serving generation already holds it."""
    if catalog is None:
        return
    pointer = read_pointer(data_dir)
    if pointer.current is not None:
        directory = current_generation_dir(data_dir)
        manifest = json.loads((directory / "manifest.json").read_text())
        if manifest.get("source") == str(catalog) and manifest["encoder"]["variant"] == encoder:
            return
    report = read_catalog(catalog)
    print(f"indexing {catalog} ({len(report.products):,} products) into {data_dir}", file=sys.stderr)
    publish(data_dir, encoder, str(catalog), products=report.products)


def fusion_grid() -> dict[str, FusionConfig]:
    # Every entry states its weights: the grid must not move when the defaults do.
    grid = {f"rrf k={k}": FusionConfig("rrf", rrf_k=k, lexical_weight=0.5, vector_weight=0.5) for k in RRF_KS}
    grid.update({f"rrf k={k} bm25={w:.1f}": FusionConfig("rrf", rrf_k=k, lexical_weight=w, vector_weight=round(1 - w, 2))
                 for k in (10, 60) for w in RRF_WEIGHTS})
    grid.update({f"weighted bm25={w:.1f}": FusionConfig("weighted", lexical_weight=w, vector_weight=round(1 - w, 2))
                 for w in WEIGHTS})
    return grid


def open_for_judgments(args: argparse.Namespace, command: str):  # type: ignore[no-untyped-def]
    """The set-up evaluate and train share: the embedded index (built from --catalog if
    asked), its query encoder, and the judgments restricted to products it holds."""
    if backend_name() != "embedded":
        raise SystemExit(f"error: {command} measures the embedded index; unset SHOPRANK_BACKEND to run it")
    data_dir = resolve_data_dir(args.data_dir)
    ensure_index(data_dir, args.catalog, choose_encoder(getattr(args, "encoder", None), data_dir))
    reader = EmbeddedReader(current_generation_dir(data_dir), load_definition())
    encoder = TextEncoder(models_dir(data_dir), reader.encoder_variant, threads=1)
    known = {p["id"] for p in reader.all_products()}
    judgments = {q: {d: r for d, r in js.items() if d in known} for q, js in read_judgments(args.judgments).items()}
    queries = sorted(q for q, js in judgments.items() if js)[: args.limit or None]
    return data_dir, reader, encoder, judgments, queries


def cmd_evaluate(args: argparse.Namespace) -> int:
    _data_dir, reader, encoder, judgments, queries = open_for_judgments(args, "evaluate")

    started = time.perf_counter()
    bm25, vector = {}, {}
    for query in tqdm(queries, desc="recall", unit="query", disable=None):
        bm25[query] = reader.bm25(query, DEPTH, Filters())
        vector[query] = reader.knn(encoder.encode_query(query), DEPTH, Filters())
    seconds = time.perf_counter() - started

    folds = {"tune": split_queries(queries, 0), "held_out": split_queries(queries, 1), "all": queries}
    methods: dict[str, dict[str, list[str]]] = {
        "bm25": {q: [h.id for h in bm25[q]] for q in queries},
        "vector": {q: [h.id for h in vector[q]] for q in queries},
    }
    for name, config in fusion_grid().items():
        methods[name] = {q: [c.id for c in fuse(bm25[q], vector[q], config)][:DEPTH] for q in queries}

    results: dict[str, dict[str, dict[str, float]]] = {}
    for name, runs in methods.items():
        results[name] = {}
        for fold, fold_queries in folds.items():
            scores: Scores = score_runs({q: runs[q] for q in fold_queries}, judgments)
            results[name][fold] = scores.as_dict()
    best = max((n for n in methods if n not in ("bm25", "vector")), key=lambda n: results[n]["tune"]["ndcg@10"])

    print(f"\n{len(queries):,} queries, {reader.document_count:,} products, encoder {reader.encoder_variant}; "
          f"retrieval over the whole catalog, unjudged = not relevant; recall took {seconds:.0f}s\n")
    header = f"{'method':<24} {'tune nDCG@10':>12} {'held-out nDCG@10':>16} {'nDCG@5':>7} {'MRR':>6} {'recall@100':>10}"
    print(header)
    print("-" * len(header))
    for name in methods:
        tune, held = results[name]["tune"], results[name]["held_out"]
        mark = "  <- best on tune" if name == best else ""
        print(f"{name:<24} {tune['ndcg@10']:>12.4f} {held['ndcg@10']:>16.4f} {held['ndcg@5']:>7.4f} "
              f"{held['mrr']:>6.4f} {held['recall@100']:>10.4f}{mark}")
    print("\n(nDCG@5, MRR and recall@100 are on the held-out half)")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "queries": len(queries), "documents": reader.document_count, "encoder": reader.encoder_variant,
            "best_on_tune": best, "methods": results}, indent=2))
    return 0


def _order(ids: list[str], scores: np.ndarray) -> list[str]:
    return [ids[i] for i in np.argsort(-scores, kind="stable")]


def ablation_runs(rows: list, model_scores: dict[str, np.ndarray],  # type: ignore[type-arg]
                  judged_scores: dict[str, np.ndarray]) -> dict[str, dict[str, dict[str, list[str]]]]:
    """task -> method -> query -> ranked ids, for the held-out scores of cross-validation."""
    from ranker.features import FEATURE_INDEX

    bm25_col, cos_col = FEATURE_INDEX["bm25_combined"], FEATURE_INDEX["vector_cosine"]
    fusion = FusionConfig()
    runs: dict[str, dict[str, dict[str, list[str]]]] = {"retrieval": {}, "rerank": {}}
    for name in ("bm25", "vector", "hybrid", "hybrid + xgboost"):
        runs["retrieval"][name], runs["rerank"][name] = {}, {}
    for r in rows:
        recalled = np.flatnonzero(r.in_recall)
        recalled_ids = [r.ids[i] for i in recalled]
        runs["retrieval"]["bm25"][r.query] = r.bm25_ids[:DEPTH]
        runs["retrieval"]["vector"][r.query] = r.vector_ids[:DEPTH]
        runs["retrieval"]["hybrid"][r.query] = r.fused_ids[:DEPTH]
        runs["retrieval"]["hybrid + xgboost"][r.query] = _order(recalled_ids, model_scores[r.query][recalled])[:DEPTH]
        judged = np.flatnonzero(r.judged)
        judged_ids = [r.ids[i] for i in judged]
        bm25, cos = r.features[judged, bm25_col], r.features[judged, cos_col]
        runs["rerank"]["bm25"][r.query] = _order(judged_ids, bm25)
        runs["rerank"]["vector"][r.query] = _order(judged_ids, cos)
        runs["rerank"]["hybrid"][r.query] = _order(
            judged_ids, blend_scores(bm25, cos, fusion.lexical_weight, fusion.vector_weight))
        runs["rerank"]["hybrid + xgboost"][r.query] = _order(judged_ids, judged_scores[r.query])
    return runs


def cmd_train(args: argparse.Namespace) -> int:
    import xgboost as xgb

    from ranker.training import FeatureBuilder, build_dataset, cross_validated_scores, train_xgboost

    data_dir, reader, encoder, judgments, queries = open_for_judgments(args, "train")

    started = time.perf_counter()
    builder = FeatureBuilder(reader, encoder, FusionConfig(), args.depth)
    rows = build_dataset(builder, judgments, queries)
    built = time.perf_counter() - started
    scores, judged_scores, _models = cross_validated_scores(rows, args.folds)
    validated = time.perf_counter() - started - built

    results: dict[str, dict[str, dict[str, float]]] = {}
    runs_by_task = ablation_runs(rows, scores, judged_scores)
    for task, methods in runs_by_task.items():
        results[task] = {name: score_runs(runs, judgments).as_dict() for name, runs in methods.items()}
    print(f"\n{len(queries):,} queries, {reader.document_count:,} products, recall depth {args.depth}, "
          f"{args.folds}-fold cross-validation by query (features {built:.0f}s, training {validated:.0f}s)")
    for task, label in (("retrieval", "retrieval over the whole catalog (unjudged = not relevant)"),
                        ("rerank", "re-ranking each query's judged products")):
        print(f"\n{label}\n{'method':<20} {'nDCG@5':>7} {'nDCG@10':>8} {'MRR':>7} {'recall@100':>10}")
        for name, m in results[task].items():
            print(f"{name:<20} {m['ndcg@5']:>7.4f} {m['ndcg@10']:>8.4f} {m['mrr']:>7.4f} {m['recall@100']:>10.4f}")

    # The served model: all queries, a tenth held out for early stopping.
    valid = [r for r in rows if fold_of(r.query, 10) == 0]
    model = train_xgboost([r for r in rows if fold_of(r.query, 10) != 0], valid)
    out_dir = data_dir / "rankers"
    out_dir.mkdir(parents=True, exist_ok=True)
    version = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    importance = model.get_score(importance_type="gain")
    from ranker.features import FEATURE_NAMES

    named = {FEATURE_NAMES[int(k[1:])]: round(v, 3) for k, v in importance.items()}
    meta = {"version": version, "features": list(FEATURE_NAMES), "depth": args.depth,
            "trees": model.num_boosted_rounds(), "cross_validation": results,
            "feature_importance_gain": dict(sorted(named.items(), key=lambda kv: -kv[1])),
            "xgboost": xgb.__version__}
    # Meta first, model last and atomically: a server that sees the model sees its meta.
    (out_dir / f"xgb-{version}.meta.json").write_text(json.dumps(meta, indent=2))
    tmp = out_dir / f".xgb-{version}.tmp.json"  # the extension picks the format: keep .json
    model.save_model(tmp)
    tmp.replace(out_dir / f"xgb-{version}.json")
    print(f"\nmodel: {out_dir / f'xgb-{version}.json'} ({model.num_boosted_rounds()} trees); top features by gain: "
          + ", ".join(list(meta["feature_importance_gain"])[:6]))
    if args.json:
        Path(args.json).write_text(json.dumps(meta, indent=2))
    report = Path(args.report) if args.report else out_dir / f"xgb-{version}.report.html"
    report.write_text(render(
        f"ShopRank ranker {version}: {len(queries):,} queries, {args.folds}-fold cross-validation",
        results,
        per_query_ndcg(runs_by_task["retrieval"]["hybrid"], judgments),
        per_query_ndcg(runs_by_task["retrieval"]["hybrid + xgboost"], judgments),
        meta["feature_importance_gain"]))
    print(f"report: {report}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ranker", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("evaluate", help="measure BM25, vectors and every fusion setting on judgments")
    add_common_arguments(p)
    p.add_argument("--judgments", required=True, type=Path, help="CSV with query,product_id,relevance")
    p.add_argument("--catalog", type=Path, help="index this catalog first (skipped if already serving)")
    p.add_argument("--encoder", choices=("fp32", "int8"), help="for --catalog indexing (default as for reindex)")
    p.add_argument("--json", help="write the figures here too")
    p.add_argument("--limit", type=int, default=0, help="evaluate only the first N queries (smoke runs)")
    p = sub.add_parser("train", help="train the XGBoost ranker; prints its query-level cross-validation")
    add_common_arguments(p)
    p.add_argument("--judgments", required=True, type=Path, help="CSV with query,product_id,relevance")
    p.add_argument("--catalog", type=Path, help="index this catalog first (skipped if already serving)")
    p.add_argument("--depth", type=int, default=200, help="recall candidates re-ranked per query")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--json", help="write the figures here too")
    p.add_argument("--limit", type=int, default=0, help="only the first N queries (smoke runs)")
    p.add_argument("--report", help="HTML report path (default: next to the model)")
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    return cmd_train(args) if args.command == "train" else cmd_evaluate(args)


if __name__ == "__main__":
    sys.exit(main())
