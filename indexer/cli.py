"""What every command line of indexer, ranker and web shares: `--data-dir`, `-v`, and
structured, quiet-by-default logs."""

from __future__ import annotations

import argparse
import logging
import sys


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="index and state directory (default: $SHOPRANK_DATA or ./data)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress events (INFO)")


def positive_int(value: str) -> int:
    """An argparse type: a count of at least 1, or argparse's own usage error."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return number


class _LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if "=" not in msg.split(" ", 1)[0]:
            msg = f'msg="{msg}"'
        line = (f"ts={self.formatTime(record, '%Y-%m-%dT%H:%M:%S')} level={record.levelname.lower()} "
                f"logger={record.name} {msg}")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(verbose: bool = False) -> None:
    """Structured key=value lines on stderr; warnings only unless -v. Replaces only a
    handler of its own, so a process that embeds a command keeps its logging."""
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name("shoprank")
    handler.setFormatter(_LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if h.get_name() != "shoprank"] + [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    # opensearch-py logs every failed connection attempt with a traceback; ShopRank says
    # what failed in one sentence (BackendUnavailable), so theirs is for -v only.
    for noisy in ("opensearch", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.NOTSET if verbose else logging.ERROR)
