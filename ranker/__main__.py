"""`python -m ranker evaluate | train | ltr-upload`: measure ranking on relevance
judgments, fit the served models, send a version's Learning-to-Rank export to a cluster.

evaluate                  every learned model cross-validated by query: each fold's
                          training queries get the fit `train` runs, the held-out queries
                          are searched through the pipeline with it; also writes the
                          settings the next `train` uses (DATA/evaluation/settings.json)
evaluate --served         the data dir's index and newest model, in process
evaluate --url URL        a running server, through GET /search
evaluate --fusion-grid    every fusion setting on recall alone, chosen on one half of the
                          queries and reported on the other
train                     fit and save the served models (settings from the last
                          `evaluate`, else chosen on a validation quarter of the queries)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from indexer import settings
from indexer.backends import open_backend
from indexer.cli import add_common_arguments, configure_logging, positive_int
from indexer.store.base import BackendUnavailable, GenerationError
from ranker.evaluate import evaluate_search, http_search, known_judgments, pipeline_search, read_judgments, score_runs
from ranker.events.stores import open_shopper_store
from ranker.fusion import FusionConfig
from ranker.recall import FuseStage
from ranker.report import per_query_ndcg, render
from ranker.request import SearchRequest
from ranker.training.folds import split

DEPTH = 100
SERVE_DEPTH = 150
# A model learned from the event log has seen the products that were shown (a page or
# two); re-ranking far deeper asks it about candidates unlike any it learned from.
EVENTS_SERVE_DEPTH = 30
RRF_KS = (5, 10, 20, 40, 60, 100)
RRF_WEIGHTS = (0.6, 0.7, 0.8)
WEIGHTS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def settings_path(data_dir: Path) -> Path:
    return data_dir / "evaluation" / "settings.json"


def fusion_grid() -> dict[str, FusionConfig]:
    # Every entry states its weights: the grid must not move when the defaults do.
    grid = {f"rrf k={k}": FusionConfig("rrf", rrf_k=k, lexical_weight=0.5, vector_weight=0.5) for k in RRF_KS}
    grid.update({f"rrf k={k} bm25={w:.1f}": FusionConfig("rrf", rrf_k=k, lexical_weight=w, vector_weight=round(1 - w, 2))
                 for k in (10, 60) for w in RRF_WEIGHTS})
    grid.update({f"weighted bm25={w:.1f}": FusionConfig("weighted", lexical_weight=w, vector_weight=round(1 - w, 2))
                 for w in WEIGHTS})
    return grid


def open_training_set(args: argparse.Namespace, command: str, depth: int | None = None):  # type: ignore[no-untyped-def]
    from ranker.training.fit import TrainingSet

    data_dir = settings.data_dir(args.data_dir)
    try:
        data, queries = TrainingSet.open(open_backend(data_dir), args.judgments, catalog=args.catalog,
                                         encoder=getattr(args, "encoder", None), depth=depth or args.depth,
                                         correct=not args.no_correct, limit=args.limit)
    except TrainingSet.NeedsLocalCatalog as exc:
        raise SystemExit(f"error: {command} {exc}") from None
    return data_dir, data, queries


def cmd_fusion_grid(args: argparse.Namespace) -> int:
    """Recall runs once per query through the pipeline; every fusion setting then runs the
    pipeline's own fuse stage over the same hits."""
    _data_dir, data, queries = open_training_set(args, "evaluate --fusion-grid", depth=DEPTH)
    pipeline = data.pipeline(recall_window=DEPTH)
    started = time.perf_counter()
    recalled = {q: pipeline.rank(SearchRequest(q, k=DEPTH, rerank=False)) for q in queries}
    seconds = time.perf_counter() - started
    fuse = FuseStage()
    methods: dict[str, dict[str, list[str]]] = {
        "bm25": {q: [h.id for h in r.recalled.bm25[:DEPTH]] for q, r in recalled.items()},
        "vector": {q: [h.id for h in r.recalled.vector[:DEPTH]] for q, r in recalled.items()},
    }
    for name, config in fusion_grid().items():
        methods[name] = {q: [c.id for c in fuse(replace(r.search, fusion=config), r.recalled)][:DEPTH]
                         for q, r in recalled.items()}
    halves = {"tune": split(queries, 0, 2)[1], "held_out": split(queries, 1, 2)[1], "all": queries}
    results = {name: {half: score_runs({q: runs[q] for q in qs}, data.judgments).as_dict()
                      for half, qs in halves.items()} for name, runs in methods.items()}
    best = max((n for n in methods if n not in ("bm25", "vector")), key=lambda n: results[n]["tune"]["ndcg@10"])
    print(f"\n{len(queries):,} queries, {data.reader.document_count:,} products, encoder {data.reader.encoder_variant}; "
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
            "queries": len(queries), "documents": data.reader.document_count, "encoder": data.reader.encoder_variant,
            "best_on_tune": best, "methods": results}, indent=2))
    return 0


def _print_table(results: dict[str, dict[str, dict[str, float]]]) -> None:
    for task, label in (("retrieval", "retrieval over the whole catalog, through the search pipeline "
                                      "(unjudged = not relevant)"),
                        ("rerank", "re-ranking each query's judged products (offline, from the held-out rows)")):
        print(f"\n{label}\n{'method':<36} {'nDCG@5':>7} {'nDCG@10':>8} {'MRR':>7} {'recall@100':>10}")
        for name, m in results[task].items():
            print(f"{name:<36} {m['ndcg@5']:>7.4f} {m['ndcg@10']:>8.4f} {m['mrr']:>7.4f} {m['recall@100']:>10.4f}")


def cmd_measure(args: argparse.Namespace) -> int:
    """`--served` or `--url`: one ranking measured as a shopper gets it."""
    data_dir = settings.data_dir(args.data_dir)
    if args.url:
        search, label = http_search(args.url, **dict(p.split("=", 1) for p in args.param)), args.url
        judged = read_judgments(args.judgments)
        queries = sorted(q for q, js in judged.items() if js)[: args.limit or None]
        judgments = judged
    else:
        from ranker.serving import ServingState

        pipeline = ServingState(open_backend(data_dir)).pipeline()
        options = {k: v == "true" if v in ("true", "false") else v for k, v in (p.split("=", 1) for p in args.param)}
        search, label = pipeline_search(pipeline, **options), f"{data_dir} in process"
        judgments, queries = known_judgments(read_judgments(args.judgments), pipeline.reader, args.limit)
        label += f", model {pipeline.ranker.version if pipeline.ranker else 'none'}"
    started = time.perf_counter()
    scores, _runs = evaluate_search(search, judgments, queries, DEPTH)
    print(f"{label}: {len(queries):,} queries in {time.perf_counter() - started:.0f}s")
    figures = scores.as_dict()
    print("  ".join(f"{name} {value}" for name, value in figures.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({"source": label, **figures}, indent=2))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    if args.fusion_grid:
        return cmd_fusion_grid(args)
    if args.served or args.url:
        return cmd_measure(args)
    from ranker.training.cross_validation import cross_validate

    data_dir, data, queries = open_training_set(args, "evaluate")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="shoprank-folds-") as work:
        evaluation = cross_validate(data, queries, args.folds, Path(work), neural=not args.no_neural,
                                    tune_encoder=not args.no_query_tuning, serve_depths=args.serve_depths)
    seconds = time.perf_counter() - started
    results = evaluation.results(data.judgments)
    chosen = evaluation.settings(data.judgments, f"python -m ranker evaluate, {time.strftime('%Y-%m-%d')}, "
                                                 f"{args.folds}-fold cross-validation of {len(queries):,} queries")
    pool = round(float(sum(evaluation.pool_recall) / max(1, len(evaluation.pool_recall))), 4)
    print(f"\n{len(queries):,} queries, {data.reader.document_count:,} products, recall depth {args.depth}, "
          f"{args.folds}-fold cross-validation by query in {seconds:.0f}s "
          f"({', '.join(f'{k} {v:.0f}s' for k, v in evaluation.seconds.items())})")
    _print_table(results)
    print(f"\nrelevant products among the {args.depth} re-ranked candidates (the ceiling of recall): {pool:.4f}")
    print(f"served: {variant_row(chosen.combine)}; choices per fold: {json.dumps(evaluation.fold_choices())}")
    summary = {"queries": len(queries), "documents": data.reader.document_count, "depth": args.depth,
               "folds": args.folds, "query_encoder": "tuned per fold" if not args.no_query_tuning else "as shipped",
               "labels": "gain = relevance - 1; unjudged candidates gain 0", "results": results,
               "candidate_pool_recall": pool, "settings": chosen.to_json(), "fold_choices": evaluation.fold_choices(),
               "feature_importance_gain": evaluation.importance,
               "seconds": {k: round(v) for k, v in evaluation.seconds.items()}}
    out = settings_path(data_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(chosen.to_json(), indent=2))
    (out.parent / "evaluation.json").write_text(json.dumps(summary, indent=2))
    print(f"settings for the next `train`: {out}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    report = Path(args.report) if args.report else out.parent / "evaluation.report.html"
    served_row = variant_row(chosen.combine)
    report.write_text(render(f"ShopRank evaluation: {len(queries):,} queries, {args.folds}-fold cross-validation",
                             results, per_query_ndcg(evaluation.runs["retrieval"]["hybrid"], data.judgments),
                             per_query_ndcg(evaluation.runs["retrieval"][served_row], data.judgments),
                             evaluation.importance))
    print(f"report: {report}")
    return 0


def variant_row(key: str) -> str:
    from ranker.training.variants import BY_KEY

    return BY_KEY[key].row


def cmd_train(args: argparse.Namespace) -> int:
    if args.events:
        return cmd_train_events(args)
    if args.judgments is None:
        raise SystemExit("error: train needs --judgments FILE, or --events to learn from the event log")
    from ranker.training.fit import Settings, default_settings, fit
    from ranker.training.saving import save_version

    data_dir, data, queries = open_training_set(args, "train")
    started = time.perf_counter()
    saved = settings_path(data_dir)
    chosen: Settings | None = None
    if saved.exists() and not args.tune:
        chosen = Settings.from_json(json.loads(saved.read_text()))
        print(f"settings from {saved} ({chosen.chosen_by})", file=sys.stderr)
    elif len(queries) < 40:
        chosen = default_settings()
    if args.no_neural and chosen is not None and chosen.combine != "xgboost":
        chosen = replace(chosen, combine="xgboost")
    fitted = fit(data, queries, chosen, neural=not args.no_neural, tune_encoder=not args.no_query_tuning)
    version = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    path = save_version(data_dir / "rankers", version, fitted, data,
                        extra={"queries": len(queries), "judgments": str(args.judgments),
                               "serve_depth": min(args.serve_depth or SERVE_DEPTH, args.depth)})
    meta = json.loads(path.with_name(path.stem + ".meta.json").read_text())
    seconds = time.perf_counter() - started
    print(f"model: {path} ({meta['trees']} trees, {variant_row(fitted.settings.combine)}; settings: "
          f"{fitted.settings.chosen_by}) in {seconds:.0f}s "
          f"({', '.join(f'{k} {v:.0f}s' for k, v in fitted.seconds.items())})")
    print("top features by gain: " + ", ".join(list(meta["feature_importance_gain"])[:6]))
    if args.json:
        Path(args.json).write_text(json.dumps({**meta, "seconds_total": round(seconds)}, indent=2))
    return 0


def cmd_train_events(args: argparse.Namespace) -> int:
    """`train --events`: the event log (and the judgments, when given) -> a personal model."""
    from ranker.training.from_events import (
        build_event_rows,
        combined,
        fit_events,
        fit_personal_neural,
        judged_groups,
        replay_groups,
        save_event_model,
    )

    data_dir, data, queries = open_training_set(args, "train --events")
    store = open_shopper_store(open_backend(data_dir))
    if not store.exists():
        print(f"error: no event log at {store.where()}: serve searches and POST /events first", file=sys.stderr)
        return 1
    started = time.perf_counter()
    personal = not args.no_personal
    groups = list(replay_groups(store, data, min_evidence=settings.personal_min_evidence(), personal=personal))
    if not groups and not queries:
        print(f"error: {store.where()} holds no search followed by a click, cart or purchase", file=sys.stderr)
        return 1
    from ranker.features.names import FEATURE_NAMES
    from ranker.training.from_events import EVENTS_IGNORED

    chosen = ",".join(EVENTS_IGNORED) if args.ignore is None else args.ignore
    ignored = [name.strip() for name in chosen.split(",") if name.strip()]

    unknown = [name for name in ignored if name not in FEATURE_NAMES]
    if unknown:
        print(f"error: --ignore: no feature {', '.join(unknown)}", file=sys.stderr)
        return 1
    rows = build_event_rows(data, groups, ignored=ignored)
    if queries:
        rows = combined(rows, judged_groups(data, queries))
    # Anonymous and gated-out searches are ranked by trees that never saw a profile, so a
    # personal model cannot change them; the personal trees rank only admitted searches.
    model, params = fit_events(rows.anonymous(), unbiased=not args.naive_clicks)
    personal_model = fit_events(rows, unbiased=not args.naive_clicks) if personal else None
    personal_neural = (fit_personal_neural(rows, data, unbiased=not args.naive_clicks)
                       if personal and args.personal_neural and not args.no_neural else None)
    version = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    personal_searches = sum(g.view is not None for g in groups)
    path = save_event_model(data_dir / "rankers", version, model, params, data, personal=personal_model,
                            personal_neural=personal_neural, extra={
        "events": store.count(), "searches": len(groups), "personal_searches": personal_searches,
        "judged_queries": len(queries), "position_bias": "raw clicks" if args.naive_clicks else
        "XGBoost unbiased LambdaMART", "serve_depth": min(args.serve_depth or EVENTS_SERVE_DEPTH, args.depth),
        "ignored_features": ignored})
    seconds = time.perf_counter() - started
    shape = f"{params['trees']} trees" + (f", personal {personal_model[1]['trees']}" if personal_model else "")
    if personal_neural is not None:
        shape += f", personal neural scorer at weight {personal_neural.weight:g}" + (
            " (held-out shoppers ranked best without it: not saved)" if personal_neural.weight == 0 else "")
    print(f"model: {path} ({shape}) from {len(groups):,} searches with engagement "
          f"({personal_searches:,} with a profile past the gate), {len(queries):,} judged queries, "
          f"in {seconds:.0f}s")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": str(path), "searches": len(groups),
                                               "personal_searches": personal_searches, "trees": params["trees"],
                                               "seconds": round(seconds, 1)}, indent=2))
    return 0


def cmd_ltr_upload(args: argparse.Namespace) -> int:
    """Send the newest version's Learning-to-Rank bodies to the cluster at OPENSEARCH_URL."""
    from indexer.store.opensearch_client import connect
    from ranker.ltr_export import upload
    from ranker.rerank import latest_model, meta_path

    data_dir = settings.data_dir(args.data_dir)
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
        cluster = settings.opensearch()
        upload(connect(cluster), cluster, *bodies)
    except (BackendUnavailable, settings.SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"uploaded feature set and model {meta['ltr_name']} to {cluster.url}; rescore a search with "
          f'{{"sltr": {{"model": "{meta["ltr_name"]}", "params": {{"keywords": TEXT, "query_vector": "[...]"}}}}}} '
          "(ranker.ltr_export.sltr_rescore)")
    return 0


def cmd_evaluate_personalization(args: argparse.Namespace) -> int:
    from ranker.personal_evaluation import Sizes, evaluate_personalization, render

    work = settings.data_dir(args.data_dir) / "simulation"
    sizes = Sizes(args.train_shoppers, args.eval_shoppers, args.searches, args.seed)
    started = time.perf_counter()
    report = evaluate_personalization(work, sizes, args.catalog, args.port)
    print(f"\nsimulated shoppers on {work}: {sizes.train_shoppers} to train, {sizes.eval_shoppers} to evaluate, "
          f"{sizes.searches} searches each, in {time.perf_counter() - started:.0f}s "
          f"({', '.join(f'{k} {v:.0f}s' for k, v in report['seconds'].items())})\n")
    print(render(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    """Delete events and searches older than the retention period (run it daily, e.g. from cron)."""
    data_dir = settings.data_dir(args.data_dir)
    days = args.days if args.days is not None else settings.events_retention_days()
    if days <= 0:
        print("error: no retention period: pass --days N or set SHOPRANK_EVENTS_RETENTION_DAYS", file=sys.stderr)
        return 1
    store = open_shopper_store(open_backend(data_dir))
    if not store.exists():
        print(f"no event log at {store.where()}: nothing to delete")
        return 0
    deleted = store.delete_before(time.time() - days * 86400.0)
    print(f"deleted {deleted:,} events and searches older than {days:g} days from {store.where()}; "
          f"{store.count():,} remain")
    return 0


def cmd_interleaving_report(args: argparse.Namespace) -> int:
    """Which model wins the interleaved searches, from the event log."""
    from ranker.interleave import verdicts

    store = open_shopper_store(open_backend(settings.data_dir(args.data_dir)))
    if not store.exists():
        print(f"error: no event log at {store.where()}", file=sys.stderr)
        return 1
    found = verdicts(list(store.interleavings()), store.clicked())
    if not found:
        print(f"no interleaved searches in {store.where()}: set SHOPRANK_INTERLEAVE_SHARE and SHOPRANK_INTERLEAVE_CANDIDATE")
        return 0
    for v in found:
        leader = "candidate" if v.candidate_wins > v.served_wins else "served" if v.served_wins > v.candidate_wins \
            else "neither"
        print(f"served {v.served} vs candidate {v.candidate}: {v.searches:,} interleaved searches; wins: served "
              f"{v.served_wins:,}, candidate {v.candidate_wins:,}, ties {v.ties:,} ({v.clicked_ties:,} with clicks); "
              f"delta {v.delta:+.3f}; sign test p = {v.p_value:.3g}: {leader} leads")
    if args.json:
        Path(args.json).write_text(json.dumps([{**v.__dict__, "delta": v.delta, "p_value": v.p_value}
                                               for v in found], indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ranker", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
            ("evaluate", "cross-validated ablation of every model through the search pipeline (or --served, --url)"),
            ("train", "fit and save the served models")):
        p = sub.add_parser(name, help=help_text)
        add_common_arguments(p)
        p.add_argument("--judgments", required=name == "evaluate", type=Path,
                       help="CSV with query,product_id,relevance")
        p.add_argument("--catalog", type=Path, help="index this catalog first (skipped if already serving)")
        p.add_argument("--encoder", choices=("fp32", "int8"), help="for --catalog indexing (default as for reindex)")
        p.add_argument("--depth", type=positive_int, default=200,
                       help="recall candidates per query a model is trained (and evaluated) on")
        p.add_argument("--no-neural", action="store_true", help="leave the neural scorer out (faster)")
        p.add_argument("--no-query-tuning", action="store_true",
                       help="keep the shipped query encoder (no fine-tuning on the judgments; faster)")
        p.add_argument("--no-correct", action="store_true",
                       help="search the queries exactly as typed (no spelling, compound or unit correction)")
        p.add_argument("--json", help="write the figures here too")
        p.add_argument("--limit", type=int, default=0, help="only the first N queries (smoke runs)")
        if name == "train":
            p.add_argument("--serve-depth", type=positive_int, default=None,
                           help="candidates the server re-ranks (at most --depth; evaluate --serve-depths measures "
                                f"it; default {SERVE_DEPTH}, with --events {EVENTS_SERVE_DEPTH})")
            p.add_argument("--tune", action="store_true",
                           help="choose the settings on a validation quarter even when an evaluation saved some")
            p.add_argument("--events", action="store_true",
                           help="learn from the data dir's event log (searches, clicks, carts, purchases), with "
                                "the shoppers' profiles as they stood at each search; --judgments is then optional")
            p.add_argument("--naive-clicks", action="store_true",
                           help="with --events: no position-bias correction (for comparison)")
            p.add_argument("--no-personal", action="store_true",
                           help="with --events: leave the personal features empty (a non-personal model)")
            p.add_argument("--personal-neural", action="store_true",
                           help="with --events: also fit the neural scorer with the profile-embedding input (off by "
                                "default: on simulated shoppers it lowered the personal gain, docs/personalization.md)")
            p.add_argument("--ignore", metavar="FEATURE[,FEATURE...]",
                           help="with --events: features the model is trained and served with at 0 (default: the "
                                "recall rank features; '' keeps every feature)")
        if name == "evaluate":
            p.add_argument("--folds", type=int, default=5)
            p.add_argument("--serve-depths", type=lambda v: [int(d) for d in v.split(",")], default=[],
                           metavar="N[,N...]", help="also serve each fold's models re-ranking N candidates")
            p.add_argument("--report", help="HTML report path (default: DATA/evaluation/)")
            p.add_argument("--fusion-grid", action="store_true",
                           help="instead: every fusion setting on recall only, tuned on half the queries")
            p.add_argument("--served", action="store_true", help="instead: the data dir's newest model, in process")
            p.add_argument("--url", help="instead: the server at this URL, through GET /search")
            p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                           help="with --served or --url: a search parameter for every query, e.g. rerank=false")
    simulated = sub.add_parser("evaluate-personalization",
                               help="personal ranking measured on simulated shoppers through the HTTP API")
    add_common_arguments(simulated)
    simulated.add_argument("--catalog", type=Path, help="the catalog to index (default: the demo catalog)")
    simulated.add_argument("--train-shoppers", type=positive_int, default=300)
    simulated.add_argument("--eval-shoppers", type=positive_int, default=150)
    simulated.add_argument("--searches", type=positive_int, default=12, help="searches per shopper")
    simulated.add_argument("--seed", type=int, default=1)
    simulated.add_argument("--port", type=positive_int, default=8765, help="where the simulation's server listens")
    simulated.add_argument("--json", help="write the figures here too")
    retention = sub.add_parser("retention", help="delete shopper events and searches older than N days")
    add_common_arguments(retention)
    retention.add_argument("--days", type=float, help="default: $SHOPRANK_EVENTS_RETENTION_DAYS")
    report = sub.add_parser("interleaving-report", help="which model wins the interleaved searches")
    add_common_arguments(report)
    report.add_argument("--json", help="write the verdicts here too")
    upload = sub.add_parser("ltr-upload", help="send the newest ranker's Learning-to-Rank export to OPENSEARCH_URL")
    add_common_arguments(upload)
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    commands = {"train": cmd_train, "evaluate": cmd_evaluate, "ltr-upload": cmd_ltr_upload,
                "evaluate-personalization": cmd_evaluate_personalization, "retention": cmd_retention,
                "interleaving-report": cmd_interleaving_report}
    try:
        return commands[args.command](args)
    except (GenerationError, BackendUnavailable, settings.SettingsError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
