"""What merchandising rules cost a search, in process.

    python bench/rules.py --data-dir DIR [--rules 1000] [--matching 50] [--searches 400] [--preview]
                          [--query sofa]

Loads DIR the way a server worker does (ranker.serving) and runs the same searches two
ways, one thread, in alternation: with no rules, and with `--rules` rules stored of which
`--matching` match the query (every ranking kind, conditions on brand, category, price and
ids; the rest are scoped to other queries). Prints p50 and p99 of each, and the matching
step alone, and how much of the difference each pipeline stage takes. The rules are
passed as a book, as the live reload hands them over.
`--preview` also times `POST /admin/preview` through the app with the matching rules as
drafts.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import faiss
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from indexer import settings  # noqa: E402
from indexer.backends import open_backend  # noqa: E402
from ranker.request import SearchRequest  # noqa: E402
from ranker.rules.engine import RuleBook, rule_order  # noqa: E402
from ranker.rules.model import parse_rule  # noqa: E402
from ranker.serving import ServingState  # noqa: E402

QUERY = "sofa"


def make_rules(products: list[dict], total: int, matching: int, seed: int = 1, query: str = QUERY) -> RuleBook:
    rng = random.Random(seed)
    brands = sorted({p["brand"] for p in products if p.get("brand")})
    categories = sorted({p["category"].split(" > ")[0] for p in products if p.get("category")})
    priced = any(p.get("price") is not None for p in products)
    ids = [p["id"] for p in products]
    rules = []
    for n in range(total):
        scope = ({"query": query, "match": rng.choice(["equals", "contains", "starts_with"])} if n < matching
                 else {"query": f"other query {n}", "match": rng.choice(["equals", "contains", "regex"])})
        kind = rng.choice(["pin", "hide", "bury", "boost", "demote", "diversify"])
        # conditions on the fields the catalog has (Home Depot's products have only titles)
        condition = rng.choice([{"ids": rng.sample(ids, 5)}]
                               + ([{"field": "brand", "value": rng.choice(brands)}] if brands else [])
                               + ([{"field": "category", "value": rng.choice(categories)}] if categories else [])
                               + ([{"field": "price", "min": rng.uniform(0, 500)}] if priced else []))
        raw: dict = {"kind": kind, "scope": scope, "priority": rng.randint(-5, 5)}
        if kind == "pin":
            raw["products"] = [{"id": rng.choice(ids), "position": rng.randint(1, 30)}]
        elif kind == "diversify":
            raw.update(field="brand" if brands else "category", max=3)
        else:
            raw["condition"] = condition
            if kind in ("boost", "demote"):
                raw["strength"] = rng.randint(1, 10)
        try:
            rules.append(parse_rule(raw, rule_id=f"r{n}"))
        except ValueError:  # two pins of one product in one rule, say: drawn again next time
            continue
    return RuleBook(tuple(sorted(rules, key=rule_order)))


def preview(data_dir: Path, searches: int, book: RuleBook, query: str) -> None:
    """POST /admin/preview through the app (a token of its own, revoked after): the search
    with the rules in force (none) and with 50 draft rules, and the diff."""
    from web.app import create_app
    from web.token_stores import open_token_store

    app = create_app(data_dir)
    tokens = open_token_store(app.extensions["shoprank"].backend)
    name = f"bench-preview-{int(time.time())}"
    token = tokens.add(name, "viewer")
    try:
        client = app.test_client()
        drafts = [r.to_json() for r in book.matching(query, None, time.time())]
        body = {"q": query, "k": 10, "rules": drafts}
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(20):
            assert client.post("/admin/preview", json=body, headers=headers).status_code == 200
        took = []
        for _ in range(searches):
            started = time.perf_counter()
            client.post("/admin/preview", json=body, headers=headers)
            took.append((time.perf_counter() - started) * 1000)
        print(f"POST /admin/preview with {len(drafts)} draft rules, in process: p50 {np.percentile(took, 50):.1f} ms, "
              f"p99 {np.percentile(took, 99):.1f} ms")
    finally:
        tokens.revoke(name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--matching", type=int, default=50)
    parser.add_argument("--searches", type=int, default=400)
    parser.add_argument("--preview", action="store_true", help="also time POST /admin/preview with the matching rules")
    parser.add_argument("--query", default=QUERY, help="the searched query (sofa suits the demo catalog)")
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    pipeline = ServingState(open_backend(settings.data_dir(args.data_dir))).pipeline()
    book = make_rules(pipeline.reader.catalog().products, args.rules, args.matching, query=args.query)
    matched = len(book.matching(args.query, None, time.time()))
    empty = RuleBook()
    request = SearchRequest(args.query, k=10, timings=True)
    for _ in range(30):  # warm-up
        pipeline.search(request, rules=book)
        pipeline.search(request, rules=empty)
    took: dict[str, list[float]] = {"no rules": [], f"{len(book.rules)} rules, {matched} matching": []}
    stages: dict[str, dict[str, list[float]]] = {name: {} for name in took}
    for _ in range(args.searches):
        for name, rules in zip(took, (empty, book), strict=True):
            started = time.perf_counter()
            response = pipeline.search(request, rules=rules)
            took[name].append((time.perf_counter() - started) * 1000)
            for stage, ms in (response.timings or {}).items():
                stages[name].setdefault(stage, []).append(ms)
    matching = []
    for _ in range(args.searches):
        started = time.perf_counter()
        book.matching(args.query, None, time.time())
        matching.append((time.perf_counter() - started) * 1000)
    for name, values in took.items():
        print(f"/search in process, {name}: p50 {np.percentile(values, 50):.2f} ms, "
              f"p99 {np.percentile(values, 99):.2f} ms")
    if args.preview:
        preview(Path(settings.data_dir(args.data_dir)), args.searches, book, args.query)
    without, with_rules = stages.values()
    print("where the difference goes, p50 per stage (ms): " + ", ".join(
        f"{stage} {np.median(with_rules[stage]) - np.median(without.get(stage, [0.0])):+.2f}"
        for stage in with_rules if "." not in stage))
    first, second = (np.percentile(v, 50) for v in took.values())
    print(f"difference at p50: {second - first:+.2f} ms; matching {len(book.rules)} rules alone: "
          f"p50 {np.percentile(matching, 50):.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
