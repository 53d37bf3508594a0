"""`python -m ranker evaluate | train | ltr-upload`: measure ranking on relevance
judgments, train the served models, and send a version's Learning-to-Rank export to a
cluster.

`evaluate` builds features for every judged query through the serving recall path and
cross-validates every model by query, on two tasks (retrieval over the whole catalog,
re-ranking each query's judged products); `train` runs the same, then trains and saves
the served models. `evaluate --fusion-grid` scores every fusion setting on recall alone,
chosen on one half of the queries (a stable hash split) and reported on the other half,
so the chosen default is not graded on what it was tuned on.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from ranker.ltr_export import LTR_MODEL, ltr_view, write_ltr_bodies
from ranker.metrics import recall_at
from ranker.recall import FusionConfig, fuse
from ranker.report import per_query_ndcg, render
from ranker.spelling import query_corrector
from ranker.training import (
    CrossValidation,
    FeatureBuilder,
    QueryRows,
    build_dataset,
    cross_validate,
    save_served_models,
    train_served_models,
    train_xgboost,
)

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


def cmd_fusion_grid(args: argparse.Namespace) -> int:
    _data_dir, reader, encoder, judgments, queries = open_for_judgments(args, "evaluate")

    corrector = None if args.no_correct else query_corrector(reader)
    started = time.perf_counter()
    bm25, vector = {}, {}
    for query in tqdm(queries, desc="recall", unit="query", disable=None):
        text = corrector.correct(query) if corrector is not None else query
        bm25[query] = reader.bm25(text, DEPTH, Filters())
        vector[query] = reader.knn(encoder.encode_query(text), DEPTH, Filters())
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


# ablation row -> the cross-validated model behind it
MODEL_ROWS = {
    "hybrid + neural": "neural",
    "hybrid + xgboost": "xgboost",
    "hybrid + xgboost + neural (feature)": "xgboost + neural feature",
    "hybrid + xgboost + neural (blend)": "xgboost + neural blend",
    "hybrid + xgboost (LTR feature set)": LTR_MODEL,  # exported for a cluster's `sltr`; ShopRank does not serve it
}
# the rows `train --combine auto` may serve -> how the served ranker uses the neural score
SERVABLE_ROWS = {
    "hybrid + xgboost": None,
    "hybrid + xgboost + neural (feature)": "feature",
    "hybrid + xgboost + neural (blend)": "blend",
}


def ablation_runs(rows: list[QueryRows], cv: CrossValidation) -> dict[str, dict[str, dict[str, list[str]]]]:
    """task -> method -> query -> ranked ids, from the held-out scores of cross-validation."""
    from ranker.features import FEATURE_INDEX

    bm25_col, cos_col = FEATURE_INDEX["bm25_combined"], FEATURE_INDEX["vector_cosine"]
    fusion = FusionConfig()
    models = {row: model for row, model in MODEL_ROWS.items() if model in cv.retrieval}
    names = ("bm25", "vector", "hybrid", *models)
    runs: dict[str, dict[str, dict[str, list[str]]]] = {task: {n: {} for n in names} for task in ("retrieval", "rerank")}
    for r in rows:
        recalled = np.flatnonzero(r.in_recall)
        recalled_ids = [r.ids[i] for i in recalled]
        runs["retrieval"]["bm25"][r.query] = r.bm25_ids[:DEPTH]
        runs["retrieval"]["vector"][r.query] = r.vector_ids[:DEPTH]
        runs["retrieval"]["hybrid"][r.query] = r.fused_ids[:DEPTH]
        judged = np.flatnonzero(r.judged)
        judged_ids = [r.ids[i] for i in judged]
        bm25, cos = r.features[judged, bm25_col], r.features[judged, cos_col]
        runs["rerank"]["bm25"][r.query] = _order(judged_ids, bm25)
        runs["rerank"]["vector"][r.query] = _order(judged_ids, cos)
        runs["rerank"]["hybrid"][r.query] = _order(
            judged_ids, blend_scores(bm25, cos, fusion.lexical_weight, fusion.vector_weight))
        for row, model in models.items():
            runs["retrieval"][row][r.query] = _order(recalled_ids, cv.retrieval[model][r.query][recalled])[:DEPTH]
            runs["rerank"][row][r.query] = _order(judged_ids, cv.rerank[model][r.query])
    return runs


@dataclass
class Ablation:
    data_dir: Path
    builder: FeatureBuilder
    rows: list[QueryRows]
    cv: CrossValidation
    runs: dict[str, dict[str, dict[str, list[str]]]]  # task -> method -> query -> ranked ids
    judgments: dict[str, dict[str, float]]
    summary: dict[str, Any]  # what is printed, and written as JSON
    tuning: list[Any] | None = None  # ranker.query_tuning.JudgedQuery per query, when the query encoder is tuned

    def best_servable_row(self) -> str:
        """The learned combination with the best cross-validated retrieval nDCG@10."""
        retrieval = self.summary["results"]["retrieval"]
        return max((row for row in SERVABLE_ROWS if row in retrieval), key=lambda row: retrieval[row]["ndcg@10"])

    def write_report(self, path: Path, title: str, importance: dict[str, float]) -> None:
        path.write_text(render(title, self.summary["results"],
                               per_query_ndcg(self.runs["retrieval"]["hybrid"], self.judgments),
                               per_query_ndcg(self.runs["retrieval"][self.best_servable_row()], self.judgments),
                               importance))
        print(f"report: {path}")


def candidate_pool_recall(rows: list[QueryRows], judgments: dict[str, dict[str, float]]) -> float:
    """Share of relevant products that recall puts among the candidates at all: the
    ceiling of any re-ranker's recall."""
    recalls = [recall_at([r.ids[i] for i in np.flatnonzero(r.in_recall)], judgments[r.query], len(r.ids))
               for r in rows]
    found = [x for x in recalls if x is not None]
    return round(float(np.mean(found)), 4) if found else 0.0


def run_ablation(args: argparse.Namespace, command: str) -> Ablation:
    """Recall + features for every judged query, cross-validated models and the ablation
    table, printed; `train` and `evaluate` share all of it."""
    data_dir, reader, encoder, judgments, queries = open_for_judgments(args, command)
    started = time.perf_counter()
    builder = FeatureBuilder(reader, encoder, FusionConfig(), args.depth, correct=not args.no_correct)
    tuning = None
    if not args.no_query_tuning:
        from ranker.query_tuning import judged_queries, out_of_fold_vectors

        tuning = judged_queries({q: judgments[q] for q in queries}, {q: builder.searched_text(q) for q in queries},
                                builder.table.ord_by_id)
        builder.query_vectors = out_of_fold_vectors(tuning, reader.vectors, args.folds)
    encoders_done = time.perf_counter()
    rows = build_dataset(builder, judgments, queries)
    features_done = time.perf_counter()
    cv = cross_validate(rows, reader.vectors, args.folds, neural=not args.no_neural)
    tuned, built, validated = (encoders_done - started, features_done - encoders_done,
                               time.perf_counter() - features_done)

    runs_by_task = ablation_runs(rows, cv)
    results = {task: {name: score_runs(runs, judgments).as_dict() for name, runs in methods.items()}
               for task, methods in runs_by_task.items()}
    pool = candidate_pool_recall(rows, judgments)
    corrected = sum(builder.searched_text(q) != q for q in queries)
    print(f"\n{len(queries):,} queries ({corrected:,} corrected), {reader.document_count:,} products, "
          f"recall depth {args.depth}, {args.folds}-fold cross-validation by query "
          f"(query encoder {'tuned out of fold, ' + format(tuned, '.0f') + 's' if tuning else 'as shipped'}, "
          f"features {built:.0f}s, training {validated:.0f}s)")
    for task, label in (("retrieval", "retrieval over the whole catalog (unjudged = not relevant)"),
                        ("rerank", "re-ranking each query's judged products")):
        print(f"\n{label}\n{'method':<36} {'nDCG@5':>7} {'nDCG@10':>8} {'MRR':>7} {'recall@100':>10}")
        for name, m in results[task].items():
            print(f"{name:<36} {m['ndcg@5']:>7.4f} {m['ndcg@10']:>8.4f} {m['mrr']:>7.4f} {m['recall@100']:>10.4f}")
    print(f"\nrelevant products among the {args.depth} re-ranked candidates (the ceiling of recall): {pool:.4f}")
    if cv.blend_weights:
        print(f"blend weights chosen per fold: {cv.blend_weights}")
    print(f"trees per fold: {cv.rounds}")
    print(f"settings chosen per fold: {cv.params}")
    summary = {"queries": len(queries), "documents": reader.document_count, "depth": args.depth,
               "corrected_queries": corrected, "query_encoder": "tuned out of fold" if tuning else "as shipped",
               "folds": args.folds, "labels": "gain = relevance - 1; unjudged candidates gain 0",
               "results": results, "candidate_pool_recall": pool, "blend_weights": cv.blend_weights,
               "fold_trees": cv.rounds, "fold_params": cv.params}
    return Ablation(data_dir, builder, rows, cv, runs_by_task, judgments, summary, tuning)


def cmd_evaluate(args: argparse.Namespace) -> int:
    if args.fusion_grid:
        return cmd_fusion_grid(args)
    ablation = run_ablation(args, "evaluate")
    summary = {**ablation.summary, "feature_importance_gain": ablation.cv.importance}
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    ablation.write_report(Path(args.report) if args.report else ablation.data_dir / "evaluation.report.html",
                          f"ShopRank evaluation: {summary['queries']:,} queries, {args.folds}-fold cross-validation",
                          ablation.cv.importance)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    if args.no_neural and args.combine in ("feature", "blend"):
        raise SystemExit(f"error: --combine {args.combine} needs the neural scorer; drop --no-neural")
    ablation = run_ablation(args, "train")
    if args.combine == "auto":
        combine = SERVABLE_ROWS[ablation.best_servable_row()]
    else:
        combine = None if args.combine == "none" else args.combine
    served = train_served_models(ablation.rows, ablation.builder.reader.vectors, ablation.cv, combine)
    version = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    meta = {**served.meta, "version": version, "depth": args.depth, "cross_validation": ablation.summary["results"],
            "blend_weights_cv": ablation.cv.blend_weights}
    out_dir = ablation.data_dir / "rankers"
    out_dir.mkdir(parents=True, exist_ok=True)
    ltr_params, ltr_rounds = ablation.cv.served_settings(LTR_MODEL)
    meta.update(write_ltr_bodies(out_dir, version, ablation.builder.reader.definition,
                                 train_xgboost(ltr_view(ablation.rows), None, ltr_params, rounds=ltr_rounds)))
    if ablation.tuning:
        from ranker.query_tuning import export_query_encoder, tune_query_encoder

        reader = ablation.builder.reader
        meta.update(export_query_encoder(tune_query_encoder(ablation.tuning, reader.vectors), out_dir, version),
                    index_encoder=reader.encoder_variant)
    model_path = save_served_models(out_dir, version, served, meta)
    print(f"\nmodel: {model_path} ({served.xgboost.num_boosted_rounds()} trees, neural: {served.meta['combine']}); "
          "top features by gain: " + ", ".join(list(served.meta["feature_importance_gain"])[:6]))
    if args.json:
        Path(args.json).write_text(json.dumps(meta, indent=2))
    ablation.write_report(Path(args.report) if args.report else out_dir / f"xgb-{version}.report.html",
                          f"ShopRank ranker {version}: {ablation.summary['queries']:,} queries, "
                          f"{args.folds}-fold cross-validation", served.meta["feature_importance_gain"])
    return 0


def cmd_ltr_upload(args: argparse.Namespace) -> int:
    """Send the newest version's Learning-to-Rank bodies to the cluster at OPENSEARCH_URL."""
    from indexer.store.base import BackendUnavailable
    from indexer.store.opensearch import OpenSearchSettings, connect
    from ranker.ltr_export import upload
    from ranker.rerank import latest_model, meta_path

    data_dir = resolve_data_dir(args.data_dir)
    model = latest_model(data_dir)
    if model is None:
        print(f"error: no ranker in {data_dir / 'rankers'}: run `python -m ranker train` first", file=sys.stderr)
        return 1
    meta = json.loads(meta_path(model).read_text())
    if "ltr_model" not in meta:
        print(f"error: {model.name} was trained without a Learning-to-Rank export: train again", file=sys.stderr)
        return 1
    bodies = [json.loads((model.parent / meta[key]).read_text()) for key in ("ltr_featureset", "ltr_model")]
    try:
        settings = OpenSearchSettings.from_env()
        upload(connect(settings), settings, *bodies)
    except BackendUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"uploaded feature set and model {meta['ltr_name']} to {settings.url}; rescore a search with "
          f'{{"sltr": {{"model": "{meta["ltr_name"]}", "params": {{"keywords": TEXT, "query_vector": "[...]"}}}}}} '
          "(ranker.ltr_export.sltr_rescore)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ranker", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
            ("evaluate", "cross-validated ablation: BM25, vectors, hybrid, + neural, + XGBoost, + both"),
            ("train", "the same cross-validation, then train and save the served models")):
        p = sub.add_parser(name, help=help_text)
        add_common_arguments(p)
        p.add_argument("--judgments", required=True, type=Path, help="CSV with query,product_id,relevance")
        p.add_argument("--catalog", type=Path, help="index this catalog first (skipped if already serving)")
        p.add_argument("--encoder", choices=("fp32", "int8"), help="for --catalog indexing (default as for reindex)")
        p.add_argument("--depth", type=int, default=200, help="recall candidates re-ranked per query")
        p.add_argument("--folds", type=int, default=5)
        p.add_argument("--no-neural", action="store_true", help="leave the neural scorer out (faster)")
        p.add_argument("--no-query-tuning", action="store_true",
                       help="keep the shipped query encoder (no fine-tuning on the judgments; faster)")
        p.add_argument("--no-correct", action="store_true",
                       help="search the queries exactly as typed (no spelling, compound or unit correction)")
        p.add_argument("--json", help="write the figures here too")
        p.add_argument("--report", help="HTML report path (default: in the data directory)")
        p.add_argument("--limit", type=int, default=0, help="only the first N queries (smoke runs)")
        if name == "train":
            p.add_argument("--combine", choices=("auto", "feature", "blend", "none"), default="auto",
                           help="how the served ranker uses the neural score: auto = best in cross-validation")
        if name == "evaluate":
            p.add_argument("--fusion-grid", action="store_true",
                           help="instead: every fusion setting on recall only, tuned on half the queries")
    upload = sub.add_parser("ltr-upload", help="send the newest ranker's Learning-to-Rank export to OPENSEARCH_URL")
    add_common_arguments(upload)
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    commands = {"train": cmd_train, "evaluate": cmd_evaluate, "ltr-upload": cmd_ltr_upload}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
