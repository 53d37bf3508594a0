"""The types the search pipeline's stages pass along (ranker/pipeline.py runs them).

Every stage reads the `SearchContext` of the search in progress and turns one typed
value into the next: the request into the searched text, the text into recalled hits,
hits into ranked candidates, candidates into a page, hits into a total and facets. The
ranking stages (re-rank, personalize, merchandising rules) share one signature,
`RankingStage`, so a new one is one class and one entry in the pipeline's stage list.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from indexer.store.base import Hit, MatchSummary
from ranker.candidates import Candidate
from ranker.features.compute import FeatureInputs
from ranker.features.personal import PersonalView
from ranker.fusion import FusionConfig
from ranker.request import SearchRequest
from ranker.understanding import Phrase


class QueryEmbedder(Protocol):
    """Anything that turns query text into a unit vector in the index's space."""

    def encode_query(self, text: str) -> np.ndarray: ...


@dataclass(frozen=True)
class Matching:
    """Which products are a search's matching set (what `total` and the facets count, and
    what recall may return): those with at least `minimum_should_match` of the query's
    words (OpenSearch's syntax; None: any one word), and the vector side's neighbours whose
    similarity (inner product of unit vectors) is at least `vector_threshold` (None: all
    of the recall window). When fewer than `relax_below` products match the words that
    precisely, the words naming no value count alone, then any one word (ranker.recall.relax).
    docs/understanding.md has the measurements behind the defaults."""

    minimum_should_match: str | None = None
    vector_threshold: float | None = None
    relax_below: int = 0  # fewer precise text matches than this: the search relaxes


@dataclass
class SearchContext:
    """One search in progress: what the pipeline planned, and what earlier stages found."""

    request: SearchRequest
    query_id: str
    fusion: FusionConfig
    window: int  # candidates recall takes from each side; fixed for a request, whatever page it asks
    rerank_depth: int  # fused candidates the learned model orders (0: none)
    embedder: QueryEmbedder
    text: str = ""  # the query as recall, features and counts see it (set by the correct stage)
    vector: np.ndarray | None = None  # the query's vector (set by recall; None in BM25 mode)
    timings: dict[str, float] = field(default_factory=dict)  # stage (or stage.step) -> milliseconds
    head: HeadFeatures | None = None  # what the rerank stage scored (set by it)
    personal: PersonalView | None = None  # the shopper's profile, when it changed this search
    rules: list[Any] = field(default_factory=list)  # the merchandising rules this search meets, in rule order
    bm25_extra: tuple[str, ...] = ()  # synonym words the BM25 side searches too (never the text features)
    redirect: str | None = None  # a redirect rule's URL
    query_rules: list[dict[str, Any]] = field(default_factory=list)  # what rewrite, synonym, redirect rules did
    matching: Matching = Matching()  # which products match well enough to count
    match_text: str | None = None  # the words matching counts, when recall relaxed it to the product words
    understood: list[Phrase] = field(default_factory=list)  # what the text names (ranker/understanding.py)

    @property
    def corrected_query(self) -> str | None:
        return self.text if self.text != self.request.query else None

    @contextmanager
    def timing(self, step: str) -> Iterator[None]:
        """A step inside a stage, kept as `stage.step` beside the stages' own times."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[step] = (time.perf_counter() - started) * 1000


@dataclass(frozen=True)
class HeadFeatures:
    """The re-ranked candidates' feature inputs and matrix (personal columns 0), kept so the
    personalize stage fills in only its own columns."""

    ids: list[str]
    inputs: FeatureInputs
    features: np.ndarray


@dataclass
class Recalled:
    """Recall's hits. `bm25` is the top `window` (deeper when a page lies beyond the window:
    results there continue in BM25 order); `vector` is the `window` nearest products of the
    whole catalog that pass the filters. A backend that fuses server-side also gives the
    fused candidates and the matching set's summary."""

    bm25: list[Hit]
    vector: list[Hit]
    fused: list[Candidate] | None = None
    summary: MatchSummary | None = None
    # (phrases naming values, the text matches with all of those values): all the query names, then each
    lifted: list[tuple[tuple[str, ...], list[Hit]]] = field(default_factory=list)


class RankingStage(Protocol):
    """Candidates in, candidates out, best first (re-rank, personalize, merchandising)."""

    name: str

    def __call__(self, search: SearchContext, candidates: list[Candidate]) -> list[Candidate]: ...


class Unchanged:
    """A ranking stage's default: the candidates as they came."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, search: SearchContext, candidates: list[Candidate]) -> list[Candidate]:
        return candidates
