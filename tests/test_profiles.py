"""Profiles: time-decayed tastes, the same whatever order the events arrive in, and a
session's tastes folded into the user's at login."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ranker.events.profile import ProductFacts, Profile

DAY = 86400.0
OAK = ProductFacts("Acme", "Furniture > Tables", {"material": "oak", "color": "brown"}, 199.0,
                   np.array([1.0, 0.0], np.float32))
STEEL = ProductFacts("Steelco", "Furniture > Chairs", {"material": "steel"}, 49.0, np.array([0.0, 1.0], np.float32))


def test_a_weight_halves_every_half_life() -> None:
    profile = Profile(half_life_days=3.0)
    profile.add("click", 1000.0, "p1", OAK)
    assert profile.evidence_at(1000.0) == pytest.approx(1.0)
    assert profile.evidence_at(1000.0 + 3 * DAY) == pytest.approx(0.5)
    profile.add("click", 1000.0 + 3 * DAY, "p2", STEEL)  # the older click now counts half
    assert profile.shares(profile.brands) == pytest.approx({"Acme": 1 / 3, "Steelco": 2 / 3})


def test_late_events_give_the_same_profile() -> None:
    events = [("click", 0.0, "p1", OAK), ("purchase", 2 * DAY, "p2", STEEL), ("add_to_cart", DAY, "p1", OAK)]
    in_order, arrived = Profile(), Profile()
    for e in sorted(events, key=lambda e: e[1]):
        in_order.add(*e)
    for e in events:
        arrived.add(*e)
    assert arrived.brands == pytest.approx(in_order.brands)
    assert arrived.evidence == pytest.approx(in_order.evidence)
    assert np.allclose(arrived.embedding, in_order.embedding)


def test_tastes_cover_every_category_level_attributes_price_and_vectors() -> None:
    profile = Profile()
    profile.add("purchase", 10.0, "p1", OAK)
    profile.add("click", 10.0, "p2", STEEL)
    shares = profile.shares(profile.categories)
    assert shares["Furniture"] == pytest.approx(1.0)
    assert shares["Furniture > Tables"] == pytest.approx(5 / 6)  # a purchase weighs five clicks
    assert profile.attribute_shares()["material=oak"] == pytest.approx(5 / 6)
    assert profile.attribute_shares()["color=brown"] == pytest.approx(1.0)
    mean, spread = profile.price_band()  # type: ignore[misc]
    assert math.log1p(49.0) < mean < math.log1p(199.0) and spread > 0
    unit = profile.unit_embedding()
    assert unit is not None and unit[0] > unit[1] and np.linalg.norm(unit) == pytest.approx(1.0)


def test_actions_that_say_nothing_of_taste_only_count() -> None:
    profile = Profile()
    profile.add("impression", 10.0, "p1", OAK)
    profile.add("page_exit", 10.0, "p1", None)
    assert profile.evidence == 0 and profile.counts == {"impression": 1, "page_exit": 1}
    assert profile.to_json(10.0)["brands"] == []


def test_a_session_merged_at_login_counts_as_if_it_were_the_users() -> None:
    user, session, together = Profile(), Profile(), Profile()
    session.add("click", 0.0, "p1", OAK)
    user.add("purchase", DAY, "p2", STEEL)
    together.add("click", 0.0, "p1", OAK)
    together.add("purchase", DAY, "p2", STEEL)
    user.merge(session)
    assert user.brands == pytest.approx(together.brands)
    assert user.evidence == pytest.approx(together.evidence)
    assert user.counts == together.counts


def test_the_profile_reads_as_json() -> None:
    profile = Profile()
    profile.add("add_to_cart", 100.0, "p1", OAK)
    shown = profile.to_json(100.0)
    assert shown["brands"] == [{"value": "Acme", "weight": 3.0}]
    assert shown["event_counts"] == {"add_to_cart": 1} and shown["price_band"]["typical"] == pytest.approx(199.0)
