"""How much a few events can tell about a simulated shopper: the Bayes-optimal ranking.

    python bench/personal_ceiling.py --data-dir data/simulation [--shoppers 100] [--searches 12]

The simulated shoppers of `python -m ranker evaluate-personalization` (ranker/simulate.py)
browse the recall order (no model, no personalization) and their engagement is recorded.
Before each search, the posterior over every taste the simulator could have drawn (the
favourite brand of each department, the color or material and its value, the price
level on a grid) is computed exactly from everything the shopper was shown and did —
the simulator's own click, cart and purchase probabilities — and the first --depth (30) recalled
products are ordered by their expected hidden relevance under it. No ranker can do better
from the same evidence on average, so this is the ceiling a learned personal model
chases; `oracle` (the true taste known) is the ceiling of the candidates themselves.

Run it on the directory the evaluation made (it holds the demo catalog's index).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from indexer.demo_catalog import DEPARTMENTS  # noqa: E402
from ranker.simulate import (  # noqa: E402
    CART_GIVEN_CLICK,
    CLICK_NOISE,
    EXAMINATION,
    MAX_RELEVANCE,
    ORACLE_DEPTH,
    TASTE_ATTRIBUTES,
    Catalog,
    Taste,
    browse,
    ndcg10,
    new_taste,
    next_query,
    relevance,
    seeded,
)

PRICE_GRID = np.linspace(0.05, 0.95, 10)


class Posterior:
    """Log-probabilities over every taste of a shopper with these departments."""

    def __init__(self, catalog: Catalog, departments: tuple[str, ...]):
        self.catalog = catalog
        self.departments = departments
        self.brands = [sorted({b for (_n, bs, _a, _p) in DEPARTMENTS[d].values() for b in bs}) for d in departments]
        options: dict[str, set[str]] = {}
        for d in departments:
            for _n, _b, attributes, _p in DEPARTMENTS[d].values():
                for name, values in attributes.items():
                    options.setdefault(name, set()).update(values)
        kinds = [k for k in TASTE_ATTRIBUTES if k in options] or sorted(options)
        self.values = [(k, v) for k in kinds for v in sorted(options[k])]
        shape = (*(len(b) for b in self.brands), len(self.values), len(PRICE_GRID))
        self.log_p = np.zeros(shape)

    def _fit(self, product: dict) -> np.ndarray:  # type: ignore[type-arg]
        """The product's fit under every taste: (brand + attribute + price) / 3."""
        department = product["category"].split(" > ", 1)[0]
        shape = self.log_p.shape
        brand = np.zeros(shape)
        if department in self.departments:
            axis = self.departments.index(department)
            match = np.array([b == product.get("brand") for b in self.brands[axis]], dtype=float)
            brand = brand + match.reshape([-1 if i == axis else 1 for i in range(len(shape))])
        attributes = product.get("attributes") or {}
        attribute = np.array([(1.0 if attributes[k] == v else 0.0) if k in attributes else 0.5
                              for k, v in self.values]).reshape([1] * len(self.departments) + [-1, 1])
        low, high = self.catalog.price_range[product["category"]]
        where = (math.log1p(product["price"]) - low) / (high - low) if high > low else 0.5
        price = np.exp(-0.5 * ((where - PRICE_GRID) / 0.25) ** 2).reshape([1] * (len(shape) - 1) + [-1])
        return (brand + attribute + price) / 3.0

    def relevance(self, query, product: dict) -> np.ndarray:  # type: ignore[no-untyped-def,type-arg]
        if product["category"] != query.category:
            return np.zeros(self.log_p.shape)
        title = product["title"].lower()
        base = 1.0 if all(w in title for w in query.text.split()) else 0.5
        return base * (1.0 + 3.0 * self._fit(product))

    def observe(self, query, shown: list[str], engaged: dict[str, set[str]]) -> None:  # type: ignore[no-untyped-def]
        for position, pid in enumerate(shown[:10]):
            product = self.catalog.by_id[pid]
            gain = self.relevance(query, product)
            click = EXAMINATION[position] * (CLICK_NOISE + (1 - CLICK_NOISE) * (2.0 ** gain - 1) /
                                             (2.0 ** MAX_RELEVANCE - 1))
            actions = engaged.get(pid, set())
            if "click" not in actions:
                self.log_p += np.log1p(-click)
                continue
            self.log_p += np.log(click)
            cart = np.where(gain > 0, CART_GIVEN_CLICK * self._fit(product), 0.0)
            self.log_p += np.log(np.clip(cart if "add_to_cart" in actions else 1 - cart, 1e-12, None))

    def expected(self, query, ids: list[str]) -> np.ndarray:  # type: ignore[no-untyped-def]
        weights = np.exp(self.log_p - self.log_p.max())
        weights /= weights.sum()
        return np.array([float((weights * self.relevance(query, self.catalog.by_id[i])).sum()) for i in ids])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--shoppers", type=int, default=100)
    parser.add_argument("--searches", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--depth", type=int, default=ORACLE_DEPTH, help="recalled candidates to re-order")
    args = parser.parse_args()

    from indexer import settings
    from indexer.backends import open_backend
    from indexer.encoder import TextEncoder
    from ranker.pipeline import SearchPipeline
    from ranker.request import SearchRequest

    reader = open_backend(args.data_dir).reader()
    pipeline = SearchPipeline(reader, TextEncoder(settings.models_dir(args.data_dir), reader.encoder_variant,
                                                  threads=1))
    catalog = Catalog(reader.catalog().products)
    figures: dict[str, dict[str, list[float]]] = {}
    for shopper in range(args.shoppers):
        taste: Taste = new_taste(seeded(args.seed, "eval", shopper, "taste"))
        queries = seeded(args.seed, "eval", shopper, "queries")
        posterior, past = Posterior(catalog, taste.departments), 0
        for number in range(args.searches):
            query = next_query(taste, queries)
            ids = [c.id for c in pipeline.rank(SearchRequest(query.text, k=args.depth)).candidates][:args.depth]
            ideal = [relevance(taste, catalog, query, p) for p in catalog.by_category[query.category]]
            gains = {i: relevance(taste, catalog, query, catalog.by_id[i]) for i in ids}
            expected = posterior.expected(query, ids)
            bayes = [ids[i] for i in np.argsort(-expected, kind="stable")]
            bucket = "0 events" if past == 0 else "1-4 events" if past < 5 else "5+ events"
            for name, order in (("recall order", ids), ("Bayes-optimal", bayes),
                                ("oracle", sorted(ids, key=lambda i: -gains[i]))):
                figures.setdefault(name, {}).setdefault(bucket, []).append(
                    ndcg10([gains[i] for i in order[:10]], ideal))
            outcome = browse(taste, catalog, query, ids[:10], seeded(args.seed, "eval", shopper, number, "clicks"))
            engaged: dict[str, set[str]] = {}
            for e in outcome.engaged:
                engaged.setdefault(e.product, set()).add(e.action)
            posterior.observe(query, ids[:10], engaged)
            past += len(outcome.engaged)
    print(f"{args.shoppers} shoppers x {args.searches} searches, recall order shown, "
          f"first {args.depth} candidates re-ordered\n")
    print(f"{'ranking':<16}" + "".join(f"{b:>22}" for b in ("0 events", "1-4 events", "5+ events")))
    base = {b: float(np.mean(v)) for b, v in figures["recall order"].items()}
    for name, buckets in figures.items():
        cells = []
        for bucket in ("0 events", "1-4 events", "5+ events"):
            values = buckets.get(bucket, [])
            mean = float(np.mean(values)) if values else float("nan")
            cells.append(f"{mean:.4f} ({100 * (mean / base[bucket] - 1):+.1f}%, n={len(values)})")
        print(f"{name:<16}" + "".join(f"{c:>22}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
