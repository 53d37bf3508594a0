"""Reindex time, cold (empty embedding cache) and warm (same catalog again: all cached).

    python bench/reindex.py [--catalog ../shared/data/home-depot/products.csv] [--encoder int8]

Runs the real command, `python -m indexer reindex`, in a fresh data dir and prints
wall-clock seconds for each run. The data dir is kept (printed) for other benchmarks.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOME_DEPOT = ROOT.parent / "shared" / "data" / "home-depot" / "products.csv"


def reindex(catalog: Path, data_dir: Path, encoder: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "indexer", "reindex", "--catalog", str(catalog), "--data-dir", str(data_dir),
         "--encoder", encoder, "-q"],
        cwd=ROOT, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, done.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", type=Path, default=HOME_DEPOT)
    parser.add_argument("--encoder", default="int8", choices=("fp32", "int8"))
    parser.add_argument("--data-dir", type=Path, help="default: a new temporary directory")
    args = parser.parse_args()
    if not args.catalog.exists():
        print(f"{args.catalog} not found", file=sys.stderr)
        return 1
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="shoprank-bench-"))
    # Models are exported once, outside the timing (that is a one-time set-up step).
    subprocess.run([sys.executable, "-m", "indexer", "export-model", "--data-dir", str(data_dir)],
                   cwd=ROOT, check=True, capture_output=True, env=os.environ)
    print(f"catalog {args.catalog}, encoder {args.encoder}, {os.cpu_count()} CPUs, data dir {data_dir}")
    for label in ("cold (empty cache)", "warm (all cached)"):
        seconds, summary = reindex(args.catalog, data_dir, args.encoder)
        print(f"{label:<20} {seconds:7.1f} s   {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
