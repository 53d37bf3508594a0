"""What a rule did, from the event log: the searches it touched (each search record keeps
the rules that acted on it and the shown products each acted on) and what shoppers then
did, against a baseline of the same queries — the searches before the rule existed, or,
when there are none, the searches of those queries it did not touch."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ranker.events.contract import Search, ShopperStore
from ranker.events.schema import GRADES
from ranker.rules.model import normalized

ACTIONS = tuple(GRADES)  # click, add_to_cart, purchase


def impact(store: ShopperStore, rule_id: str, created_at: float) -> dict[str, Any]:
    searches = list(store.searches())
    touched = [s for s in searches if rule_id in s.rules]
    queries = {normalized(s.query) for s in touched}
    same = [s for s in searches if rule_id not in s.rules and normalized(s.query) in queries]
    before = [s for s in same if s.timestamp < created_at]
    baseline, kind = (before, "the same queries before the rule") if before else (
        [s for s in same if s.timestamp >= created_at], "the same queries the rule did not touch")
    products = {pid for s in touched for pid in s.rules[rule_id]}
    done = _engagement(store, {s.query_id for s in touched} | {s.query_id for s in baseline})
    return {"rule": rule_id, "queries": sorted(queries),
            "touched": _figures(touched, done, lambda s: set(s.rules[rule_id])),
            "baseline": {"of": kind, **_figures(baseline, done, lambda s: products & set(s.shown))}}


def _engagement(store: ShopperStore, query_ids: set[str]) -> dict[str, list[tuple[str, str]]]:
    """query id -> (action, product) of every click, cart and purchase after it."""
    out: dict[str, list[tuple[str, str]]] = {}
    for e in store.events():
        if e.action in GRADES and e.query_id in query_ids and e.object_id:
            out.setdefault(e.query_id, []).append((e.action, e.object_id))
    return out


def _figures(searches: Iterable[Search], done: dict[str, list[tuple[str, str]]],
             its_products: Any) -> dict[str, Any]:
    """Per search, every engagement and the engagement with the rule's products."""
    searches = list(searches)
    every = dict.fromkeys(ACTIONS, 0)
    on_products = dict.fromkeys(ACTIONS, 0)
    for s in searches:
        mine = its_products(s)
        for action, product in done.get(s.query_id, ()):
            every[action] += 1
            if product in mine:
                on_products[action] += 1
    count = len(searches)
    return {"searches": count,
            "per_search": {a: round(n / count, 4) if count else None for a, n in every.items()},
            "on_its_products": on_products,
            "on_its_products_per_search": {a: round(n / count, 4) if count else None for a, n in on_products.items()}}
