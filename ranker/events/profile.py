"""A shopper's profile, updated by each engagement as it arrives (no batch job).

Every weight decays with a half-life: a weight `w` added at time `t` counts
`w * 2 ** -((now - t) / half_life)` at `now`. All of a profile's weights are kept decayed
to one reference time (`at`), so an event moves that time forward by scaling everything
once; an event older than `at` (a late arrival) is added already decayed. Shares (a
brand's weight over all brand weight) do not change as time passes, only the evidence
(the total weight) does.

What is kept: affinities to brands, to every level of the category path and to
attribute values (`color=blue`), the price band (weighted mean and spread of log price),
a weighted sum of the engaged products' vectors, and the engaged products themselves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from indexer.store.base import category_levels

# How much one engagement says about a taste: a purchase more than a cart, a cart more than a click.
ACTION_WEIGHTS = {"click": 1.0, "add_to_cart": 3.0, "purchase": 5.0}
DEFAULT_HALF_LIFE_DAYS = 3.0


def taste_attributes(product: Mapping[str, Any]) -> dict[str, str]:
    """A product's attributes as profiles keep them: scalar values, names and values lower-cased."""
    return {str(k).lower(): str(v).lower() for k, v in (product.get("attributes") or {}).items()
            if isinstance(v, str | int | float) and not isinstance(v, bool)}


@dataclass(frozen=True)
class ProductFacts:
    """What an engagement with a product says about taste."""

    brand: str | None
    category: str | None
    attributes: dict[str, str]
    price: float | None
    vector: np.ndarray | None
    relative_price: float | None = None  # its price's percentile in its category, 0-1 (None: not known)

    @classmethod
    def of(cls, product: dict[str, Any], vector: np.ndarray | None,
           relative_price: float | None = None) -> ProductFacts:
        return cls(product.get("brand") or None, product.get("category") or None, taste_attributes(product),
                   product.get("price"), vector, relative_price)


# Weighted sums that decay and merge like the affinities.
_SCALARS = ("evidence", "price_weight", "log_price_sum", "log_price_squares", "premium_weight", "premium_sum",
            "premium_squares")


def _band(weight: float, total: float, squares: float) -> tuple[float, float] | None:
    if weight <= 0:
        return None
    mean = total / weight
    return mean, math.sqrt(max(0.0, squares / weight - mean * mean))


@dataclass
class Profile:
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS
    at: float | None = None  # every weight below is decayed to this time (None: no engagement yet)
    brands: dict[str, float] = field(default_factory=dict)
    category_brands: dict[str, float] = field(default_factory=dict)  # "category level|brand", every level
    categories: dict[str, float] = field(default_factory=dict)  # every level of each path
    attributes: dict[str, float] = field(default_factory=dict)  # "name=value"
    attribute_names: dict[str, float] = field(default_factory=dict)
    products: dict[str, float] = field(default_factory=dict)
    evidence: float = 0.0  # the total engagement weight
    price_weight: float = 0.0
    log_price_sum: float = 0.0
    log_price_squares: float = 0.0
    premium_weight: float = 0.0  # the same of the relative price (how dear within its category)
    premium_sum: float = 0.0
    premium_squares: float = 0.0
    embedding: np.ndarray | None = None  # weighted sum of engaged products' unit vectors
    counts: dict[str, int] = field(default_factory=dict)  # events per action, not decayed

    def _decay(self, seconds: float) -> float:
        return 2.0 ** (-seconds / (self.half_life_days * 86400.0))

    def _rescale(self, factor: float) -> None:
        for weights in (self.brands, self.category_brands, self.categories, self.attributes, self.attribute_names,
                        self.products):
            for key in weights:
                weights[key] *= factor
        for name in _SCALARS:
            setattr(self, name, getattr(self, name) * factor)
        if self.embedding is not None:
            self.embedding *= factor

    def add(self, action: str, timestamp: float, product_id: str, facts: ProductFacts | None) -> None:
        """One event; an action that says nothing about taste only counts."""
        self.counts[action] = self.counts.get(action, 0) + 1
        weight = ACTION_WEIGHTS.get(action)
        if weight is None:
            return
        if self.at is None or timestamp >= self.at:
            if self.at is not None:
                self._rescale(self._decay(timestamp - self.at))
            self.at = timestamp
        else:
            weight *= self._decay(self.at - timestamp)
        self.evidence += weight
        self.products[product_id] = self.products.get(product_id, 0.0) + weight
        if facts is None:  # a product the index does not hold (deleted since): its taste is unknown
            return
        if facts.brand:
            self.brands[facts.brand] = self.brands.get(facts.brand, 0.0) + weight
            for level in category_levels(facts.category or ""):
                key = f"{level}|{facts.brand}"
                self.category_brands[key] = self.category_brands.get(key, 0.0) + weight
        for level in category_levels(facts.category or ""):
            self.categories[level] = self.categories.get(level, 0.0) + weight
        for name, value in facts.attributes.items():
            key = f"{name}={value}"
            self.attributes[key] = self.attributes.get(key, 0.0) + weight
            self.attribute_names[name] = self.attribute_names.get(name, 0.0) + weight
        if facts.price is not None and facts.price >= 0:
            log_price = math.log1p(facts.price)
            self.price_weight += weight
            self.log_price_sum += weight * log_price
            self.log_price_squares += weight * log_price * log_price
        if facts.relative_price is not None:
            self.premium_weight += weight
            self.premium_sum += weight * facts.relative_price
            self.premium_squares += weight * facts.relative_price * facts.relative_price
        if facts.vector is not None:
            vector = facts.vector.astype(np.float32) * weight
            self.embedding = vector if self.embedding is None else self.embedding + vector

    def evidence_at(self, now: float) -> float:
        return self.evidence * self._decay(max(0.0, now - self.at)) if self.at is not None else 0.0

    def price_band(self) -> tuple[float, float] | None:
        """The weighted mean and spread of log(1 + price) of what was engaged with."""
        return _band(self.price_weight, self.log_price_sum, self.log_price_squares)

    def premium_band(self) -> tuple[float, float] | None:
        """The same of the relative price: how dear, within their categories, the shopper buys."""
        return _band(self.premium_weight, self.premium_sum, self.premium_squares)

    def shares(self, weights: dict[str, float]) -> dict[str, float]:
        """Each value's weight over the evidence: 0-1, unchanged by decay."""
        return {k: w / self.evidence for k, w in weights.items()} if self.evidence > 0 else {}

    def attribute_shares(self) -> dict[str, float]:
        """`name=value` over all weight on `name`: how decided the shopper is about it."""
        return {k: w / self.attribute_names[k.split("=", 1)[0]] for k, w in self.attributes.items()}

    def unit_embedding(self) -> np.ndarray | None:
        if self.embedding is None:
            return None
        norm = float(np.linalg.norm(self.embedding))
        return self.embedding / norm if norm > 0 else None

    def merge(self, other: Profile) -> None:
        """Fold another profile (a session's, at login) into this one."""
        if other.at is not None and (self.at is None or other.at > self.at):
            if self.at is not None:
                self._rescale(self._decay(other.at - self.at))
            self.at = other.at
        factor = self._decay(self.at - other.at) if other.at is not None and self.at is not None else 0.0
        for mine, theirs in ((self.brands, other.brands), (self.category_brands, other.category_brands),
                             (self.categories, other.categories),
                             (self.attributes, other.attributes), (self.attribute_names, other.attribute_names),
                             (self.products, other.products)):
            for key, weight in theirs.items():
                mine[key] = mine.get(key, 0.0) + weight * factor
        for name in _SCALARS:
            setattr(self, name, getattr(self, name) + getattr(other, name) * factor)
        if other.embedding is not None:
            scaled = other.embedding * factor
            self.embedding = scaled if self.embedding is None else self.embedding + scaled
        for action, n in other.counts.items():
            self.counts[action] = self.counts.get(action, 0) + n

    def to_json(self, now: float, top: int = 20) -> dict[str, Any]:
        """What personalization uses, readable by a person: weights as they count now."""
        decay = self._decay(max(0.0, now - self.at)) if self.at is not None else 0.0

        def ranked(weights: dict[str, float]) -> list[dict[str, Any]]:
            best = sorted(weights.items(), key=lambda kv: -kv[1])[:top]
            return [{"value": k, "weight": round(w * decay, 4)} for k, w in best]

        band = self.price_band()
        return {
            "half_life_days": self.half_life_days,
            "evidence": round(self.evidence * decay, 4),
            "event_counts": dict(sorted(self.counts.items())),
            "last_update": self.at,
            "brands": ranked(self.brands),
            "categories": ranked(self.categories),
            "attributes": ranked(self.attributes),
            "products": ranked(self.products),
            "price_band": None if band is None else {
                "typical": round(math.expm1(band[0]), 2), "low": round(math.expm1(max(0.0, band[0] - band[1])), 2),
                "high": round(math.expm1(band[0] + band[1]), 2)},
            "has_embedding": self.embedding is not None,
        }


def dump_profile(profile: Profile) -> tuple[str, bytes | None]:
    """(the weights as JSON, the embedding as float32 bytes): a profile's stored form."""
    state = {name: getattr(profile, name) for name in (
        "half_life_days", "at", "brands", "category_brands", "categories", "attributes", "attribute_names",
        "products", *_SCALARS, "counts")}
    embedding = None if profile.embedding is None else profile.embedding.astype(np.float32).tobytes()
    return orjson.dumps(state).decode(), embedding


def load_profile(state: str, embedding: bytes | None) -> Profile:
    profile = Profile(**orjson.loads(state))
    profile.embedding = None if embedding is None else np.frombuffer(embedding, dtype=np.float32).copy()
    return profile
