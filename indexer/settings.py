"""Where things live and how loud we are: shared by every command of indexer, ranker, web."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

DEFAULT_ENCODER = "int8"  # as good as fp32 on retrieval, 2.2x faster (docs/relevance.md)


def resolve_data_dir(value: str | None) -> Path:
    return Path(value or os.environ.get("SHOPRANK_DATA") or "data").resolve()


def models_dir(data_dir: Path) -> Path:
    """Exported ONNX models; SHOPRANK_MODELS lets several data dirs (and tests) share one."""
    return Path(os.environ["SHOPRANK_MODELS"]).resolve() if os.environ.get("SHOPRANK_MODELS") else data_dir / "models"


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="index and state directory (default: $SHOPRANK_DATA or ./data)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress events (INFO)")


class _LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if "=" not in msg.split(" ", 1)[0]:
            msg = f'msg="{msg}"'
        return f"ts={self.formatTime(record, '%Y-%m-%dT%H:%M:%S')} level={record.levelname.lower()} logger={record.name} {msg}"


def configure_logging(verbose: bool = False) -> None:
    """Structured key=value lines on stderr; warnings only unless -v."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
