"""The queries the benches send: the Home Depot judgments' query texts when they are
there (text only), otherwise words of the catalog's own titles."""

from __future__ import annotations

import csv
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOME_DEPOT = ROOT.parent / "shared" / "data" / "home-depot" / "products.csv"


def load_queries(catalog: Path, count: int) -> list[str]:
    judgments = catalog.with_name("judgments.csv")
    if judgments.exists():
        with open(judgments, encoding="utf-8", newline="") as fh:
            queries = list(dict.fromkeys(row["query"] for row in csv.DictReader(fh)))
    else:
        from indexer.catalog import read_catalog

        rng = random.Random(0)
        titles = [p["title"].split() for p in read_catalog(catalog).products]
        queries = list(dict.fromkeys(" ".join(rng.sample(t, min(len(t), rng.randint(1, 3)))) for t in titles))
    random.Random(1).shuffle(queries)
    return queries[:count]


def parse_params(pairs: list[str]) -> dict[str, str]:
    """`["rerank=false", "k=20"]` -> the search parameters, as the API takes them."""
    return dict(p.split("=", 1) for p in pairs)
