"""What a server process answers from, swapped without a restart, on either backend.

One mechanism for everything that can change under a running server: the index (a new
generation, an alias moved, an upsert that added words to the dictionary) and the
learned model (a new version in DATA/rankers). A request checks the backend's cheap
serving stamp (a stat call on the embedded backend; on OpenSearch at most every few
seconds) and the rankers directory. When something changed, the new state is loaded on
a background thread while requests keep being answered from the old one; the swap is one
reference assignment, so no request ever sees half of it.

The index and the model fail separately: a model that does not load is logged once and
skipped — searches keep the last model that loaded, rebuilt over the new index when the
index changed, or recall order — and never keeps a new generation from being served.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path

import faiss

from indexer import settings
from indexer.backends import Backend
from indexer.encoder import TextEncoder
from indexer.store.base import BackendUnavailable, GenerationError, SearchReader
from ranker.events.contract import ShopperStore
from ranker.events.stores import open_shopper_store
from ranker.feature_log import FeatureLog
from ranker.features.product_table import ProductTable
from ranker.features.sources import feature_source, product_table
from ranker.fusion import FusionConfig
from ranker.pipeline import InterleaveWith, PersonalSettings, SearchPipeline
from ranker.rerank import LearnedRanker, latest_model, model_path
from ranker.rules.live import LiveRules
from ranker.rules.stores import open_rule_store
from ranker.spelling import QueryCorrector, query_corrector
from ranker.suggest import PopularQueries, Suggester

log = logging.getLogger(__name__)

RECONNECT_SECONDS = 2.0  # a backend that could not be reached is tried again at most this often


class NoIndex(RuntimeError):
    """Nothing to serve. `public` is what a client is told; the exception's own message,
    with paths and causes, goes to the log."""

    def __init__(self, detail: str, public: str):
        super().__init__(detail)
        self.public = public


class ShippedEncoders:
    """One single-threaded encoder of the shipped model per variant, kept for the life of
    the worker (an index's vectors are of one variant)."""

    def __init__(self, models_dir: Path):
        self.models_dir = models_dir
        self._loaded: dict[str, TextEncoder] = {}

    def get(self, variant: str) -> TextEncoder:
        if variant not in self._loaded:
            self._loaded[variant] = TextEncoder(self.models_dir, variant, threads=1)
        return self._loaded[variant]


@dataclass(frozen=True)
class Stamp:
    index: Hashable
    model: tuple[str, int] | None  # the newest model file's name, and when the rankers directory changed


@dataclass(frozen=True)
class Loaded:
    stamp: Stamp
    reader: SearchReader
    corrector: QueryCorrector | None
    table: ProductTable | None  # per-product feature data, built once per generation when a model needs it
    ranker: LearnedRanker | None
    pipeline: SearchPipeline


class ServingState:
    def __init__(self, backend: Backend, fusion: FusionConfig | None = None, models_dir: Path | None = None):
        faiss.omp_set_num_threads(1)  # one thread per request; scale with worker processes
        self.backend = backend
        self.fusion = fusion or FusionConfig()
        self._encoders = ShippedEncoders(models_dir or settings.models_dir(backend.data_dir))
        self._feature_log = FeatureLog.from_env(backend.data_dir)
        # Shopper events and profiles, shared by every worker; the pipeline reads profiles from it.
        self.events: ShopperStore = open_shopper_store(backend)
        # Merchandising rules, re-read by every worker within a second of a change.
        self.rule_store = open_rule_store(backend)
        self.rules = LiveRules(self.rule_store)
        # Past queries enough shoppers searched, for type-ahead and "did you mean".
        self.popular = PopularQueries(self.events, settings.suggest_refresh_seconds())
        self._personal = PersonalSettings(settings.personal_min_evidence(), settings.personal_prior_strength())
        self._share = settings.interleave_share()
        self._candidate = settings.interleave_candidate() if self._share > 0 else None
        self._current: Loaded | None = None
        self._failed: Stamp | None = None  # the stamp whose index did not load
        self._failure = ""
        self._bad_models: set[tuple[str, int]] = set()  # logged once, not retried
        self._listed: tuple[int, tuple[str, int] | None] | None = None  # rankers dir mtime -> model stamp
        self._checked_at = -float("inf")
        self._unreachable_at = -float("inf")
        self._unreachable: BackendUnavailable | None = None
        self._lock = threading.Lock()
        self._loading = False
        with contextlib.suppress(NoIndex, BackendUnavailable):  # answered as 503 until there is an index
            self.pipeline()  # the first load is synchronous: a worker starts ready

    # --- what changed ------------------------------------------------------------------

    def _model_stamp(self) -> tuple[str, int] | None:
        """The newest model file's name and the rankers directory's mtime: `train` writes
        every file by rename, so the directory changes whenever a version appears. Listed
        only when the directory changed (one stat call per request otherwise)."""
        try:
            changed = os.stat(self.backend.data_dir / "rankers").st_mtime_ns
        except FileNotFoundError:
            return None
        if self._listed is None or self._listed[0] != changed:
            model = latest_model(self.backend.data_dir, excluding=self._candidate)
            self._listed = (changed, None if model is None else (model.name, changed))
        return self._listed[1]

    def _stamp(self) -> Stamp | None:
        index = self.backend.serving_stamp()
        return None if index is None else Stamp(index, self._model_stamp())

    # --- loading -----------------------------------------------------------------------

    def _load_ranker(self, reader: SearchReader, table: ProductTable | None, model: tuple[str, int] | None,
                     previous: LearnedRanker | None, same_index: bool) -> LearnedRanker | None:
        """The newest model; if it does not load, the last one that did (rebuilt over a new
        index), else none: recall order."""
        if model is None:
            return None
        newest = self.backend.data_dir / "rankers" / model[0]
        if model not in self._bad_models:
            ranker = self._try_ranker(newest, reader, table, model)
            if ranker is not None:
                return ranker
        if previous is None or same_index:
            return previous
        if previous.path == newest:  # the file it came from was rewritten and no longer loads
            return None
        return self._try_ranker(previous.path, reader, table, None)

    def _try_ranker(self, path: Path, reader: SearchReader, table: ProductTable | None,
                    stamp: tuple[str, int] | None) -> LearnedRanker | None:
        try:
            return LearnedRanker(path, feature_source(reader, table), reader.encoder_variant)
        except Exception as exc:  # a broken model file can raise anything from its loaders
            if stamp is not None:
                self._bad_models.add(stamp)
            log.error("event=model_load_failed model=%s error=%r", path.name, str(exc))
            return None

    def _interleave_with(self, reader: SearchReader, table: ProductTable | None,
                         corrector: QueryCorrector | None) -> InterleaveWith | None:
        """The candidate model's pipeline, when interleaving is asked for and it loads."""
        if self._candidate is None:
            return None
        path = model_path(self.backend.data_dir, self._candidate)
        ranker = self._try_ranker(path, reader, table, None) if path.exists() else None
        if ranker is None:
            log.error("event=interleave_candidate_missing version=%s", self._candidate)
            return None
        candidate = SearchPipeline(reader, self._encoders.get(reader.encoder_variant), ranker=ranker,
                                   corrector=corrector, fusion=self.fusion, profiles=self.events,
                                   personal=self._personal, rules=self.rules.book)
        return InterleaveWith(candidate, self._share)

    def _load(self, stamp: Stamp) -> None:
        current = self._current
        try:
            same_index = current is not None and current.stamp.index == stamp.index
            if current is not None and same_index:
                reader, corrector, table = current.reader, current.corrector, current.table
            else:
                reader = self.backend.reader()
                corrector, table = query_corrector(reader), None
            if stamp.model is not None and table is None:
                table = product_table(reader)
            previous = current.ranker if current is not None else None
            if current is not None and same_index and current.stamp.model == stamp.model:
                ranker = previous
            else:
                ranker = self._load_ranker(reader, table, stamp.model, previous, same_index)
            pipeline = SearchPipeline(reader, self._encoders.get(reader.encoder_variant), ranker=ranker,
                                      corrector=corrector, fusion=self.fusion, feature_log=self._feature_log,
                                      profiles=self.events, personal=self._personal, rules=self.rules.book,
                                      interleave=self._interleave_with(reader, table, corrector),
                                      suggester=Suggester(corrector.counts if corrector else {}, self.popular,
                                                          corrector))
            pipeline.personalize.prepare()  # on the loading thread, before the swap
            self._current = Loaded(stamp, reader, corrector, table, ranker, pipeline)
            self._failed = None
            log.info("event=serving_loaded generation=%s ranker=%s", reader.generation,
                     ranker.version if ranker else None)
        except BackendUnavailable as exc:  # not the index's fault: tried again at the next check
            self._unreachable_at, self._unreachable = time.monotonic(), exc
            log.warning("event=backend_unavailable error=%r", str(exc))
        except (GenerationError, OSError, ValueError, RuntimeError) as exc:
            self._failed, self._failure = stamp, str(exc)
            log.error("event=generation_load_failed error=%r", str(exc))
        finally:
            with self._lock:
                self._loading = False

    # --- per request -------------------------------------------------------------------

    def _check(self) -> None:
        now = time.monotonic()
        if self._current is None and now - self._unreachable_at < RECONNECT_SECONDS and self._unreachable:
            raise self._unreachable
        if now - self._checked_at < self.backend.refresh_seconds:
            return
        try:
            stamp = self._stamp()
        except BackendUnavailable as exc:
            self._unreachable_at, self._unreachable = now, exc
            if self._current is None:
                raise
            return  # keep answering from what is loaded; its own requests say whether the cluster is back
        self._checked_at, self._unreachable = now, None
        current = self._current
        if stamp is None or (current is not None and stamp == current.stamp) or stamp == self._failed:
            return
        with self._lock:
            start = not self._loading
            self._loading = True
        if not start:
            return
        if current is None:
            self._load(stamp)
        else:
            threading.Thread(target=self._load, args=(stamp,), daemon=True).start()

    def pipeline(self) -> SearchPipeline:
        self._check()
        current = self._current
        if current is None:
            if self._failed is not None:
                raise NoIndex(f"the index in {self.backend.data_dir} could not be loaded: {self._failure}",
                              "the index could not be loaded; the server log says why")
            raise NoIndex(f"no index in {self.backend.data_dir} yet",
                          "no index yet: run `python -m indexer reindex --catalog FILE`")
        return current.pipeline
