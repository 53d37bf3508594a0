"""`python -m indexer`: build and maintain the search index.

Exit status: 0 done; 1 could not run (bad arguments, unreadable catalog, lock held);
2 `--strict` found bad rows and wrote nothing; 3 done, but bad rows were skipped.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from indexer import opensearch_dev, publish, settings
from indexer.backends import Backend, open_backend
from indexer.catalog import CatalogError, CatalogReport, parse_mapping_overrides, read_catalog
from indexer.cli import add_common_arguments, configure_logging, positive_int
from indexer.demo_catalog import write_demo_catalog
from indexer.mapping import MappingError
from indexer.model_export import export_models
from indexer.model_files import VARIANTS
from indexer.store.base import BackendUnavailable, GenerationError

EXIT_OK, EXIT_FAILED, EXIT_STRICT_REJECTED, EXIT_ROWS_SKIPPED = 0, 1, 2, 3
log = logging.getLogger("indexer")


def _print_errors(report: CatalogReport, max_errors: int) -> None:
    shown = report.errors if max_errors <= 0 else report.errors[:max_errors]
    for error in shown:
        print(error, file=sys.stderr)
    if len(shown) < len(report.errors):
        print(f"... and {len(report.errors) - len(shown)} more problems (--max-errors 0 shows all)", file=sys.stderr)
    if report.ignored_columns:
        print(f"{report.path}: ignored columns {', '.join(report.ignored_columns)} "
              "(use --map FIELD=COLUMN to use one)", file=sys.stderr)


def _load(args: argparse.Namespace) -> tuple[CatalogReport | None, int]:
    report = read_catalog(args.catalog, parse_mapping_overrides(args.map))
    _print_errors(report, args.max_errors)
    if report.errors and args.strict:
        print(f"{args.catalog}: {report.rows_skipped} bad rows of {report.rows_read}; "
              "--strict: nothing was written", file=sys.stderr)
        return None, EXIT_STRICT_REJECTED
    return report, EXIT_ROWS_SKIPPED if report.errors else EXIT_OK


def _summary(verb: str, report: CatalogReport | None, summary) -> None:  # type: ignore[no-untyped-def]
    skipped = f"; skipped {report.rows_skipped} bad rows" if report and report.errors else ""
    print(f"{verb}: generation {summary.generation} serves {summary.documents:,} products "
          f"({summary.encoded:,} encoded, {summary.cached:,} from cache) in {summary.seconds:.1f}s{skipped}")


def cmd_reindex(args: argparse.Namespace, backend: Backend) -> int:
    report, status = _load(args)
    if report is None:
        return status
    summary = publish.reindex(backend, report.products, publish.choose_encoder(args.encoder, backend),
                              str(args.catalog.resolve()), progress=not args.quiet)
    _summary("reindexed", report, summary)
    return status


def cmd_upsert(args: argparse.Namespace, backend: Backend) -> int:
    report, status = _load(args)
    if report is None:
        return status
    changes = report.products
    summary = publish.upsert(backend, changes, args.encoder, f"upsert {args.catalog}", progress=not args.quiet)
    _summary(f"upserted {len(changes):,} products", report, summary)
    return status


def cmd_delete(args: argparse.Namespace, backend: Backend) -> int:
    ids = set(args.ids)
    summary, unknown = publish.delete(backend, ids)
    if unknown:
        print(f"not in the index (nothing to delete): {', '.join(sorted(unknown))}", file=sys.stderr)
    _summary(f"deleted {len(ids) - len(unknown):,} products", None, summary)
    return EXIT_OK


def cmd_rollback(args: argparse.Namespace, backend: Backend) -> int:
    current, previous = publish.rollback(backend)
    print(f"rolled back: serving {current} (previous: {previous})")
    return EXIT_OK


def cmd_status(args: argparse.Namespace, backend: Backend) -> int:
    for label, value in backend.status():
        print(f"{label + ':':<11} {value}")
    return EXIT_OK


def cmd_demo_catalog(args: argparse.Namespace, backend: Backend) -> int:
    path = write_demo_catalog(args.out, size=args.size, seed=args.seed)
    print(f"wrote {args.size:,} demo products to {path}")
    return EXIT_OK


def cmd_export_model(args: argparse.Namespace, backend: Backend) -> int:
    out = export_models(settings.models_dir(backend.data_dir), force=args.force)
    print(f"ONNX models in {out}")
    return EXIT_OK


def cmd_opensearch_dev(args: argparse.Namespace) -> int:
    """Needs no backend: it is how a developer gets the cluster the OpenSearch backend uses."""
    directory = (args.dir or opensearch_dev.default_directory()).resolve()
    try:
        if args.action == "stop":
            stopped = opensearch_dev.stop(directory)
            print(f"stopped the cluster of {directory}" if stopped else f"no cluster running from {directory}")
            return EXIT_OK
        cluster = opensearch_dev.start(directory, nodes=args.nodes, heap=args.heap, timeout=args.timeout,
                                       fresh=args.fresh)
    except opensearch_dev.DevClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{cluster.nodes} node(s) healthy, pid {cluster.pid}, files in {directory}; "
          f"stop with: python -m indexer opensearch-dev stop --dir {directory}")
    print(f"OPENSEARCH_URL={cluster.url}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m indexer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, func, help: str) -> argparse.ArgumentParser:  # type: ignore[no-untyped-def]
        p = sub.add_parser(name, help=help, description=help)
        add_common_arguments(p)
        p.set_defaults(func=func)
        return p

    for name, func, help in (("reindex", cmd_reindex, "build a new generation from a whole catalog and switch to it"),
                             ("upsert", cmd_upsert, "add or replace the products of a catalog file")):
        p = command(name, func, help)
        p.add_argument("--catalog", required=True, type=Path, help="CSV or JSONL product catalog")
        p.add_argument("--strict", action="store_true", help="refuse the whole catalog if any row is bad")
        p.add_argument("--map", action="append", metavar="FIELD=COLUMN", help="read FIELD from COLUMN (repeatable)")
        p.add_argument("--max-errors", type=int, default=50, help="bad rows to print (0: all)")
        p.add_argument("--encoder", choices=VARIANTS, help="text encoder precision; reindex: default "
                       "$SHOPRANK_ENCODER, else the serving index's, else int8; upsert: must be the serving index's")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p = command("delete", cmd_delete, "remove products by id")
    p.add_argument("--ids", nargs="+", required=True, metavar="ID")
    command("rollback", cmd_rollback, "serve the previous generation again")
    command("status", cmd_status, "show the serving and rollback generations")
    p = command("demo-catalog", cmd_demo_catalog, "write the deterministic demo catalog")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--size", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=42)
    p = command("export-model", cmd_export_model, "export the text encoder to ONNX (needs torch)")
    p.add_argument("--force", action="store_true")
    help = "start (and wait until healthy) or stop a local OpenSearch cluster from Maven Central, no Docker"
    p = sub.add_parser("opensearch-dev", help=help, description=help)
    p.add_argument("action", choices=("start", "stop"))
    p.add_argument("--dir", type=Path, help="its files: jars, config, data, log (default ./.cache/opensearch-dev)")
    p.add_argument("--nodes", type=positive_int, default=2, help="nodes in the cluster (default 2)")
    p.add_argument("--heap", default="1g", help="JVM heap for all nodes together (default 1g)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for a healthy cluster")
    p.add_argument("--fresh", action="store_true",
                   help="start with no indices: stop a running cluster of --dir and delete its data")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "opensearch-dev":
        return cmd_opensearch_dev(args)
    configure_logging(args.verbose)
    try:
        return args.func(args, open_backend(settings.data_dir(args.data_dir)))
    except (CatalogError, MappingError, GenerationError, BackendUnavailable, settings.SettingsError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted: the serving generation is unchanged", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
