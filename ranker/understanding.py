"""Query understanding: the words of a query that name a value the catalog has.

"gray velvet sofa" names a color and a material; "ashford sofa" a brand; "sofa" a
category. The vocabulary is the index's own values (every attribute value, brand and
category level with how many products have it), analysed as the title is, so "Sofas"
is named by "sofa" and "Cast Iron" by "cast iron": nothing is listed by hand per catalog.

A query is read left to right, the longest phrase first (up to `MAX_PHRASE` words), so
"cast iron skillet" names the material "cast iron", not the value "iron". A phrase may
name several values ("oak" is a material of tables and a color of flooring): a product
has the phrase's value when it has any of them.

What it is used for (ranker/pipeline.py): recall adds the text matches that have every
named attribute and brand value, and orders those first (`lift`); the learned model
sees how many of the named values each candidate has (the `query_values_matched`
feature); the response offers each named attribute value as a facet suggestion
(`understood`), never applied silently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from indexer.documents import PAIR_SEPARATOR, value_fields
from indexer.store.base import Filters

MAX_PHRASE = 4
# Values too ambiguous to read from a query: a lone number ("6" is a shoe size and a
# count) or a one- or two-letter token ("S", "XL").
MIN_VALUE_CHARS = 3


@dataclass(frozen=True)
class Named:
    """One value a phrase of the query names: `field` is `attr.<name>`, `brand` or `category`."""

    field: str
    value: str

    @property
    def key(self) -> str:
        return f"{self.field}={self.value}"


@dataclass(frozen=True)
class Phrase:
    """Words of the query (`text`, as typed) and the values they may name."""

    text: str
    values: tuple[Named, ...]

    @property
    def liftable(self) -> bool:
        """Attribute and brand values order recall; a category rarely is the thing sought
        ("sofa cover" names the category of sofas)."""
        return any(v.field != "category" for v in self.values)

    def to_json(self) -> list[dict[str, Any]]:
        return [{"field": v.field, "value": v.value, "text": self.text} for v in self.values]


def _named(field: str, value: str) -> Named:
    """A `VALUE_FIELDS` value (indexer.store.base) in the vocabulary's terms."""
    if field == "brand":
        return Named("brand", value)
    if field == "category_levels":
        return Named("category", value)
    name, _, attribute = value.partition(PAIR_SEPARATOR)
    return Named(f"attr.{name}", attribute)


def document_values(document: dict[str, Any]) -> list[Named]:
    """The values an indexed document (`indexer.documents.search_document`) has, in the
    vocabulary's terms."""
    return [_named(field, value) for field, value in value_fields(document)]


def _words_of(value: Named) -> str:
    return value.value.rsplit(">", 1)[-1] if value.field == "category" else value.value


class QueryUnderstanding:
    """Phrases of a query -> the catalog values they name (see the module doc)."""

    def __init__(self, counts: Mapping[Named, int], analyze: Callable[[str], list[str]]):
        self.analyze = analyze
        self.counts = dict(counts)
        self.phrases: dict[tuple[str, ...], list[Named]] = {}
        for value in counts:
            tokens = tuple(analyze(_words_of(value)))
            if not tokens or len(tokens) > MAX_PHRASE or all(t.isdigit() for t in tokens):
                continue
            if sum(len(t) for t in tokens) < MIN_VALUE_CHARS:
                continue
            self.phrases.setdefault(tokens, []).append(value)
        for values in self.phrases.values():  # most frequent first: the order `understood` lists them
            values.sort(key=lambda v: (-self.counts[v], v.field, v.value))

    def __call__(self, text: str) -> list[Phrase]:
        words = text.split()
        tokens: list[tuple[str, int]] = []  # (token, the word it came from)
        for n, word in enumerate(words):
            tokens += [(t, n) for t in self.analyze(word)]
        found: list[Phrase] = []
        start = 0
        while start < len(tokens):
            for length in range(min(MAX_PHRASE, len(tokens) - start), 0, -1):
                key = tuple(t for t, _ in tokens[start : start + length])
                values = self.phrases.get(key)
                if values:
                    first, last = tokens[start][1], tokens[start + length - 1][1]
                    found.append(Phrase(" ".join(words[first : last + 1]), tuple(values)))
                    start += length
                    break
            else:
                start += 1
        return found


def lifted_filters(phrases: Sequence[Phrase]) -> list[tuple[str, Filters]]:
    """(the phrase, a required filter) per liftable phrase: products with one of its
    attribute or brand values."""
    out = []
    for phrase in phrases:
        if not phrase.liftable:
            continue
        named = [v for v in phrase.values if v.field != "category"]
        brands = tuple(v.value for v in named if v.field == "brand")
        pairs = tuple(f"{v.field[5:]}{PAIR_SEPARATOR}{v.value}" for v in named if v.field.startswith("attr."))
        if brands and pairs:  # either: a filter cannot say "or" across fields, so the pairs alone
            brands = ()
        out.append((phrase.text, Filters(brands=brands) if brands else Filters(terms=(("attribute_pairs", pairs),))))
    return out


def counts_from_fields(fields: Mapping[str, Mapping[str, int]]) -> dict[Named, int]:
    """A reader's `value_counts` (indexer.store.base.VALUE_FIELDS) in the vocabulary's terms."""
    return {_named(field, value): count for field, values in fields.items() for value, count in values.items()}


def query_understanding(reader: Any) -> QueryUnderstanding:
    """The understanding of a reader's index (a `SearchReader`)."""
    return QueryUnderstanding(counts_from_fields(reader.value_counts()), reader.analyze)


def understood_suggestions(phrases: Sequence[Phrase], filters: Filters) -> list[dict[str, Any]]:
    """The named values as facet suggestions ({field, value, text}), leaving out those the
    search already filters by."""
    applied = {("brand", b) for b in filters.brands} | {("category", filters.category)}
    applied |= {(f"attr.{name}", v) for name, values in filters.attributes for v in values}
    return [entry for phrase in phrases for entry in phrase.to_json() if (entry["field"], entry["value"]) not in applied]
