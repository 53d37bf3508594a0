"""`python -m web`: serve search on http://HOST:PORT (page at /, JSON at /search)."""

from __future__ import annotations

import argparse
import sys

from indexer import settings
from indexer.backends import open_backend
from indexer.cli import add_common_arguments, configure_logging
from indexer.store.base import BackendUnavailable


def tokens_main(argv: list[str]) -> int:
    """`python -m web tokens add NAME --role ROLE | list | revoke NAME`."""
    from web.token_stores import open_token_store
    from web.tokens import ROLES, TokenError

    parser = argparse.ArgumentParser(prog="python -m web tokens", description="admin API tokens (stored hashed)")
    common = argparse.ArgumentParser(add_help=False)
    add_common_arguments(common)
    sub = parser.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", parents=[common], help="make a token; it is printed once, on the last line")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, required=True)
    sub.add_parser("list", parents=[common], help="names and roles (never the tokens)")
    revoke = sub.add_parser("revoke", parents=[common], help="the token stops working at once")
    revoke.add_argument("name")
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    try:
        store = open_token_store(open_backend(settings.data_dir(args.data_dir)))
        if args.action == "add":
            token = store.add(args.name, args.role)
            print(f"token for {args.name} ({args.role}); it is not shown again:", file=sys.stderr)
            print(token)
        elif args.action == "list":
            for holder in store.holders():
                print(f"{holder.name}\t{holder.role}")
        elif not store.revoke(args.name):
            print(f"error: no token named {args.name!r}", file=sys.stderr)
            return 1
    except (TokenError, settings.SettingsError, BackendUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["tokens"]:
        return tokens_main(argv[1:])
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
