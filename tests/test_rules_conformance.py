"""The rules conformance suite: every ranking rule kind × sort orders × shopper filters ×
pages 1-3 × learned ranking on and off × personalization on and off, on the demo index
with a trained model and a shopper with a profile. In every case: pins hold their
positions, hidden products never appear, pages hold each product once and agree with one
long page, the total and the brand facet leave hidden products out, filter rules keep only
what they select (and the total counts only that), buried products come last."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import pytest

from indexer.store.base import Filters
from ranker.request import SearchRequest, Shopper
from ranker.rules.engine import RuleBook, rule_order
from ranker.rules.model import parse_rule
from tests.conftest import Trained

QUERY = "sofa"
PAGE = 5
KINDS = ("pin", "hide", "bury", "boost", "demote", "filter", "diversify")
SORTS = ("relevance", "price_asc", "rating")
FILTERS = {"none": Filters(), "in stock": Filters(in_stock=True), "price under 800": Filters(price_max=800.0)}


@pytest.fixture(scope="module")
def setup(trained: Trained, shipped_encoder, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    from indexer.backends import open_backend
    from ranker.events.facts import facts_from
    from ranker.events.schema import parse_event
    from ranker.events.store import EventStore
    from ranker.features.sources import feature_source
    from ranker.pipeline import SearchPipeline
    from ranker.rerank import LearnedRanker, latest_model

    reader = open_backend(trained.data_dir).reader()
    model = latest_model(trained.data_dir)
    assert model is not None
    store = EventStore(tmp_path_factory.mktemp("conformance") / "events.sqlite", sync="normal")
    plain = SearchPipeline(reader, shipped_encoder, profiles=store)
    shown = [r["id"] for r in plain.search(SearchRequest(QUERY, k=30)).results]
    store.add([parse_event({"action_name": "purchase", "user_id": "fan", "object_id": pid}) for pid in shown[-3:]],
              facts_from(reader))
    learned = SearchPipeline(reader, shipped_encoder, ranker=LearnedRanker(model, feature_source(reader),
                                                                           reader.encoder_variant), profiles=store)
    products = {p["id"]: p for p in reader.catalog().products}
    top = plain.search(SearchRequest(QUERY, k=30)).results
    outside = next(pid for pid, p in products.items() if pid not in {r["id"] for r in top}
                   and p.get("in_stock") and (p.get("price") or 0) < 800)
    return {"pipelines": {"learned": learned, "recall": plain}, "products": products, "top": top,
            "outside": outside}


def rules_of(kind: str, setup: dict[str, Any]) -> tuple[RuleBook, dict[str, Any]]:
    top, products = setup["top"], setup["products"]
    brand = top[0]["brand"]
    scope = {"query": QUERY, "match": "equals"}
    raw: dict[str, Any] = {"kind": kind, "scope": scope}
    facts: dict[str, Any] = {"brand": brand}
    if kind == "pin":
        facts["pins"] = {top[12]["id"]: 1, setup["outside"]: 7}  # one from page 3, one recall missed
        raw["products"] = [{"id": pid, "position": pos} for pid, pos in facts["pins"].items()]
    elif kind in ("hide", "bury", "boost", "demote"):
        raw["condition"] = {"field": "brand", "value": brand}
        if kind in ("boost", "demote"):
            raw["strength"] = 3
    elif kind == "filter":
        raw["condition"] = {"field": "price", "max": 500}
    else:
        raw.update(field="brand", max=1)
    assert products
    return RuleBook((parse_rule(raw, rule_id=f"{kind}-rule"),)), facts


CASES = list(itertools.product(KINDS, SORTS, FILTERS, ("learned", "recall"), (True, False)))


@pytest.mark.parametrize(("kind", "sort", "filter_name", "ranking", "personal"), CASES)
def test_rules_hold_in_every_combination(setup: dict[str, Any], kind: str, sort: str, filter_name: str,
                                         ranking: str, personal: bool) -> None:
    pipeline, products = setup["pipelines"][ranking], setup["products"]
    book, facts = rules_of(kind, setup)
    filters = FILTERS[filter_name]
    base = SearchRequest(QUERY, k=PAGE, filters=filters, shopper=Shopper("fan" if personal else None), sort=sort)
    pages = [pipeline.search(replace(base, offset=PAGE * n), rules=book) for n in range(3)]
    long = pipeline.search(replace(base, k=3 * PAGE), rules=book)
    ids = [r["id"] for page in pages for r in page.results]
    if kind != "diversify":  # diversify reads the page size: a longer first page is diversified further
        assert ids == [r["id"] for r in long.results]  # three pages are one long page
    assert len(ids) == len(set(ids))  # each product on exactly one page
    assert all(filters.matches(products[pid]) for pid in ids)  # a rule never breaks the shopper's filters
    assert len({p.total for p in pages}) == 1
    without = pipeline.search(replace(base, k=3 * PAGE), rules=RuleBook())
    brand = facts["brand"]
    if kind == "pin":
        for pid, position in facts["pins"].items():
            if filters.matches(products[pid]):
                assert ids[position - 1] == pid, (pid, position)
    if kind == "hide":
        assert all(products[pid].get("brand") != brand for pid in ids)
        hidden = next((b["count"] for b in without.facets["brand"] if b["value"] == brand), 0)
        assert long.total == without.total - hidden
        assert brand not in {b["value"] for b in long.facets["brand"]}
    if kind == "filter":  # inside recall: the total is the shopper's search with the rule's filter
        assert all((products[pid].get("price") or 0) <= 500 for pid in ids)
        narrowed = replace(filters, price_max=min(500.0, filters.price_max or 500.0))
        assert long.total == pipeline.search(replace(base, filters=narrowed), rules=RuleBook()).total < without.total
        assert all(b["to"] is not None and b["to"] <= 500 for b in long.facets["price"])
    if kind == "bury":
        marks = [products[pid].get("brand") == brand for pid in ids]
        assert marks == sorted(marks)  # every buried product after every other one
    if kind == "diversify":
        first = [products[pid].get("brand") for pid in ids[:PAGE]]
        distinct = len({products[pid].get("brand") for pid in [r["id"] for r in without.results]})
        if distinct >= PAGE:
            assert len(first) == len(set(first))
    if kind in ("boost", "demote"):
        before = [r["id"] for r in without.results]
        for pid in ids:
            if products[pid].get("brand") == brand and pid in before:
                moved = ids.index(pid) - before.index(pid)
                assert moved <= 0 if kind == "boost" else moved >= 0


def test_rule_order_is_deterministic() -> None:
    rules = [parse_rule({"kind": "bury", "scope": {"query": "sofa", "match": m}, "priority": p,
                         "condition": {"ids": ["x"]}}, rule_id=f"r{n}")
             for n, (m, p) in enumerate([("any", 0), ("equals", 0), ("contains", 2), ("equals", 2)])]
    assert [r.id for r in sorted(rules, key=rule_order)] == ["r3", "r2", "r1", "r0"]

