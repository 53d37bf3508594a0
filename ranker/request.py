"""What a search is asked and what it answers: the types every caller of the search
pipeline (the HTTP API, training, evaluation, the benches) shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from indexer.store.base import Filters
from ranker.fusion import FusionConfig

MODES = ("hybrid", "bm25", "vector")
# A shopper id (user or session), on a search or an event: 1-128 printable characters.
MAX_ID_LENGTH = 128
PRINTABLE_ID = r"^[^\x00-\x1f\x7f]*[^ \t\n\v\f\r\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"


@dataclass(frozen=True)
class Shopper:
    """Who searches: `user_id` when given, else `session_id`; neither is an anonymous
    shopper. Carried through the pipeline for the personalization stage."""

    user_id: str | None = None
    session_id: str | None = None

    @property
    def key(self) -> str | None:
        return self.user_id or self.session_id


@dataclass(frozen=True)
class SearchRequest:
    query: str
    k: int = 10
    offset: int = 0
    filters: Filters = field(default_factory=Filters)
    mode: str = "hybrid"
    fusion: FusionConfig | None = None  # None: the pipeline's default
    explain: bool = False
    rerank: bool = True
    correct: bool = True  # rewrite words the catalog does not know (ranker/spelling.py)
    timings: bool = False  # report each stage's milliseconds
    shopper: Shopper = field(default_factory=Shopper)
    sort: str = "relevance"  # or price_asc, price_desc, rating (ranker/sorting.py)


@dataclass
class SearchResponse:
    query: str
    total: int
    results: list[dict[str, Any]]
    facets: dict[str, list[dict[str, Any]]]
    took_ms: float
    generation: str
    query_id: str  # unique per search; the id shopper events and the feature log join on
    corrected_query: str | None = None  # what was searched, when it differs from `query`
    timings: dict[str, float] | None = None  # stage -> milliseconds, when asked
    interleaving: Any = None  # a ranker.interleave.Interleaving when this search was interleaved (not shown)
    redirect: str | None = None  # a redirect rule's URL: the page goes there
    did_you_mean: str | None = None  # a query that finds products by its words, when this one found none
    rules: dict[str, list[str]] = field(default_factory=dict)  # rule id -> shown products it touched (recorded)
    understood: list[dict[str, Any]] = field(default_factory=list)  # catalog values the query names: {field, value, text}
    suggestions: list[dict[str, Any]] = field(default_factory=list)  # with no results: searches that find some

    def to_json(self) -> dict[str, Any]:
        out = {"query": self.query, "corrected_query": self.corrected_query, "total": self.total,
               "results": self.results, "facets": self.facets, "took_ms": round(self.took_ms, 2),
               "generation": self.generation, "query_id": self.query_id, "understood": self.understood,
               "suggestions": self.suggestions}
        if self.timings is not None:
            out["timings"] = {name: round(ms, 3) for name, ms in self.timings.items()}
        if self.redirect is not None:
            out["redirect"] = self.redirect
        if self.did_you_mean is not None:
            out["did_you_mean"] = self.did_you_mean
        return out
