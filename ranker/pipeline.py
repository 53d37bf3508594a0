"""The search path, as named stages in order. The server, training, evaluation and the
benches all run this one pipeline.

    correct      request -> the searched text                     ranker/spelling.py
    recall       text -> BM25 and vector hits (or the backend's    ranker/recall.py
                 own hybrid search)
    fuse         hits -> candidates, best first                   ranker/recall.py
    rerank       candidates -> candidates (the learned model)     ranker/rerank.py
    personalize  candidates -> candidates (the shopper's profile)  ranker/personalize.py
    sort         candidates -> candidates (price, rating)          ranker/sorting.py
    merchandise  candidates -> candidates (merchandising rules)   ranker/merchandising.py
    page         candidates -> the requested slice, with products  here
    facets       hits -> the total and the facets                 ranker/facets.py

The four ranking stages share one signature (`ranker.stages.RankingStage`); the rules
come last, so no later stage can move a pin. What a search recalls is planned once per
request (`plan`): the recall window, how deep the model re-ranks, which encoder embeds
the query. Each stage's milliseconds are kept in the search's context (`timings=true`).
"""

from __future__ import annotations

import time
import uuid
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, TypeVar

import numpy as np

from indexer import settings
from indexer.store.base import MatchSummary, SearchReader, TextQuery
from ranker.candidates import Candidate
from ranker.facets import FacetsStage, shape_facets
from ranker.feature_log import FeatureLog
from ranker.fusion import FusionConfig
from ranker.interleave import Interleaving, team_draft
from ranker.merchandising import MerchandiseStage
from ranker.no_results import no_results_suggestions
from ranker.personalize import PersonalizeStage, ProfileSource
from ranker.recall import MIN_RECALL_WINDOW, FuseStage, RecallStage, bm25_text
from ranker.request import SearchRequest, SearchResponse
from ranker.rerank import LearnedRanker, RerankStage
from ranker.rules.engine import RuleBook, hidden_filters, plan, required_filters
from ranker.sorting import SortStage
from ranker.spelling import CorrectStage, QueryCorrector
from ranker.stages import Matching, QueryEmbedder, RankingStage, Recalled, SearchContext, Unchanged
from ranker.suggest import Suggester
from ranker.understanding import query_understanding, understood_suggestions

STAGES = ("correct", "recall", "fuse", "rerank", "personalize", "sort", "merchandise", "page", "facets")
RESULT_FIELDS = ("id", "title", "brand", "category", "price", "currency", "in_stock", "rating",
                 "review_count", "image_url", "attributes")

T = TypeVar("T")


@dataclass
class Page:
    candidates: list[Candidate]  # the requested slice
    results: list[dict[str, Any]]  # the same, as the API shows each product


class PageStage:
    """The requested slice of the candidates, with their products."""

    name = "page"

    def __init__(self, reader: SearchReader):
        self.reader = reader

    def __call__(self, search: SearchContext, candidates: list[Candidate]) -> Page:
        request = search.request
        page = candidates[request.offset : request.offset + request.k]
        products = {p["id"]: p for p in self.reader.products([c.id for c in page])}
        results = []
        for candidate in page:
            product = products.get(candidate.id)
            if product is None:  # deleted since recall (a cluster upsert between two requests)
                continue
            item = {name: product[name] for name in RESULT_FIELDS if name in product}
            item["score"] = round(candidate.score, 6)
            if search.request.explain:
                item["explain"] = candidate.explain()
                if search.query_rules:  # the search's own rules first: they acted before recall
                    item["explain"]["rules"] = search.query_rules + item["explain"].get("rules", [])
            results.append(item)
        return Page(page, results)


@dataclass(frozen=True)
class PersonalSettings:
    """The personalize stage's gate and prior (indexer.settings reads them for serving)."""

    min_evidence: float = 1.0
    prior_strength: float = 0.5


@dataclass(frozen=True)
class InterleaveWith:
    """The candidate model's own pipeline, and the share of searches that interleave with it."""

    pipeline: SearchPipeline
    share: float

    @property
    def version(self) -> str:
        assert self.pipeline.ranker is not None
        return self.pipeline.ranker.version

    def sampled(self, query_id: str) -> bool:
        return zlib.crc32(query_id.encode()) % 10_000 < self.share * 10_000


@dataclass
class Ranked:
    """The stages up to and including the ranking stages, for one request."""

    search: SearchContext
    recalled: Recalled
    candidates: list[Candidate]


def touched(search: SearchContext, page: Sequence[Candidate]) -> dict[str, list[str]]:
    """Rule id -> the shown products it acted on (a query rule: all of them), for the record."""
    out: dict[str, list[str]] = {}
    for entry in search.query_rules:
        out[entry["rule"]] = [c.id for c in page]
    for c in page:
        for entry in c.rules or ():
            if "lost_to" not in entry and not entry.get("removed"):
                out.setdefault(entry["rule"], []).append(c.id)
    for rule in search.rules:  # matched, but moved nothing shown: the search still met it
        out.setdefault(rule.id, [])
    return out


def _timed(search: SearchContext, name: str, stage: Callable[..., T], *args: Any) -> T:
    started = time.perf_counter()
    out = stage(search, *args)
    search.timings[name] = (time.perf_counter() - started) * 1000
    return out


class SearchPipeline:
    def __init__(self, reader: SearchReader, embedder: QueryEmbedder, *, ranker: LearnedRanker | None = None,
                 corrector: QueryCorrector | None = None, fusion: FusionConfig | None = None,
                 feature_log: FeatureLog | None = None, recall_window: int = MIN_RECALL_WINDOW,
                 disabled: Sequence[str] = (), profiles: ProfileSource | None = None,
                 personal: PersonalSettings | None = None, interleave: InterleaveWith | None = None,
                 rules: Callable[[], RuleBook] | None = None, suggester: Suggester | None = None,
                 synonyms_in_encoder: bool = False, matching: Matching | None = None,
                 understand: bool = True):
        """`recall_window`: candidates from each side when no model re-ranks (a model
        recalls as deep as it re-ranks). `disabled`: ranking stages to leave out (an
        evaluation measuring what each one adds). `profiles`: where shoppers' profiles
        are read (None: every search is anonymous). `interleave`: a candidate model's
        pipeline to interleave with for a share of searches (ranker/interleave.py). `rules`:
        the merchandising rules in force (ranker/rules/live.py; None: no rules). `suggester`:
        type-ahead and "did you mean" (ranker/suggest.py; None: neither). `synonyms_in_encoder`:
        the words synonym rules add go to the query encoder too, not only to BM25
        (docs/merchandising.md has the measurement that chose the default). `matching`: how
        well a product must match to be in the matching set (None: as the settings say).
        `understand`: read the catalog values the query names (ranker/understanding.py)."""
        self.matching = matching or Matching(settings.minimum_should_match(), settings.vector_threshold(),
                                             settings.match_relax_below())
        self.understanding = query_understanding(reader) if understand else None
        self.suggester = suggester
        self.interleave = interleave
        self.rules = rules
        self.disabled = frozenset(disabled)
        unknown = set(disabled) - {"rerank", "personalize", "merchandise"}
        if unknown:
            raise ValueError(f"only ranking stages can be left out, not {', '.join(sorted(unknown))}")
        self.reader = reader
        self.embedder = embedder
        self.ranker = None if "rerank" in disabled else ranker
        self.corrector = corrector
        self.fusion = fusion or FusionConfig()
        self.feature_log = feature_log
        self.recall_window = recall_window
        self.correct = CorrectStage(corrector)
        self.recall = RecallStage(reader, synonyms_in_encoder)
        self.fuse = FuseStage()
        personal = personal or PersonalSettings()
        self.personalize = PersonalizeStage(profiles, self.ranker, reader, min_evidence=personal.min_evidence,
                                            prior_strength=personal.prior_strength)
        ranking: list[RankingStage] = [RerankStage(self.ranker), self.personalize, SortStage(reader),
                                          MerchandiseStage(reader)]
        self.ranking = [Unchanged(s.name) if s.name in disabled else s for s in ranking]
        self.page = PageStage(reader)
        self.facets = FacetsStage(reader)

    @property
    def generation(self) -> str:
        return self.reader.generation

    def plan(self, request: SearchRequest) -> SearchContext:
        """A model re-ranks hybrid searches as deep as it was trained (and recall goes as
        deep), with its own tuned query encoder; `rerank=false` is recall exactly as
        without a model."""
        ranker = self.ranker
        depth = ranker.depth if ranker is not None and request.rerank and request.mode == "hybrid" else 0
        embedder = (ranker.query_encoder if ranker is not None and depth else None) or self.embedder
        return SearchContext(request, uuid.uuid4().hex, request.fusion or self.fusion,
                             window=max(self.recall_window, depth), rerank_depth=depth, embedder=embedder,
                             matching=self.matching)

    def searched_text(self, query: str) -> str:
        """What the correct stage makes of `query`."""
        return self.correct(self.plan(SearchRequest(query)))

    def rank(self, request: SearchRequest, vector: np.ndarray | None = None, rules: RuleBook | None = None) -> Ranked:
        """Every stage up to the page: the whole ordered candidate list. `vector` replaces
        the query's embedding (training gives each query a vector from an encoder that
        never saw it). `rules`: instead of the rules in force (a preview's drafts)."""
        search = self.plan(request)
        search.text = _timed(search, "correct", self.correct)
        book = rules if rules is not None else self.rules() if self.rules is not None else None
        if book is not None and book.rules and "merchandise" not in self.disabled:
            search.rules = book.matching(request.query, request.filters.category, time.time())
            hidden, forced = hidden_filters(search.rules), required_filters(search.rules)
            if hidden or forced:  # inside recall: totals and facets count only what can be shown
                search.request = replace(request, filters=replace(
                    request.filters, excluded=request.filters.excluded + hidden,
                    required=request.filters.required + forced))
            query = plan(search.rules, search.text)
            search.text, search.bm25_extra, search.redirect = query.text, query.bm25_extra, query.redirect
            search.query_rules = query.applied
        if self.understanding is not None and request.mode != "vector":
            with search.timing("correct.understand"):
                search.understood = self.understanding(search.text)
        search.vector = vector
        recalled = _timed(search, "recall", self.recall)
        candidates = _timed(search, "fuse", self.fuse, recalled)
        for stage in self.ranking:
            candidates = _timed(search, stage.name, stage, candidates)
        return Ranked(search, recalled, candidates)

    def search(self, request: SearchRequest, rules: RuleBook | None = None) -> SearchResponse:
        started = time.perf_counter()
        ranked = self.rank(request, rules=rules)
        search = ranked.search
        candidates, teams = ranked.candidates, None
        if self.interleave is not None and self.ranker is not None and self.interleave.sampled(search.query_id):
            other = self.interleave.pipeline.rank(request)
            candidates, teams = team_draft(candidates, other.candidates, search.query_id)
        page = _timed(search, "page", self.page, candidates)
        summary: MatchSummary = _timed(search, "facets", self.facets, ranked.recalled)
        self._log_features(search, page.candidates)
        did_you_mean = self._did_you_mean(search, ranked.recalled)
        suggestions = (no_results_suggestions(self.reader, search.text, search.request.filters,
                                              self.matching.minimum_should_match,
                                              self.corrector.counts if self.corrector else {}, did_you_mean)
                       if summary.total == 0 and request.mode != "vector" else [])
        return SearchResponse(
            did_you_mean=did_you_mean,
            suggestions=suggestions,
            understood=understood_suggestions(search.understood, request.filters),
            query=request.query,
            total=summary.total,
            results=page.results,
            facets=shape_facets(summary.facets, request.filters, self.reader.definition.facets),
            took_ms=(time.perf_counter() - started) * 1000,
            generation=self.reader.generation,
            query_id=search.query_id,
            corrected_query=search.corrected_query,
            redirect=search.redirect,
            rules=touched(search, page.candidates),
            timings=search.timings if request.timings else None,
            interleaving=None if teams is None or self.interleave is None or self.ranker is None else Interleaving(
                search.query_id, self.ranker.version, self.interleave.version,
                {c.id: teams[c.id] for c in page.candidates}),
        )

    def _did_you_mean(self, search: SearchContext, recalled: Recalled) -> str | None:
        """Offered when the text side matched nothing (the results are the vector side's guesses)."""
        request = search.request
        if self.suggester is None or not request.correct or request.mode == "vector" or recalled.bm25:
            return None
        filters = request.filters
        if recalled.fused is not None:  # the cluster fused server-side: did the text match?
            if recalled.summary is not None and recalled.summary.total > search.window:
                return None  # more matches than the vector side can hold: some matched by text
            if self.reader.bm25(bm25_text(search), 1, filters):
                return None
        msm = search.matching.minimum_should_match
        return self.suggester.did_you_mean(
            search.text, lambda text: bool(self.reader.bm25(TextQuery(text, (), msm), 1, filters)))

    def _log_features(self, search: SearchContext, page: list[Candidate]) -> None:
        if self.feature_log is None or not page or page[0].feature_row is None or not self.feature_log.sampled():
            return
        assert self.ranker is not None
        self.feature_log.record(search.query_id, search.request.query, self.reader.generation, self.ranker.version,
                                asdict(search.request.filters), [{"id": c.id, "features": c.features()} for c in page],
                                corrected_query=search.corrected_query)
