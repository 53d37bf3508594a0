"""The personal features: how well each candidate fits one shopper's profile.

They are the last columns of the feature vector (`PERSONAL_FEATURES`) and are all 0 for
an anonymous shopper, an unknown one, or a profile the gate turns away, so such a search
gets exactly the features, and the ranking, of a search without a shopper.

    personal_evidence            log(1 + the profile's decayed engagement weight)
    personal_category_affinity   mean, over the levels of the candidate's category path, of
                                 the profile's share of engagement in that level
    personal_brand_affinity      the profile's share of engagement with the candidate's brand
    personal_brand_in_category   the same within the candidate's category: of the engagement
                                 in that category, the share with this brand
    personal_brand_in_department the same within the top level of its category path (loyalty
                                 to a maker often spans a department: its sofas and its beds)
    personal_attribute_affinity  mean, over the candidate's attributes the shopper has an
                                 opinion on, of the share of that value (color=gray among colors)
    personal_embedding_cosine    cosine of the candidate's vector to the engaged products' mean
    personal_price_fit           exp(-z^2 / 2), z the candidate's relative price (its price's
                                 percentile within its category) from the profile's band of
                                 relative prices, in band spreads (a floor keeps a narrow
                                 band usable): a shopper who buys the dearer sofas is
                                 likely to pick the dearer towels too
    personal_engaged             the share of engagement with this very product
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from indexer.store.base import category_levels
from ranker.events.profile import Profile, taste_attributes
from ranker.features.names import PERSONAL_FEATURES
from ranker.features.token_bags import TokenBags

MIN_PRICE_SPREAD = 0.1  # in percentiles: a band of one price still admits its neighbours


@dataclass(frozen=True)
class PersonalView:
    """A profile as features read it, at one moment: shares, not raw weights."""

    evidence: float
    categories: Mapping[str, float]
    brands: Mapping[str, float]
    brand_in_category: Mapping[str, float]  # "category level|brand" -> share of that level's engagement
    attributes: Mapping[str, float]  # "name=value" -> share among the values of `name`
    attribute_names: frozenset[str]
    products: Mapping[str, float]
    embedding: np.ndarray | None
    price_band: tuple[float, float] | None  # mean and spread of the relative price

    @classmethod
    def of(cls, profile: Profile, now: float) -> PersonalView:
        within = {key: weight / profile.categories[key.split("|", 1)[0]]
                  for key, weight in profile.category_brands.items() if profile.categories.get(key.split("|", 1)[0])}
        return cls(profile.evidence_at(now), profile.shares(profile.categories), profile.shares(profile.brands),
                   within, profile.attribute_shares(), frozenset(profile.attribute_names),
                   profile.shares(profile.products), profile.unit_embedding(), profile.premium_band())


def admitted(view: PersonalView, min_evidence: float) -> bool:
    """The gate: enough engagement for the profile to change a search. Evidence decays
    from the moment it arrives, so the threshold allows a percent of decay (a click a
    moment ago counts as a click)."""
    return view.evidence > 0 and view.evidence >= 0.99 * min_evidence


def relative_prices(products: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Each product's price percentile among the `products` of its category, 0-1 (NaN: no price)."""
    prices = np.array([p["price"] if p.get("price") is not None else np.nan for p in products], dtype=np.float64)
    by_category: dict[str, list[int]] = {}
    for i, p in enumerate(products):
        if not np.isnan(prices[i]):
            by_category.setdefault(p.get("category") or "", []).append(i)
    out = np.full(len(products), np.nan)
    for rows in by_category.values():
        values = prices[rows]
        below = np.searchsorted(np.sort(values), values, side="left")
        same = np.searchsorted(np.sort(values), values, side="right") - below
        out[rows] = (below + 0.5 * same) / len(rows)  # ties share the middle of their run
    return out


def attribute_tokens(product: Mapping[str, Any]) -> list[str]:
    """`name=value` per attribute, as profiles key them (the same rule: `taste_attributes`)."""
    return [f"{k}={v}" for k, v in taste_attributes(product).items()]


class PersonalTable:
    """Per product, what the personal features compare with a profile."""

    def __init__(self, products: list[Mapping[str, Any]]):
        self.ids = [p["id"] for p in products]
        self.vocabulary: dict[str, int] = {}  # one id space for every kind, prefixed by kind
        self.brands = TokenBags.build(([f"b:{p['brand']}"] if p.get("brand") else [] for p in products),
                                      self.vocabulary)
        self.category_brands = TokenBags.build(
            ([f"cb:{p['category']}|{p['brand']}"] if p.get("brand") and p.get("category") else [] for p in products),
            self.vocabulary)
        self.department_brands = TokenBags.build(
            ([f"cb:{category_levels(p['category'])[0]}|{p['brand']}"] if p.get("brand") and p.get("category")
             else [] for p in products), self.vocabulary)
        self.categories = TokenBags.build(([f"c:{level}" for level in category_levels(p.get("category") or "")]
                                           for p in products), self.vocabulary)
        tokens = [attribute_tokens(p) for p in products]
        self.attributes = TokenBags.build(([f"a:{t}" for t in ts] for ts in tokens), self.vocabulary)
        self.attribute_names = TokenBags.build(([f"n:{t.split('=', 1)[0]}" for t in ts] for ts in tokens),
                                               self.vocabulary)
        self.products = TokenBags.build(([f"p:{p['id']}"] for p in products), self.vocabulary)
        self.relative_price = relative_prices(products)

    def _lookup(self, prefix: str, weights: Mapping[str, float] | Iterable[str]) -> np.ndarray:
        """A weight per vocabulary id (0 for values the profile does not hold)."""
        table = np.zeros(len(self.vocabulary), dtype=np.float64)
        items = weights.items() if isinstance(weights, Mapping) else ((w, 1.0) for w in weights)
        for value, weight in items:
            code = self.vocabulary.get(prefix + value)
            if code is not None:
                table[code] = weight
        return table

    @staticmethod
    def _sums(bags: TokenBags, rows: np.ndarray, lookup: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row: the sum of its tokens' weights, and how many tokens it has."""
        positions, segment = bags.gather(rows)
        weights = lookup[bags.indices[positions]]
        return (np.bincount(segment, weights=weights, minlength=len(rows)),
                bags.lengths(rows).astype(np.float64))

    def features(self, view: PersonalView, rows: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """The (len(rows), len(PERSONAL_FEATURES)) float32 block for these candidates."""
        n = len(rows)
        out = np.zeros((n, len(PERSONAL_FEATURES)), dtype=np.float32)
        if n == 0 or view.evidence <= 0:
            return out
        out[:, 0] = math.log1p(view.evidence)
        summed, levels = self._sums(self.categories, rows, self._lookup("c:", view.categories))
        out[:, 1] = summed / np.maximum(levels, 1.0)
        out[:, 2] = self._sums(self.brands, rows, self._lookup("b:", view.brands))[0]
        within = self._lookup("cb:", view.brand_in_category)
        out[:, 3] = self._sums(self.category_brands, rows, within)[0]
        out[:, 4] = self._sums(self.department_brands, rows, within)[0]
        shares = self._sums(self.attributes, rows, self._lookup("a:", view.attributes))[0]
        known = self._sums(self.attribute_names, rows, self._lookup("n:", view.attribute_names))[0]
        out[:, 5] = shares / np.maximum(known, 1.0)
        if view.embedding is not None:
            out[:, 6] = vectors @ view.embedding
        if view.price_band is not None:
            mean, spread = view.price_band
            z = (self.relative_price[rows] - mean) / max(spread, MIN_PRICE_SPREAD)
            out[:, 7] = np.nan_to_num(np.exp(-0.5 * z * z), nan=0.0)
        out[:, 8] = self._sums(self.products, rows, self._lookup("p:", view.products))[0]
        return out
