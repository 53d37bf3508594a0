"""A merchandising rule, read from its JSON with every problem named by its field.

A rule is a kind (what it does), a scope (which searches), and what the kind needs: pins
name products and positions; hide, bury, boost, demote, filter and diversify select
products by a condition; synonyms list terms; a rewrite names the new query text; a
redirect a URL. Reading checks everything a rule could get wrong before it is stored —
an unknown kind or field, a regular expression that is malformed or too costly, a
position below 1, a product id the catalog lacks, a window that ends before it starts —
so a stored rule always applies.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from indexer.store.base import Filters, Product, category_levels, number

KINDS = ("pin", "hide", "bury", "boost", "demote", "filter", "synonym", "rewrite", "redirect", "diversify")
MATCHES = ("equals", "contains", "starts_with", "regex", "any")
CONDITIONED = ("hide", "bury", "boost", "demote", "filter", "diversify")
MAX_REGEX = 200
MAX_TEXT = 200
MAX_NOTE = 1000
MAX_PINS = 50
MAX_IDS = 1000
MAX_TERMS = 50
# Nested quantifiers, `(a+)+` and the like: the patterns whose matching time can explode.
_NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)\s*[+*{]")
_SCALAR_FIELDS = ("brand", "currency", "title")
_RANGE_FIELDS = ("price", "rating", "review_count")


class RuleError(ValueError):
    """A rule is not usable; `field` names where (e.g. `scope.match`, `products[2].id`)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def normalized(query: str) -> str:
    """How scopes compare queries: lower case, single spaces."""
    return " ".join(query.lower().split())


@dataclass(frozen=True)
class Scope:
    query: str  # normalized
    match: str
    category: str | None = None  # only searches filtered to this category (or below it)
    pattern: re.Pattern[str] | None = None

    def applies(self, query: str, category: str | None, text: str | None = None) -> bool:
        """`text`: the query already normalized (a search matches many rules with it)."""
        if self.category is not None and (category is None or self.category not in category_levels(category)):
            return False
        text = normalized(query) if text is None else text
        if self.match == "any":
            return True
        if self.match == "equals":
            return text == self.query
        if self.match == "contains":
            return self.query in text
        if self.match == "starts_with":
            return text.startswith(self.query)
        assert self.pattern is not None
        return self.pattern.search(text) is not None

    @property
    def specificity(self) -> int:
        """Ties between rules of one priority go to the more specific scope."""
        return {"equals": 4, "starts_with": 3, "contains": 2, "regex": 2, "any": 0}[self.match] + (
            1 if self.category else 0)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"query": self.query, "match": self.match}
        if self.category is not None:
            out["category"] = self.category
        return out


@dataclass(frozen=True)
class Condition:
    """Which products: by a field's value, a category prefix, an attribute value, a range,
    stock, or a list of ids."""

    field: str  # brand, category, in_stock, price, rating, review_count, attributes.<name>, id, title, currency
    value: Any = None
    low: float | None = None
    high: float | None = None
    ids: frozenset[str] = frozenset()

    def matches(self, product: Product) -> bool:
        if self.field == "id":
            return product.get("id") in self.ids
        if self.field == "category":
            return self.value in category_levels(product.get("category") or "")
        if self.field == "in_stock":
            return product.get("in_stock") is self.value
        if self.field in _RANGE_FIELDS:  # read as the recall filters read it (indexer.store.base.number)
            value = number(product.get(self.field))
            if value is None:
                return False
            return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)
        if self.field.startswith("attributes."):
            return (product.get("attributes") or {}).get(self.field.split(".", 1)[1]) == self.value
        return product.get(self.field) == self.value  # exact, as the search filters match

    def select(self, products: Mapping[str, Product]) -> set[str]:
        """The ids among `products` (id -> product) this condition selects; an id list is
        a set intersection, not a pass over the products."""
        if self.field == "id":
            return set(self.ids.intersection(products))
        return {pid for pid, product in products.items() if self.matches(product)}

    def as_filters(self) -> Filters | None:
        """The same selection as a search filter (so recall can leave it out), when the
        filters can say it; None for the one they cannot (an exact title)."""
        if self.field == "id":
            return Filters(ids=tuple(sorted(self.ids)))
        if self.field == "brand":
            return Filters(brands=(self.value,))
        if self.field == "category":
            return Filters(category=self.value)
        if self.field == "in_stock":
            return Filters(in_stock=self.value)
        if self.field == "price":
            return Filters(price_min=self.low, price_max=self.high)
        if self.field.startswith("attributes."):
            return Filters(attributes=((self.field.split(".", 1)[1], (self.value,)),))
        if self.field in ("rating", "review_count"):
            return Filters(ranges=((self.field, self.low, self.high),))
        if self.field == "currency":
            return Filters(terms=(("currency", (self.value,)),))
        return None

    def to_json(self) -> dict[str, Any]:
        if self.field == "id":
            return {"ids": sorted(self.ids)}
        if self.field in _RANGE_FIELDS:
            return {"field": self.field, "min": self.low, "max": self.high}
        return {"field": self.field, "value": self.value}


@dataclass(frozen=True)
class Pin:
    id: str
    position: int  # 1-based, over the whole result list (page 2 starts after page 1's last)


@dataclass(frozen=True)
class Rule:
    kind: str
    scope: Scope
    priority: int = 0
    enabled: bool = True
    starts_at: float | None = None  # seconds since the epoch
    ends_at: float | None = None
    note: str = ""
    condition: Condition | None = None
    pins: tuple[Pin, ...] = ()
    strength: float = 0.0
    terms: tuple[str, ...] = ()
    one_way: bool = False
    to: str = ""
    url: str = ""
    diversify_field: str = ""
    max_per_value: int = 0
    id: str | None = None  # given by the store

    def live(self, now: float) -> bool:
        return self.enabled and (self.starts_at is None or now >= self.starts_at) and (
            self.ends_at is None or now < self.ends_at)

    def to_json(self) -> dict[str, Any]:
        """The rule as the API shows it (and as `parse_rule` reads it back)."""
        out: dict[str, Any] = {"kind": self.kind, "scope": self.scope.to_json(), "priority": self.priority,
                               "enabled": self.enabled, "starts_at": _iso(self.starts_at),
                               "ends_at": _iso(self.ends_at), "note": self.note}
        if self.id is not None:
            out = {"id": self.id, **out}
        if self.kind == "pin":
            out["products"] = [{"id": p.id, "position": p.position} for p in self.pins]
        if self.condition is not None:
            out["condition"] = self.condition.to_json()
        if self.kind in ("boost", "demote"):
            out["strength"] = self.strength
        if self.kind == "synonym":
            out.update(terms=list(self.terms), one_way=self.one_way)
        if self.kind == "rewrite":
            out["to"] = self.to
        if self.kind == "redirect":
            out["url"] = self.url
        if self.kind == "diversify":
            out.update(field=self.diversify_field, max=self.max_per_value)
        return out


KnownProducts = Callable[[list[str]], set[str]]  # ids -> those the catalog holds


def parse_rule(raw: Any, known: KnownProducts | None = None, rule_id: str | None = None) -> Rule:
    """A `Rule`, or RuleError naming the first field that is wrong. `known`: checks that
    pinned products exist (None: not checked)."""
    if not isinstance(raw, Mapping):
        raise RuleError("rule", "must be a JSON object")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise RuleError("kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
    allowed = {"id", "kind", "scope", "priority", "enabled", "starts_at", "ends_at", "note", *_KIND_FIELDS[kind]}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise RuleError(unknown[0], f"is not a field of a {kind} rule (it takes {', '.join(sorted(allowed))})")
    starts_at, ends_at = _time(raw, "starts_at"), _time(raw, "ends_at")
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise RuleError("ends_at", "must be after starts_at")
    priority = raw.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool) or not -1000 <= priority <= 1000:
        raise RuleError("priority", "must be an integer from -1000 to 1000")
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise RuleError("enabled", "must be true or false")
    note = raw.get("note") or ""
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        raise RuleError("note", f"must be text of at most {MAX_NOTE} characters")
    common: dict[str, Any] = dict(kind=kind, scope=_scope(raw.get("scope")), priority=priority, enabled=enabled,
                                  starts_at=starts_at, ends_at=ends_at, note=note, id=rule_id)
    if kind == "pin":
        return Rule(**common, pins=_pins(raw.get("products"), known))
    if kind in CONDITIONED and not (kind == "diversify" and raw.get("condition") is None):
        common["condition"] = _condition(raw.get("condition"))  # diversify: optional (every product)
    if kind in ("boost", "demote"):
        strength = raw.get("strength", 1.0)
        if not isinstance(strength, int | float) or isinstance(strength, bool) or not 0 < strength <= 100:
            raise RuleError("strength", "must be a number above 0 and at most 100")
        common["strength"] = float(strength)
    if kind == "diversify":
        name = raw.get("field")
        if name not in ("brand", "category") and not (isinstance(name, str) and name.startswith("attributes.")):
            raise RuleError("field", "must be brand, category or attributes.<name>")
        most = raw.get("max")
        if not isinstance(most, int) or isinstance(most, bool) or not 1 <= most <= 100:
            raise RuleError("max", "must be an integer from 1 to 100")
        common.update(diversify_field=name, max_per_value=most)
    if kind == "synonym":
        common.update(terms=_terms(raw.get("terms")), one_way=_flag(raw, "one_way", False))
    if kind == "rewrite":
        common["to"] = _text(raw.get("to"), "to")
    if kind == "redirect":
        url = raw.get("url")
        if not isinstance(url, str) or not re.fullmatch(r"(https?://[^\s]{1,2000}|/[^\s]{0,2000})", url):
            raise RuleError("url", "must be an http(s) URL or a path starting with /")
        common["url"] = url
    return Rule(**common)


_KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "pin": ("products",), "hide": ("condition",), "bury": ("condition",), "boost": ("condition", "strength"),
    "demote": ("condition", "strength"), "filter": ("condition",), "synonym": ("terms", "one_way"),
    "rewrite": ("to",), "redirect": ("url",), "diversify": ("condition", "field", "max")}


def _scope(raw: Any) -> Scope:
    if not isinstance(raw, Mapping):
        raise RuleError("scope", 'must be an object such as {"query": "sofa", "match": "equals"}')
    unknown = sorted(set(raw) - {"query", "match", "category"})
    if unknown:
        raise RuleError(f"scope.{unknown[0]}", "is not a scope field (query, match, category)")
    match = raw.get("match", "equals")
    if match not in MATCHES:
        raise RuleError("scope.match", f"must be one of {', '.join(MATCHES)}, got {match!r}")
    category = raw.get("category")
    if category is not None and (not isinstance(category, str) or not category.strip()):
        raise RuleError("scope.category", "must be a category path such as 'Furniture > Sofas'")
    if match == "any":
        return Scope("", "any", category)
    query = raw.get("query")
    if not isinstance(query, str) or not query.strip():
        raise RuleError("scope.query", f"is required for match {match!r}")
    if match != "regex":
        return Scope(_text(normalized(query), "scope.query"), match, category)
    if len(query) > MAX_REGEX:
        raise RuleError("scope.query", f"a regular expression may have at most {MAX_REGEX} characters")
    if _NESTED_QUANTIFIER.search(query):
        raise RuleError("scope.query", "nested quantifiers such as (a+)+ can take exponential time: rewrite it")
    try:
        pattern = re.compile(query, re.IGNORECASE)
    except re.error as exc:
        raise RuleError("scope.query", f"is not a valid regular expression: {exc}") from None
    return Scope(query, "regex", category, pattern)


def _condition(raw: Any) -> Condition:
    if not isinstance(raw, Mapping):
        raise RuleError("condition", 'must be an object such as {"field": "brand", "value": "Ashford"}')
    if "ids" in raw:
        ids = raw["ids"]
        if not isinstance(ids, list) or not ids or len(ids) > MAX_IDS or not all(
                isinstance(i, str) and i for i in ids):
            raise RuleError("condition.ids", f"must be a list of 1-{MAX_IDS} product ids")
        return Condition("id", ids=frozenset(ids))
    name = raw.get("field")
    if name in _RANGE_FIELDS:
        low, high = raw.get("min"), raw.get("max")
        for label, bound in (("min", low), ("max", high)):
            if bound is not None and (not isinstance(bound, int | float) or isinstance(bound, bool)):
                raise RuleError(f"condition.{label}", "must be a number")
        if low is None and high is None:
            raise RuleError("condition", f"a {name} condition needs min, max or both")
        if low is not None and high is not None and high < low:
            raise RuleError("condition.max", "must be at least min")
        return Condition(name, low=None if low is None else float(low), high=None if high is None else float(high))
    value = raw.get("value")
    if name == "in_stock":
        if not isinstance(value, bool):
            raise RuleError("condition.value", "must be true or false for in_stock")
        return Condition(name, value)
    if name in ("brand", "category", *_SCALAR_FIELDS) or (
            isinstance(name, str) and name.startswith("attributes.") and len(name) > len("attributes.")):
        return Condition(name, _text(value, "condition.value"))
    raise RuleError("condition.field", "must be brand, category, in_stock, price, rating, review_count, title, "
                    f"currency, attributes.<name>, or give ids; got {name!r}")


def _pins(raw: Any, known: KnownProducts | None) -> tuple[Pin, ...]:
    if not isinstance(raw, list) or not raw or len(raw) > MAX_PINS:
        raise RuleError("products", f'must list 1-{MAX_PINS} products such as {{"id": "SR-000123", "position": 1}}')
    pins, positions = [], set()
    for n, item in enumerate(raw):
        where = f"products[{n}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("id"), str) or not item["id"]:
            raise RuleError(f"{where}.id", "must be a product id")
        position = item.get("position")
        if not isinstance(position, int) or isinstance(position, bool) or not 1 <= position <= 1000:
            raise RuleError(f"{where}.position", "must be an integer from 1 to 1000")
        if position in positions:
            raise RuleError(f"{where}.position", f"position {position} is pinned twice")
        positions.add(position)
        pins.append(Pin(item["id"], position))
    if len({p.id for p in pins}) != len(pins):
        raise RuleError("products", "a product is pinned twice")
    if known is not None:
        found = known([p.id for p in pins])
        for n, pin in enumerate(pins):
            if pin.id not in found:
                raise RuleError(f"products[{n}].id", f"no product {pin.id!r} in the catalog")
    return tuple(pins)


def _terms(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not 2 <= len(raw) <= MAX_TERMS:
        raise RuleError("terms", f"must list 2-{MAX_TERMS} terms (one-way: the first becomes the others)")
    terms = tuple(normalized(_text(t, f"terms[{n}]")) for n, t in enumerate(raw))
    if len(set(terms)) != len(terms):
        raise RuleError("terms", "a term is listed twice")
    return terms


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        raise RuleError(where, f"must be text of 1-{MAX_TEXT} characters")
    return value.strip()


def _flag(raw: Mapping[str, Any], name: str, default: bool) -> bool:
    value = raw.get(name, default)
    if not isinstance(value, bool):
        raise RuleError(name, "must be true or false")
    return value


def _time(raw: Mapping[str, Any], name: str) -> float | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RuleError(name, "must be ISO 8601 text such as 2026-12-24T00:00:00Z, or null")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise RuleError(name, f"is not ISO 8601: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        raise RuleError(name, "needs a time zone (e.g. a trailing Z for UTC)")
    return parsed.timestamp()


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    from ranker.events.schema import iso_time

    return iso_time(timestamp)
