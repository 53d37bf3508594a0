"""Which rules a search meets, and what they do to it.

Before recall (`plan`): a rewrite replaces the query text, synonyms add words to the BM25
side only (the encoder and the features keep the text the shopper typed, or its rewrite),
a redirect answers with a URL.

After learned and personal ranking (`apply`, the merchandise stage), on the whole
candidate list so pages stay consistent (a product is on exactly one page), in one fixed
order that is also the conflict order:

    hide > pin > filter > bury > boost / demote > diversify

- hide: matching products leave the list; a hidden product is never pinned back in;
- pin: products at their positions, pulled in when recall missed them unless they fail
  the shopper's own filters; applied last, so nothing moves a pin; when two pins want one
  position the first rule in rule order keeps it;
- filter: products not matching leave the list (pins excepted: pin > filter); like hide,
  a filter recall can apply (`required_filters`) acts inside recall, so totals and facets
  count only what it keeps;
- bury: matching products go after every other one, in their order;
- boost / demote: matching products move up / down by `strength` positions;
- diversify: at most `max` products of one brand, category or attribute value on the
  first page; the rest move down to just after it.

Rules of one kind apply in rule order: higher priority first, then the more specific
scope, then the older rule. `explain` lists, per product, every rule that touched it in
the order applied, and a rule that lost to another as `lost_to`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from indexer.store.base import Filters, Product
from ranker.candidates import Candidate
from ranker.rules.model import Rule

ORDER = ("hide", "pin", "filter", "bury", "boost", "demote", "diversify")

ProductsOf = Callable[[Sequence[str]], dict[str, Product]]  # ids -> the catalog's products (missing: absent)


def rule_order(rule: Rule) -> tuple[int, int, str]:
    return (-rule.priority, -rule.scope.specificity, rule.id or "")


@dataclass(frozen=True)
class RuleBook:
    """The live rules, as one server worker holds them between reloads. Rules scoped to
    one exact query are found by a dictionary lookup; only the others are tried one by one."""

    rules: tuple[Rule, ...] = ()
    _exact: dict[str, tuple[Rule, ...]] = field(default_factory=dict, init=False, repr=False, compare=False)
    _others: tuple[Rule, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        exact: dict[str, list[Rule]] = {}
        for r in self.rules:
            if r.scope.match == "equals":
                exact.setdefault(r.scope.query, []).append(r)
        object.__setattr__(self, "_exact", {q: tuple(rs) for q, rs in exact.items()})
        object.__setattr__(self, "_others", tuple(r for r in self.rules if r.scope.match != "equals"))

    def matching(self, query: str, category: str | None, now: float) -> list[Rule]:
        from ranker.rules.model import normalized

        text = normalized(query)
        tried = self._exact.get(text, ()) + self._others
        return sorted((r for r in tried if r.scope.applies(query, category, text) and r.live(now)), key=rule_order)


@dataclass
class QueryPlan:
    text: str  # what recall and features see
    bm25_extra: tuple[str, ...] = ()  # synonym words for the BM25 side only
    redirect: str | None = None
    applied: list[dict[str, Any]] = field(default_factory=list)  # the query rules that acted, for explain


def plan(rules: Sequence[Rule], text: str) -> QueryPlan:
    """The query rules of a search (already matched, in rule order)."""
    from ranker.rules.model import normalized

    out = QueryPlan(text)
    for rule in rules:
        if rule.kind == "rewrite" and out.text == text:
            out.text = rule.to
            out.applied.append({"rule": rule.id, "kind": "rewrite", "to": rule.to})
        elif rule.kind == "redirect" and out.redirect is None:
            out.redirect = rule.url
            out.applied.append({"rule": rule.id, "kind": "redirect", "url": rule.url})
    words = normalized(out.text)
    extra: list[str] = []
    for rule in rules:
        if rule.kind != "synonym":
            continue
        sources = rule.terms[:1] if rule.one_way else rule.terms
        present = [t for t in sources if f" {t} " in f" {words} "]
        if present:
            added = [t for t in rule.terms if t not in present and (not rule.one_way or t != rule.terms[0])]
            extra += [t for t in added if t not in extra]
            out.applied.append({"rule": rule.id, "kind": "synonym", "added": added})
    out.bm25_extra = tuple(extra)
    return out


def hidden_filters(rules: Sequence[Rule]) -> tuple[Filters, ...]:
    """What the hide rules of a search leave out, as filters recall applies (so totals and
    facets count only what can be shown); a condition the filters cannot say is hidden by
    `apply` alone."""
    found = (r.condition.as_filters() for r in rules if r.kind == "hide" and r.condition is not None)
    return tuple(f for f in found if f is not None)


def required_filters(rules: Sequence[Rule]) -> tuple[Filters, ...]:
    """What the filter rules of a search keep, as filters recall applies (totals and facets
    count only what is kept); a condition the filters cannot say is kept by `apply` alone."""
    found = (r.condition.as_filters() for r in rules if r.kind == "filter" and r.condition is not None)
    return tuple(f for f in found if f is not None)


def apply(rules: Sequence[Rule], candidates: list[Candidate], filters: Filters, page_size: int,
          products_of: ProductsOf) -> list[Candidate]:
    """The ranking rules of a search (already matched, in rule order) on its candidates."""
    acting = [r for r in rules if r.kind in ORDER]
    if not acting:
        return candidates
    by_kind = {kind: [r for r in acting if r.kind == kind] for kind in ORDER}
    pinned_ids = [p.id for r in by_kind["pin"] for p in r.pins]
    known = products_of(list(dict.fromkeys([c.id for c in candidates] + pinned_ids)))
    notes: dict[str, list[dict[str, Any]]] = {}

    def note(pid: str, entry: dict[str, Any]) -> None:
        notes.setdefault(pid, []).append(entry)

    # rule -> the products its condition selects, worked out once per search
    selected = {id(r): set() if r.condition is None else r.condition.select(known) for r in acting}

    hidden: dict[str, Rule] = {}  # product -> the first hide rule (in rule order) selecting it
    for r in by_kind["hide"]:
        for pid in selected[id(r)]:
            hidden.setdefault(pid, r)
    pins = _pins(by_kind["pin"], hidden, known, filters, note)
    listed = [c for c in candidates if c.id not in hidden and c.id not in pins]
    for r in by_kind["filter"]:
        keep = selected[id(r)]
        for c in listed:
            if c.id not in keep:
                note(c.id, {"rule": r.id, "kind": "filter", "removed": True})
        listed = [c for c in listed if c.id in keep]
    for r in by_kind["bury"]:
        chosen = selected[id(r)]
        buried = [c for c in listed if c.id in chosen]
        for c in buried:
            note(c.id, {"rule": r.id, "kind": "bury"})
        if buried:
            listed = [c for c in listed if c.id not in chosen] + buried
    present = {c.id for c in listed}  # bury and boost reorder; they neither add nor remove
    for r in by_kind["boost"] + by_kind["demote"]:
        chosen = selected[id(r)]
        if chosen.isdisjoint(present):
            continue  # moves nothing: the order stands
        shift = -r.strength if r.kind == "boost" else r.strength
        keyed = []
        for n, c in enumerate(listed):
            if c.id in chosen:
                note(c.id, {"rule": r.id, "kind": r.kind, "positions": r.strength})
                keyed.append((n + shift, 0 if r.kind == "boost" else 1, n, c))
            else:
                keyed.append((float(n), 1 if r.kind == "boost" else 0, n, c))
        listed = [c for *_key, c in sorted(keyed, key=lambda k: k[:3])]
    for r in by_kind["diversify"]:
        listed = _diversify(r, listed, known, page_size - sum(p <= page_size for p in pins.values()), note)
    out = _place(listed, pins, {c.id: c for c in candidates})
    for c in out:
        if c.id in notes:
            c.rules = notes[c.id]
    return out


def _pins(rules: list[Rule], hidden: dict[str, Rule], known: dict[str, Product], filters: Filters,
          note: Callable[[str, dict[str, Any]], None]) -> dict[str, int]:
    """product id -> the position it is pinned at."""
    taken: dict[int, Rule] = {}
    pins: dict[str, int] = {}
    for r in rules:
        for pin in r.pins:
            product = known.get(pin.id)
            if pin.id in hidden:
                note(pin.id, {"rule": r.id, "kind": "pin", "lost_to": hidden[pin.id].id})
            elif product is None or not filters.matches(product):
                continue  # gone from the catalog, or outside what the shopper asked for
            elif pin.position in taken or pin.id in pins:
                winner = taken.get(pin.position)
                note(pin.id, {"rule": r.id, "kind": "pin", "lost_to": winner.id if winner else "an earlier pin"})
            else:
                taken[pin.position] = r
                pins[pin.id] = pin.position
                note(pin.id, {"rule": r.id, "kind": "pin", "position": pin.position})
    return pins


def _place(listed: list[Candidate], pins: dict[str, int], recalled: dict[str, Candidate]) -> list[Candidate]:
    """Pins at their positions (1-based) among the rest, lowest position first (so each
    lands where it asked); a position past the end is the end. A pin recall missed is a
    candidate of its own, scored as the product above it."""
    out = list(listed)
    for pid, position in sorted(pins.items(), key=lambda item: item[1]):
        at = min(position - 1, len(out))
        out.insert(at, recalled.get(pid) or Candidate(pid, out[at - 1].score if at > 0 else 0.0))
    return out


def _diversify(rule: Rule, listed: list[Candidate], known: dict[str, Product], page: int,
               note: Callable[[str, dict[str, Any]], None]) -> list[Candidate]:
    def value(c: Candidate) -> str | None:
        product = known.get(c.id) or {}
        name = rule.diversify_field
        if name.startswith("attributes."):
            found = (product.get("attributes") or {}).get(name.split(".", 1)[1])
        else:
            found = product.get(name)
        return None if found is None else str(found).lower()

    if page <= 0:
        return listed
    first: list[Candidate] = []
    moved: list[Candidate] = []
    counts: dict[str, int] = {}
    for c in listed:
        if len(first) >= page:
            break
        key = value(c)
        if key is not None and (rule.condition is None or rule.condition.matches(known.get(c.id) or {})):
            counts[key] = counts.get(key, 0) + 1
            if counts[key] > rule.max_per_value:
                moved.append(c)
                note(c.id, {"rule": rule.id, "kind": "diversify", "moved_below_page": True})
                continue
        first.append(c)
    remaining = listed[len(first) + len(moved):]
    return first + moved + remaining
