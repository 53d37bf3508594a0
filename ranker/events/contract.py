"""What every shopper store does, whichever keeps the data: the SQLite files in the data
directory (`ranker.events.store`, the default) or the cluster (`ranker.events.cluster_store`,
on the OpenSearch backend, so several web nodes share one log). `ranker.events.stores`
picks one; the server, training and the commands use only this.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ranker.events.profile import ProductFacts, Profile
from ranker.events.schema import Event
from ranker.interleave import Interleaving

FactsOf = Callable[[Sequence[str]], dict[str, ProductFacts]]  # product ids -> what the index knows of them


@dataclass(frozen=True)
class Added:
    accepted: int
    duplicates: int
    stored: tuple[Event, ...] = ()  # the accepted events


@dataclass(frozen=True)
class Search:
    """What a search showed, as the server recorded it."""

    query_id: str
    timestamp: float
    user_id: str | None
    session_id: str | None
    query: str
    shown: list[str]  # product ids, first shown first (position = index + 1)
    rules: dict[str, list[str]] = field(default_factory=dict)  # rule id -> the shown products it touched


class ShopperStore(Protocol):
    half_life_days: float

    def where(self) -> str:
        """Where the log lives, for messages (a path, or a cluster and its indices)."""
        ...

    def exists(self) -> bool:
        """Whether anything was ever stored (a command on an empty log says so)."""
        ...

    def add(self, events: Sequence[Event], facts_of: FactsOf | None = None) -> Added:
        """Store the events not stored before and update their shoppers' profiles; durable
        when it returns. `facts_of`: the products' brand, category, … (None: only stored)."""
        ...

    def profile(self, user_id: str | None, session_id: str | None = None) -> Profile | None:
        """The profile a search uses: the user's; for a session alone, the user it logged
        in as (if it did), else the session's own."""
        ...

    def record_search(self, search: Search, interleaving: Interleaving | None = None) -> None:
        """What a search showed and its interleaving draft, if any (never promised to a client)."""
        ...

    def interleavings(self) -> Iterator[Interleaving]: ...

    def clicked(self) -> dict[str, set[str]]:
        """query id -> the products clicked after that search."""
        ...

    def linked_sessions(self, user_id: str) -> list[str]:
        """Sessions that events tie to this user (an event that carried both ids)."""
        ...

    def erase(self, shopper_id: str) -> int:
        """Every event, search and profile of this shopper and of its linked sessions, gone
        from the store's files too. Returns the records deleted."""
        ...

    def delete_before(self, cutoff: float) -> int:
        """Retention: events and searches older than `cutoff`, and the profiles with no
        engagement since. Returns the records deleted."""
        ...

    def events(self, since: float = 0.0) -> Iterator[Event]:
        """Every stored event from `since`, in time order (ties in arrival order)."""
        ...

    def searches(self, since: float = 0.0) -> Iterator[Search]: ...

    def count(self) -> int: ...

    def close(self) -> None: ...
