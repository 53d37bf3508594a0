"""Simulated shoppers over the demo catalog, searching through the real HTTP API.

Each shopper has hidden tastes, the kinds the personalization issue names: two
departments, a favourite brand in each (brand loyalty carries across a department's
categories: the sofas and the beds of one maker), a favourite color or a favourite
material (one of the two), and a price level (where in a category's price range they buy). A search picks one of the
shopper's categories (now and then another) and types a product noun of it.

What a product is worth to a shopper for a query (the hidden, preference-weighted
relevance, 0-4): 0 outside the query's category; otherwise `base * (1 + 3 * fit)`, base 1
when the title holds every query word (0.5 otherwise), fit the mean of brand match,
attribute match and closeness to the price level.

Clicks follow a position-based model: position i is examined with the probability
ULTRA's simulations use (`EXAMINATION`), and an examined product is clicked with the
usual attractiveness of click simulations, `noise + (1 - noise) * (2^r - 1) / (2^4 - 1)`
for relevance r (noise 0.05: now and then a click on anything). A click leads to a cart with probability
0.6 x fit, a cart to a purchase with probability 0.5. Every draw for a shopper's j-th
search comes from its own seed, so two systems shown to the same shopper face the same
dice (common random numbers: a smaller difference is measurable).
"""

from __future__ import annotations

import json
import math
import random
import urllib.parse
import urllib.request
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from indexer.demo_catalog import DEPARTMENTS

EXAMINATION = (0.68, 0.61, 0.48, 0.34, 0.28, 0.20, 0.11, 0.10, 0.08, 0.06)
MAX_RELEVANCE = 4.0
CLICK_NOISE = 0.05
TASTE_ATTRIBUTES = ("color", "material")
ORACLE_DEPTH = 30  # as deep as a model learned from events re-ranks
CART_GIVEN_CLICK = 0.6  # times fit
PURCHASE_GIVEN_CART = 0.5


@dataclass(frozen=True)
class Taste:
    departments: tuple[str, ...]
    brands: frozenset[str]  # "department|brand"
    values: Mapping[str, str]  # the attribute they care about ("color" or "material") -> favourite value
    price_level: float  # 0 cheapest of a category .. 1 dearest


@dataclass(frozen=True)
class Query:
    category: str  # the full path, as products carry it
    text: str


class Catalog:
    """The products by category, with each category's log-price range."""

    def __init__(self, products: Sequence[Mapping[str, Any]]):
        self.by_id = {p["id"]: p for p in products}
        self.by_category: dict[str, list[Mapping[str, Any]]] = {}
        for p in products:
            self.by_category.setdefault(p["category"], []).append(p)
        self.price_range = {c: (min(math.log1p(p["price"]) for p in ps), max(math.log1p(p["price"]) for p in ps))
                            for c, ps in self.by_category.items()}


def new_taste(rng: random.Random) -> Taste:
    departments = tuple(rng.sample(sorted(DEPARTMENTS), 2))
    brands, choices = set(), {}
    for department in departments:
        sold = sorted({b for (_nouns, category_brands, _a, _p) in DEPARTMENTS[department].values()
                       for b in category_brands})
        brands.add(f"{department}|{rng.choice(sold)}")
        for _nouns, _brands, attributes, _price in DEPARTMENTS[department].values():
            for name, options in attributes.items():
                choices.setdefault(name, set()).update(options)
    kinds = [k for k in TASTE_ATTRIBUTES if k in choices] or sorted(choices)
    kind = rng.choice(kinds)
    values = {kind: rng.choice(sorted(choices[kind]))}
    return Taste(departments, frozenset(brands), values, rng.random())


def next_query(taste: Taste, rng: random.Random) -> Query:
    department = rng.choice(taste.departments) if rng.random() < 0.9 else rng.choice(sorted(DEPARTMENTS))
    category = rng.choice(sorted(DEPARTMENTS[department]))
    noun = rng.choice(DEPARTMENTS[department][category][0]).lower()
    text = noun.split()[-1] if rng.random() < 0.3 else noun
    return Query(f"{department} > {category}", text)


def fit(taste: Taste, catalog: Catalog, product: Mapping[str, Any]) -> float:
    """How well a product suits the shopper's tastes, 0-1 (whatever the query)."""
    department = product["category"].split(" > ", 1)[0]
    brand = 1.0 if f"{department}|{product.get('brand')}" in taste.brands else 0.0
    attributes = product.get("attributes") or {}
    judged = [attributes[name] == value for name, value in taste.values.items() if name in attributes]
    attribute = sum(judged) / len(judged) if judged else 0.5  # a product without it: neither liked nor not
    low, high = catalog.price_range[product["category"]]
    where = (math.log1p(product["price"]) - low) / (high - low) if high > low else 0.5
    price = math.exp(-0.5 * ((where - taste.price_level) / 0.25) ** 2)
    return (brand + attribute + price) / 3.0


def relevance(taste: Taste, catalog: Catalog, query: Query, product: Mapping[str, Any]) -> float:
    if product["category"] != query.category:
        return 0.0
    title = product["title"].lower()
    base = 1.0 if all(word in title for word in query.text.split()) else 0.5
    return base * (1.0 + 3.0 * fit(taste, catalog, product))


def ndcg10(gains: Sequence[float], ideal: Sequence[float]) -> float:
    def dcg(values: Sequence[float]) -> float:
        return sum(g / math.log2(i + 2) for i, g in enumerate(values[:10]))

    best = dcg(sorted(ideal, reverse=True))
    return dcg(gains) / best if best > 0 else 0.0


@dataclass(frozen=True)
class Engagement:
    action: str
    product: str
    position: int  # 1-based


@dataclass(frozen=True)
class Outcome:
    """One search as a shopper met it."""

    ndcg10: float
    ctr: float  # the probability of at least one click
    purchases: float  # expected purchases
    engaged: list[Engagement]  # what the shopper did this time (the dice of this search)


def browse(taste: Taste, catalog: Catalog, query: Query, shown: Sequence[str], rng: random.Random) -> Outcome:
    """The shopper's reaction to a result list: expected figures and one draw of actions."""
    ideal = [relevance(taste, catalog, query, p) for p in catalog.by_category.get(query.category, [])]
    products = [catalog.by_id[i] for i in shown[:10] if i in catalog.by_id]
    gains = [relevance(taste, catalog, query, p) for p in products]
    none_clicked, purchases, engaged = 1.0, 0.0, []
    for position, (product, gain) in enumerate(zip(products, gains, strict=True), start=1):
        attraction = CLICK_NOISE + (1.0 - CLICK_NOISE) * (2.0 ** gain - 1.0) / (2.0 ** MAX_RELEVANCE - 1.0)
        click = EXAMINATION[position - 1] * attraction
        cart = CART_GIVEN_CLICK * fit(taste, catalog, product) if gain > 0 else 0.0
        none_clicked *= 1.0 - click
        purchases += click * cart * PURCHASE_GIVEN_CART
        draws = (rng.random(), rng.random(), rng.random())  # drawn for every position: same dice for any list
        if draws[0] < click:
            engaged.append(Engagement("click", product["id"], position))
            if draws[1] < cart:
                engaged.append(Engagement("add_to_cart", product["id"], position))
                if draws[2] < PURCHASE_GIVEN_CART:
                    engaged.append(Engagement("purchase", product["id"], position))
    return Outcome(ndcg10(gains, ideal), 1.0 - none_clicked, purchases, engaged)


def seeded(*parts: object) -> random.Random:
    return random.Random(zlib.crc32("/".join(map(str, parts)).encode()))


class Client:
    """The shopper side of the HTTP API: GET /search, POST /events, DELETE /users/<id>."""

    def __init__(self, base_url: str, timeout: float = 30.0):
        self.base = base_url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"} if data else {})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def search(self, text: str, user_id: str | None, k: int = 10) -> tuple[str, list[str]]:
        params = {"q": text, "k": k, **({"user_id": user_id} if user_id else {})}
        answer = self._call("GET", "/search?" + urllib.parse.urlencode(params))
        return answer["query_id"], [r["id"] for r in answer["results"]]

    def send(self, user_id: str, query_id: str, engaged: Sequence[Engagement]) -> None:
        if engaged:
            self._call("POST", "/events", [{"action_name": e.action, "user_id": user_id, "object_id": e.product,
                                            "position": e.position, "query_id": query_id} for e in engaged])

    def erase(self, user_id: str) -> None:
        self._call("DELETE", "/users/" + urllib.parse.quote(user_id, safe=""))

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/healthz")  # type: ignore[no-any-return]


@dataclass(frozen=True)
class SearchRecord:
    shopper: int
    number: int  # the shopper's j-th search
    past_events: int  # clicks, carts and purchases the shopper had sent before it
    shown: Outcome  # what the shopper saw (personal when the system personalizes)
    anonymous: Outcome | None  # the same query without a shopper id, when asked
    oracle: Outcome | None  # the anonymous top ORACLE_DEPTH in the shopper's hidden order: the headroom


def run_shopper(client: Client, catalog: Catalog, population: str, shopper: int, searches: int, seed: int, *,
                personal: bool = True, compare_anonymous: bool = True, send_events: bool = True) -> list[SearchRecord]:
    """One shopper's searches, in order; events go to the server after each search."""
    taste = new_taste(seeded(seed, population, shopper, "taste"))
    queries = seeded(seed, population, shopper, "queries")
    user_id = f"{population}-{shopper}"
    records, past = [], 0
    for number in range(searches):
        query = next_query(taste, queries)
        query_id, shown = client.search(query.text, user_id if personal else None)
        outcome = browse(taste, catalog, query, shown, seeded(seed, population, shopper, number, "clicks"))
        anonymous = oracle = None
        if compare_anonymous:
            _qid, plain = client.search(query.text, None, k=ORACLE_DEPTH)
            dice = seeded(seed, population, shopper, number, "clicks")
            anonymous = browse(taste, catalog, query, plain[:10], dice)
            best = sorted(plain, key=lambda i: -relevance(taste, catalog, query, catalog.by_id[i]))
            oracle = browse(taste, catalog, query, best[:10], seeded(seed, population, shopper, number, "clicks"))
        records.append(SearchRecord(shopper, number, past, outcome, anonymous, oracle))
        if send_events:
            client.send(user_id, query_id, outcome.engaged)
            past += len(outcome.engaged)
    return records
