"""The personalization stage: after the learned ranking, before merchandising rules.

It reads the shopper's profile (ranker/events: updated by every event as it arrives),
and a gate decides whether this search is personal at all: an anonymous shopper, an
unknown one, or a profile with less evidence than `min_evidence` leaves the order exactly
as the rerank stage made it — the same features, scores and order as a search without a
shopper, bit for bit.

A search the gate admits is re-ordered one of two ways:
- a version trained by `train --events` carries personal trees (meta `personal_trees`):
  they score the re-ranked head again with its personal columns filled in
  (ranker/features/personal.py); the version's main trees, which rank every other
  search, never saw a profile;
- otherwise a prior: each of the first `PRIOR_DEPTH` candidates keeps a rank-discounted
  score `-log2(1 + rank)` and gains `strength` times how well it fits the profile, so a
  shop gets personal results before it has logged enough to train (0 turns it off).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from indexer.store.base import BackendUnavailable, SearchReader
from ranker.candidates import Candidate
from ranker.events.profile import Profile
from ranker.features.names import PERSONAL_FEATURES, PERSONAL_START
from ranker.features.personal import PersonalTable, PersonalView, admitted
from ranker.rerank import LearnedRanker, assign, reorder
from ranker.stages import SearchContext

log = logging.getLogger(__name__)

PRIOR_DEPTH = 50
# How much each personal feature says in the prior (the cosine is taken relative to the
# head's median, since every candidate of one query is similar to the same profile).
PRIOR_WEIGHTS = {"personal_category_affinity": 0.5, "personal_brand_affinity": 0.5, "personal_brand_in_category": 1.0,
                 "personal_brand_in_department": 0.5,
                 "personal_attribute_affinity": 1.0, "personal_embedding_cosine": 2.0,
                 "personal_price_fit": 0.5, "personal_engaged": 0.5}
_PRIOR = np.array([PRIOR_WEIGHTS.get(name, 0.0) for name in PERSONAL_FEATURES], dtype=np.float64)
_COSINE = PERSONAL_FEATURES.index("personal_embedding_cosine")


class ProfileSource(Protocol):
    """Where profiles are read (a ranker.events.contract.ShopperStore; a replay in training)."""

    def profile(self, user_id: str | None, session_id: str | None = None) -> Profile | None: ...


class PersonalizeStage:
    name = "personalize"

    def __init__(self, profiles: ProfileSource | None, ranker: LearnedRanker | None, reader: SearchReader, *,
                 min_evidence: float = 1.0, prior_strength: float = 0.5):
        self.profiles = profiles
        self.ranker = ranker
        self.reader = reader
        self.min_evidence = min_evidence
        self.prior_strength = prior_strength

    def view(self, search: SearchContext) -> PersonalView | None:
        """The shopper's profile as features read it, if the gate admits it."""
        shopper = search.request.shopper
        if self.profiles is None or shopper.key is None:
            return None
        with search.timing("personalize.profile"):
            try:
                profile = self.profiles.profile(shopper.user_id, shopper.session_id)
            except BackendUnavailable as exc:  # the shopper store is down: the search goes on, anonymous
                log.warning("event=profile_unavailable error=%r", str(exc))
                return None
        if profile is None:
            return None
        view = PersonalView.of(profile, time.time())
        return view if admitted(view, self.min_evidence) else None

    def __call__(self, search: SearchContext, candidates: list[Candidate]) -> list[Candidate]:
        if not candidates:
            return candidates
        view = self.view(search)
        if view is None:
            return candidates
        if self.ranker is not None and self.ranker.personal:
            if search.head is None or search.vector is None:
                return candidates  # recall order (rerank=false, or BM25 mode): not the model's to change
            search.personal = view
            return self._learned(search, view, candidates)
        if self.prior_strength <= 0:
            return candidates
        search.personal = view
        return self._prior(search, view, candidates)

    def _learned(self, search: SearchContext, view: PersonalView, candidates: list[Candidate]) -> list[Candidate]:
        assert search.head is not None and search.vector is not None and self.ranker is not None
        head_features = search.head
        inputs = head_features.inputs
        n = len(head_features.ids)
        head, tail = candidates[:n], candidates[n:]
        position = {pid: i for i, pid in enumerate(head_features.ids)}
        order = np.array([position[c.id] for c in head], dtype=np.int64)  # the head as rerank sorted it
        features = head_features.features.copy()
        features[:, PERSONAL_START:] = inputs.table.personal.features(view, inputs.rows, inputs.vectors)
        features = features[order]
        vectors = None if inputs.vectors is None else inputs.vectors[order]
        with search.timing("personalize.models"):
            scored = self.ranker.score_personal(features, search.vector, vectors, view.embedding)
        assign(head, scored, features)
        return reorder(head, scored.scores, tail)

    @functools.cached_property
    def _catalog_table(self) -> tuple[PersonalTable, dict[str, int], np.ndarray] | None:
        """One table over the whole catalog, for a reader that holds it: the model's own
        when it has one, else built here (`prepare` builds it before a search needs it)."""
        if not self.reader.capabilities.local_catalog:
            return None
        catalog = self.reader.catalog()
        table = self.ranker.source.personal_table if self.ranker is not None else None
        if table is None:
            table = PersonalTable(catalog.products)
        return table, {pid: i for i, pid in enumerate(table.ids)}, catalog.vectors

    def prepare(self) -> None:
        """Build what the prior needs now (seconds on a large catalog), not in a shopper's search."""
        if self.profiles is not None and self.prior_strength > 0 and not (self.ranker and self.ranker.personal):
            _ = self._catalog_table

    def _fit(self, view: PersonalView, ids: Sequence[str]) -> np.ndarray:
        """The personal features of `ids` (on a cluster: the products and their vectors in
        one request)."""
        local = self._catalog_table
        if local is not None:
            table, row_of, vectors = local
            rows = np.array([row_of[i] for i in ids], dtype=np.int64)
            return table.features(view, rows, vectors[rows])
        found = self.reader.feature_documents("", list(ids))
        products = [found[i].product if i in found else {"id": i} for i in ids]
        dimension = self.reader.definition.dimension
        vectors = np.stack([found[i].vector if i in found else np.zeros(dimension, np.float32) for i in ids])
        return PersonalTable(products).features(view, np.arange(len(ids), dtype=np.int64), vectors)

    def _prior(self, search: SearchContext, view: PersonalView, candidates: list[Candidate]) -> list[Candidate]:
        head, tail = candidates[:PRIOR_DEPTH], candidates[PRIOR_DEPTH:]
        with search.timing("personalize.prior"):
            fit = self._fit(view, [c.id for c in head]).astype(np.float64)
        if view.embedding is not None:
            fit[:, _COSINE] -= float(np.median(fit[:, _COSINE]))
        discount = -np.log2(2.0 + np.arange(len(head), dtype=np.float64))  # -log2(1 + rank)
        scores = discount + self.prior_strength * (fit @ _PRIOR)
        for candidate, score in zip(head, scores.tolist(), strict=True):
            candidate.score = score
        return reorder(head, scores, tail)

