"""`python -m web`: serve search on http://HOST:PORT (page at /, JSON at /search)."""

from __future__ import annotations

import argparse
import sys

from indexer import settings
from indexer.backends import open_backend
from indexer.cli import add_common_arguments, configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m web", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, help="worker processes (default $SHOPRANK_WORKERS, else 2: one per core)")
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    from web.server import serve

    data_dir = settings.data_dir(args.data_dir)
    try:
        workers = args.workers or settings.workers()
        open_backend(data_dir)  # a bad SHOPRANK_BACKEND or OPENSEARCH_* is named before any worker starts
    except settings.SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"serving {data_dir} on http://{args.host}:{args.port}", file=sys.stderr)
    serve(data_dir, args.host, args.port, workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
