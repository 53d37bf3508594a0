"""How events change profiles, shared by the live store and the training replay.

A click, cart or purchase is added to its shopper's profile; an impression is not (shown
is not chosen). When an event carries both a user id and a session id, the session has
logged in: the session's profile is folded into the user's and kept no longer.
"""

from __future__ import annotations

from collections.abc import Callable

from ranker.events.profile import DEFAULT_HALF_LIFE_DAYS, ProductFacts, Profile
from ranker.events.schema import IMPRESSION, Event


class ProfileBook:
    """Profiles being updated: read through `load` (None: the shopper has none yet) the
    first time each is touched, then held here; `changed` and `removed` say what to store."""

    def __init__(self, load: Callable[[str], Profile | None] = lambda shopper: None,
                 half_life_days: float = DEFAULT_HALF_LIFE_DAYS):
        self.load = load
        self.half_life_days = half_life_days
        self.profiles: dict[str, Profile | None] = {}
        self.changed: set[str] = set()
        self.removed: set[str] = set()

    def get(self, shopper: str) -> Profile | None:
        if shopper not in self.profiles:
            self.profiles[shopper] = None if shopper in self.removed else self.load(shopper)
        return self.profiles[shopper]

    def _own(self, shopper: str) -> Profile:
        profile = self.get(shopper)
        if profile is None:
            profile = self.profiles[shopper] = Profile(half_life_days=self.half_life_days)
        self.changed.add(shopper)
        self.removed.discard(shopper)
        return profile

    def apply(self, event: Event, facts: ProductFacts | None) -> None:
        if event.action == IMPRESSION:
            return
        if event.user_id and event.session_id:
            session = self.get(event.session_id)
            if session is not None:  # the session logs in: its tastes join the user's
                self._own(event.user_id).merge(session)
                self.profiles[event.session_id] = None
                self.changed.discard(event.session_id)
                self.removed.add(event.session_id)
        self._own(event.shopper).add(event.action, event.timestamp, event.object_id or "", facts)
