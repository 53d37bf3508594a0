"""Type-ahead and "did you mean": from the catalog's own words and from what shoppers searched.

Past queries count only as an aggregate: a query is suggested once at least
`MIN_SHOPPERS` different shoppers searched it within `WINDOW_DAYS` and it showed
products, so a suggestion never reveals what one shopper typed (and erasing one shopper
cannot leave their words behind in it). The catalog side completes the last word typed
from the index's vocabulary (the spelling corrector's dictionary: both backends keep it),
most frequent first.

"Did you mean" is offered when the text side of a search matched nothing (the results are
then only the vector side's guesses): the closest popular query, else the query with each
unknown word replaced by the closest catalog word even at two edits, provided the
suggestion itself matches.
"""

from __future__ import annotations

import bisect
import difflib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from symspellpy import Verbosity

from ranker.events.contract import ShopperStore
from ranker.spelling import QueryCorrector

log = logging.getLogger(__name__)

MIN_SHOPPERS = 3
WINDOW_DAYS = 30
MAX_POPULAR = 5_000  # queries kept for suggestions
MIN_PREFIX = 2  # characters typed before anything is suggested
CLOSE_QUERY = 0.8  # difflib ratio for a popular query to be "meant"


def normalize(text: str) -> str:
    return " ".join(text.lower().split())


@dataclass(frozen=True)
class Suggestion:
    text: str
    source: str  # "query" (shoppers searched it) or "catalog" (the catalog's words)

    def to_json(self) -> dict[str, str]:
        return {"text": self.text, "source": self.source}


class PopularQueries:
    """The queries enough shoppers searched lately, most shoppers first. Read from the
    shopper store at most every `refresh_seconds` (in the background, so no search waits
    for it); 0 reads it on every call (tests)."""

    def __init__(self, store: ShopperStore, refresh_seconds: float = 300.0,
                 clock: Callable[[], float] = time.time):
        self.store = store
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self._queries: list[tuple[str, int]] = []
        self._read_at = -float("inf")
        self._lock = threading.Lock()
        self._reading = False

    def read(self) -> list[tuple[str, int]]:
        """(query, shoppers) from the store, now."""
        shoppers: dict[str, set[str]] = {}
        for search in self.store.searches(since=self.clock() - WINDOW_DAYS * 86_400):
            if not search.shown:
                continue
            who = search.user_id or search.session_id or "(anonymous)"
            shoppers.setdefault(normalize(search.query), set()).add(who)
        counted = [(q, len(s)) for q, s in shoppers.items() if len(s) >= MIN_SHOPPERS and q]
        return sorted(counted, key=lambda item: (-item[1], item[0]))[:MAX_POPULAR]

    def _refresh(self) -> None:
        try:
            self._queries = self.read()
        except Exception as exc:
            log.warning("event=popular_queries_failed error=%r", str(exc))
        finally:
            self._read_at = time.monotonic()
            with self._lock:
                self._reading = False

    def get(self) -> list[tuple[str, int]]:
        if self.refresh_seconds <= 0:
            return self.read()
        if time.monotonic() - self._read_at >= self.refresh_seconds:
            with self._lock:
                start, self._reading = not self._reading, True
            if start:
                threading.Thread(target=self._refresh, daemon=True).start()
        return self._queries


class Suggester:
    """Suggestions for one generation's vocabulary and the shop's popular queries."""

    def __init__(self, counts: Mapping[str, int], popular: PopularQueries | None,
                 corrector: QueryCorrector | None = None):
        words = [(w, c) for w, c in counts.items() if len(w) >= MIN_PREFIX and any(ch.isalpha() for ch in w)]
        words.sort()
        self._words = [w for w, _ in words]
        self._counts = [c for _, c in words]
        self.popular = popular
        self.corrector = corrector

    def _completions(self, partial: str, k: int) -> list[str]:
        """Catalog words starting with `partial`, most frequent first."""
        start = bisect.bisect_left(self._words, partial)
        end = bisect.bisect_left(self._words, partial + "\uffff")
        found = sorted(range(start, end), key=lambda i: (-self._counts[i], self._words[i]))
        return [self._words[i] for i in found if self._words[i] != partial][:k]

    def complete(self, typed: str, k: int = 8) -> list[Suggestion]:
        prefix = normalize(typed)
        if len(prefix) < MIN_PREFIX:
            return []
        out: list[Suggestion] = []
        seen: set[str] = set()
        for query, _shoppers in self.popular.get() if self.popular is not None else []:
            if query.startswith(prefix) and query != prefix and query not in seen:
                out.append(Suggestion(query, "query"))
                seen.add(query)
                if len(out) >= k:
                    return out
        if typed.endswith(" "):  # a word just finished: nothing of the catalog's to complete
            return out
        head, _, last = prefix.rpartition(" ")
        for word in self._completions(last, k):
            text = f"{head} {word}" if head else word
            if text not in seen:
                out.append(Suggestion(text, "catalog"))
                seen.add(text)
                if len(out) >= k:
                    break
        return out

    def did_you_mean(self, text: str, matches: Callable[[str], bool]) -> str | None:
        """A query like `text` that finds products by its words, or None."""
        typed = normalize(text)
        options: list[str] = []
        if self.popular is not None:
            options += difflib.get_close_matches(typed, [q for q, _ in self.popular.get()], n=3, cutoff=CLOSE_QUERY)
        fixed = self._respelled(typed)
        if fixed is not None:
            options.append(fixed)
        for option in dict.fromkeys(options):
            if option != typed and matches(option):
                return option
        return None

    def _respelled(self, typed: str) -> str | None:
        """Each word the catalog does not know -> its closest catalog word, two edits at most,
        whatever its length (the serving corrector is stricter: it rewrites unasked)."""
        if self.corrector is None:
            return None
        words: Sequence[str] = typed.split()
        out = []
        for word in words:
            if self.corrector.known(word):
                out.append(word)
                continue
            found = self.corrector.dictionary.lookup(word, Verbosity.CLOSEST, max_edit_distance=2,
                                                     transfer_casing=False)
            out.append(max(found, key=lambda s: s.count).term if found else word)
        respelled = " ".join(out)
        return respelled if respelled != typed else None
