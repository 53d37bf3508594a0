"""Training rows from the shop's own event log (`python -m ranker train --events`).

Each logged search is one group: the products it showed, in the order shown, labelled by
what its shopper then did with them (click 1, add to cart 2, purchase 3; the best
action counts; no action 0). The personal features are the shopper's profile **as it
stood at that search**: events and searches are replayed in time order through the same
profile updates the live store makes (ranker.events.book), so no later event leaks into
an earlier search's features. The gate is the serving gate: a profile below the
evidence threshold gives the search no personal features, as serving would.

Every other feature is the rerank stage's own: recall is run again for the query (once
per distinct text) for each shown product's recall ranks, and `features_for` computes the
matrix. A product the index no longer holds is dropped from its group.

Position bias: a click at position 1 says less than one at position 8, because shoppers
look at position 1 far more often. XGBoost's unbiased LambdaMART estimates the
examination propensity of each position from the clicks while it fits (Hu et al., 2019),
which needs every group's rows in the order shown — they are. `naive` fits the same
trees on the raw clicks, for comparison.
"""

from __future__ import annotations

import heapq
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb
from tqdm import tqdm

from ranker.events.book import ProfileBook
from ranker.events.contract import Search, ShopperStore
from ranker.events.facts import facts_from
from ranker.events.profile import ProductFacts
from ranker.events.schema import GRADES, Event
from ranker.features.compute import CandidateRanks
from ranker.features.names import FEATURE_NAMES, PERSONAL_START
from ranker.features.personal import PersonalView, admitted
from ranker.features.sources import features_for
from ranker.request import SearchRequest
from ranker.training.fit import TrainingSet

# The logged lists are the top of one recall order: a model that learns from them which
# recall ranks get clicked never lifts a candidate from beyond the page it learned on,
# which is where most of what personalization can gain lies (python -m ranker
# evaluate-personalization measured it: docs/personalization.md). So event models are
# trained and served with the recall rank features at 0.
EVENTS_IGNORED = ("log_recall_rank", "log_bm25_rank", "log_vector_rank")
# Shown lists are short (a page), so every pair within the top of the list is used.
EVENT_PARAMS = {
    "objective": "rank:ndcg",
    "ndcg_exp_gain": False,
    "eval_metric": "ndcg@10",
    "tree_method": "hist",
    "max_depth": 4,
    "eta": 0.05,
    "min_child_weight": 5.0,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "lambdarank_pair_method": "topk",
    "lambdarank_num_pair_per_sample": 10,
}
# The position-bias estimate's regularisation: XGBoost's documentation and its code have
# disagreed on the default, so it is stated (2: the L2 norm of the Unbiased LambdaMART paper).
BIAS_NORM = 2.0
MAX_ROUNDS = 400
# Clicks are noisy labels and a fifth of the shoppers is a small validation set: its best
# iteration can come after a handful of trees by chance, so a fit keeps at least this many.
MIN_ROUNDS = 60
# The personal neural scorer's weights beside the personal trees, chosen on held-out shoppers.
PERSONAL_BLENDS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)


@dataclass
class LoggedGroup:
    query_id: str
    shopper: str
    text: str  # the query as the correct stage rewrote it
    ids: list[str]  # shown, first shown first
    labels: np.ndarray
    view: PersonalView | None  # the profile at the search (None: anonymous or below the gate)


class Replay:
    """Profiles rebuilt by replaying the log; each search reads its shopper's as it stood."""

    def __init__(self, half_life_days: float):
        self.book = ProfileBook(half_life_days=half_life_days)
        self.logins: dict[str, str] = {}  # session -> the user it logged in as

    def apply(self, event: Event, facts: Mapping[str, ProductFacts]) -> None:
        if event.user_id and event.session_id:
            self.logins.setdefault(event.session_id, event.user_id)
        self.book.apply(event, facts.get(event.object_id or ""))

    def view(self, search: Search, min_evidence: float) -> PersonalView | None:
        """The profile the serving store would have given this search (EventStore.profile)."""
        user = search.user_id or (self.logins.get(search.session_id) if search.session_id else None)
        shopper = user or search.session_id
        profile = self.book.get(shopper) if shopper else None
        if profile is None:
            return None
        view = PersonalView.of(profile, search.timestamp)
        return view if admitted(view, min_evidence) else None


def _labels(store: ShopperStore) -> dict[str, dict[str, int]]:
    """query id -> product -> the best grade of what was done with it after that search."""
    labels: dict[str, dict[str, int]] = {}
    for e in store.events():
        grade = GRADES.get(e.action)
        if grade and e.query_id and e.object_id:
            shown = labels.setdefault(e.query_id, {})
            shown[e.object_id] = max(grade, shown.get(e.object_id, 0))
    return labels


def replay_groups(store: ShopperStore, data: TrainingSet, *, min_evidence: float, personal: bool = True,
                  progress: bool = True) -> Iterator[LoggedGroup]:
    """Every logged search that led to at least one click, cart or purchase, in time order."""
    labels = _labels(store)
    facts_of = facts_from(data.reader)
    facts = facts_of(sorted({e.object_id for e in store.events() if e.object_id and e.action in GRADES}))
    replay = Replay(store.half_life_days)
    stream = heapq.merge(((s.timestamp, 0, s) for s in store.searches()),
                         ((e.timestamp, 1, e) for e in store.events()), key=lambda item: (item[0], item[1]))
    known = data.ord_by_id
    for _ts, _kind, item in tqdm(stream, desc="replay", unit="record", disable=None if progress else True,
                                leave=False):
        if isinstance(item, Event):
            replay.apply(item, facts)
            continue
        search = item
        grades = labels.get(search.query_id)
        if not grades:
            continue
        ids = [i for i in search.shown if i in known]
        if not ids or not any(grades.get(i) for i in ids):
            continue
        view = replay.view(search, min_evidence) if personal else None
        yield LoggedGroup(search.query_id, search.user_id or search.session_id or "", search.query, ids,
                          np.array([grades.get(i, 0) for i in ids], dtype=np.float32), view)


@dataclass
class EventRows:
    groups: list[LoggedGroup]
    features: list[np.ndarray]
    query_vectors: list[np.ndarray]  # each group's query embedding, as the rerank stage had it

    def anonymous(self) -> EventRows:
        """The same rows with the personal columns at 0: what a search without a profile sees."""
        blank = []
        for features in self.features:
            copy = features.copy()
            copy[:, PERSONAL_START:] = 0.0
            blank.append(copy)
        return EventRows(self.groups, blank, self.query_vectors)

    def matrix(self, which: Sequence[int]) -> xgb.DMatrix:
        matrix = xgb.DMatrix(np.vstack([self.features[i] for i in which]),
                             label=np.concatenate([self.groups[i].labels for i in which]))
        matrix.set_group([len(self.groups[i].ids) for i in which])
        return matrix


def build_event_rows(data: TrainingSet, groups: list[LoggedGroup], progress: bool = True,
                     ignored: Sequence[str] = ()) -> EventRows:
    """The rerank stage's features of each group's shown products (recall once per text)."""
    pipeline = data.pipeline()
    recalled: dict[str, tuple[str, np.ndarray, dict[str, tuple[int, int | None, int | None]]]] = {}
    features, query_vectors = [], []
    for group in tqdm(groups, desc="features", unit="search", disable=None if progress else True, leave=False):
        if group.text not in recalled:
            ranked = pipeline.rank(SearchRequest(group.text, k=1, rerank=False))
            assert ranked.search.vector is not None
            recalled[group.text] = (ranked.search.text, ranked.search.vector, {
                c.id: (n, c.bm25_rank, c.vector_rank) for n, c in enumerate(ranked.candidates, start=1)})
        text, vector, ranks = recalled[group.text]
        candidate_ranks = CandidateRanks(group.ids, *(np.array([_rank(ranks, p, i) for p in group.ids],
                                                               dtype=np.float64) for i in range(3)))
        matrix, _vectors = features_for(data.source, text, vector, candidate_ranks, group.view)
        matrix[:, [FEATURE_NAMES.index(name) for name in ignored]] = 0.0
        features.append(matrix)
        query_vectors.append(vector)
    return EventRows(groups, features, query_vectors)


def _rank(ranks: dict[str, tuple[int, int | None, int | None]], pid: str, which: int) -> float:
    """Recall, BM25 or vector rank of `pid` in its query's recall (NaN: missed)."""
    value = ranks[pid][which] if pid in ranks else None
    return np.nan if value is None else float(value)


def shopper_split(rows: EventRows, valid_share: float = 0.2) -> tuple[list[int], list[int]]:
    """Groups of a fifth of the shoppers for early stopping (a shopper's searches stay together)."""
    held = [zlib.crc32(g.shopper.encode()) % 100 < valid_share * 100 for g in rows.groups]
    valid = [i for i, h in enumerate(held) if h]
    train = [i for i, h in enumerate(held) if not h]
    if not valid or not train:
        return list(range(len(rows.groups))), []
    return train, valid


def fit_events(rows: EventRows, *, unbiased: bool = True, threads: int = 0) -> tuple[xgb.Booster, dict[str, Any]]:
    """Trees on the groups, early-stopped on a fifth of the shoppers (at least MIN_ROUNDS),
    then refit on all of them with that many trees. Returns the model and its parameters."""
    params = {**EVENT_PARAMS, "nthread": threads, "lambdarank_unbiased": unbiased}
    if unbiased:
        params["lambdarank_bias_norm"] = BIAS_NORM
    train, valid = shopper_split(rows)
    rounds = MAX_ROUNDS
    if valid:
        probe = xgb.train(params, rows.matrix(train), num_boost_round=MAX_ROUNDS,
                          evals=[(rows.matrix(valid), "valid")], early_stopping_rounds=50, verbose_eval=False)
        rounds = max(MIN_ROUNDS, probe.best_iteration + 1)
    model = xgb.train(params, rows.matrix(range(len(rows.groups))), num_boost_round=rounds)
    return model, {**params, "trees": rounds}


def judged_groups(data: TrainingSet, queries: Sequence[str], progress: bool = True) -> EventRows:
    """The judgments as groups of their own (features as `train` builds them, no profile;
    labels on the judgments' gain scale), to fit beside the logged searches."""
    from ranker.training.dataset import build_rows

    built = build_rows(data.row_builder(), data.judgments, queries, progress=progress)
    return EventRows([LoggedGroup(f"judged:{r.query}", f"judged:{r.query}", r.query, r.ids, r.labels, None)
                      for r in built], [r.features for r in built], [r.query_vector for r in built])


def combined(*parts: EventRows) -> EventRows:
    return EventRows([g for p in parts for g in p.groups], [f for p in parts for f in p.features],
                     [v for p in parts for v in p.query_vectors])


@dataclass(frozen=True)
class _NeuralRow:
    """A group as the neural scorer's batches read it (ranker.training.neural.QueryBatch)."""

    query: str
    query_vector: np.ndarray
    ids: list[str]
    ordinals: np.ndarray
    features: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class PersonalNeural:
    model: Any  # ranker.training.neural.NeuralScorer
    weight: float  # its share beside the personal trees: score = trees + weight * neural
    valid_ndcg: dict[float, float]  # weight -> nDCG@10 of the held-out shoppers' personal searches


def fit_personal_neural(rows: EventRows, data: TrainingSet, *, unbiased: bool = True,
                        progress: bool = True) -> PersonalNeural | None:
    """The neural scorer with its profile input (the shopper's profile embedding meets
    each product's), trained on the groups of four fifths of the shoppers and blended with
    trees fitted on the same four fifths at the weight that ranks the other fifth's
    personal searches best (0: the trees alone). None: no held-out shoppers to choose with."""
    import torch

    from ranker.metrics import ndcg_of_scores
    from ranker.training.neural import QueryBatch, predict_batch, train_neural

    train, valid = shopper_split(rows)
    personal_valid = [i for i in valid if rows.groups[i].view is not None]
    if not train or not personal_valid:
        return None
    vectors = data.catalog.vectors
    dim = vectors.shape[1]

    def batch(which: Sequence[int]) -> QueryBatch:
        picked = [rows.groups[i] for i in which]
        profiles = np.stack([g.view.embedding if g.view is not None and g.view.embedding is not None
                             else np.zeros(dim, np.float32) for g in picked])
        return QueryBatch.from_rows([_NeuralRow(g.text, rows.query_vectors[i], g.ids,
                                                np.array([data.ord_by_id[p] for p in g.ids], dtype=np.int64),
                                                rows.features[i], g.labels) for i, g in zip(which, picked, strict=True)],
                                    profiles)

    model = train_neural(batch(train), batch(personal_valid), vectors, progress=progress)
    held = batch(personal_valid)
    neural = predict_batch(model, held, torch.from_numpy(np.array(vectors, dtype=np.float32)))
    trees, _params = fit_events(EventRows([rows.groups[i] for i in train], [rows.features[i] for i in train],
                                          [rows.query_vectors[i] for i in train]), unbiased=unbiased)
    quality = {}
    for weight in PERSONAL_BLENDS:
        per_search = []
        for n, i in enumerate(personal_valid):
            tree_scores = trees.predict(xgb.DMatrix(rows.features[i]))
            count = len(rows.groups[i].ids)
            per_search.append(ndcg_of_scores(rows.groups[i].labels, tree_scores + weight * neural[n, :count]))
        quality[weight] = float(np.mean(per_search))
    best = max(PERSONAL_BLENDS, key=lambda w: (quality[w], -w))  # a tie goes to the smaller weight
    return PersonalNeural(model, best, quality)


def save_event_model(out_dir: Path, version: str, model: xgb.Booster, params: dict[str, Any], data: TrainingSet,
                     *, personal: tuple[xgb.Booster, dict[str, Any]] | None, extra: dict[str, Any],
                     personal_neural: PersonalNeural | None = None) -> Path:
    """One served version (ranker.training.saving: the tree file written last, by rename):
    `model` ranks every search, `personal` (its own file, written first) re-ranks the
    searches whose profile the gate admits, with `personal_neural` (ONNX, also first)
    blended in when its weight is above 0."""
    from ranker.training import variants
    from ranker.training.fit import Fitted, Settings
    from ranker.training.neural import export_onnx
    from ranker.training.saving import save_version

    more: dict[str, Any] = {"personal": personal is not None, "labels": "events"}
    if personal_neural is not None:
        more["personal_blend_ndcg"] = {str(w): round(q, 4) for w, q in personal_neural.valid_ndcg.items()}
        if personal_neural.weight > 0:
            out_dir.mkdir(parents=True, exist_ok=True)
            name = f"personal-neural-{version}.onnx"
            export_onnx(personal_neural.model, out_dir / name)
            more.update(personal_neural=name, personal_blend=personal_neural.weight)
    if personal is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        name = f"personal-{version}.json"
        tmp = out_dir / f".personal-{version}.tmp.json"
        personal[0].save_model(tmp)
        tmp.replace(out_dir / name)
        more.update(personal_trees=name, personal_tree_count=personal[1]["trees"])
    point = {"params": {k: v for k, v in params.items() if k in ("max_depth", "eta")}, "trees": params["trees"]}
    fitted = Fitted(Settings(variants.XGBOOST.key, {variants.XGBOOST.key: point}, 0.0, "events"), [],
                    {variants.XGBOOST.key: model})
    return save_version(out_dir, version, fitted, data, extra={**more, **extra})
