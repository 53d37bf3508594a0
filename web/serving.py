"""The generation a server process answers from, swapped without a restart.

Every request looks at the pointer file's (inode, mtime), a stat call of a few
microseconds. When it changes (reindex, upsert, delete, rollback), the new generation
is loaded on a background thread while requests keep being answered from the old one;
the swap is one reference assignment, so no request ever sees a half-loaded index.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss

from indexer.backends import backend_name, opensearch_reader
from indexer.encoder import TextEncoder
from indexer.generations import GenerationError, current_generation_dir, pointer_stamp
from indexer.mapping import load_definition
from indexer.store.base import BackendUnavailable
from indexer.store.embedded import EmbeddedReader
from ranker.feature_log import FeatureLog
from ranker.features import GenerationFeatures, ProductTable, RequestFeatures
from ranker.recall import FusionConfig, HybridSearcher
from ranker.rerank import LearnedRanker, latest_model
from ranker.spelling import QueryCorrector, query_corrector

log = logging.getLogger(__name__)


class NoIndex(RuntimeError):
    """Nothing to serve yet."""


RECONNECT_SECONDS = 2.0
REFRESH_SECONDS = 5.0


class QueryEncoders:
    """One single-threaded query encoder per variant, kept for the life of the worker."""

    def __init__(self, models_dir: Path):
        self.models_dir = models_dir
        self._loaded: dict[str, TextEncoder] = {}

    def get(self, variant: str) -> TextEncoder:
        if variant not in self._loaded:
            self._loaded[variant] = TextEncoder(self.models_dir, variant, threads=1)
        return self._loaded[variant]


class OpenSearchState:
    """Serving from a cluster: the alias swap is atomic on the server, so this only
    re-reads which index the alias names (for /healthz and the encoder variant) every few
    seconds, and reconnects by itself after the cluster was unreachable."""

    def __init__(self, data_dir: Path, models_dir: Path, fusion: FusionConfig | None = None):
        self.data_dir = data_dir  # learned models live in DATA/rankers on this backend too
        self.fusion = fusion or FusionConfig()
        self._encoders = QueryEncoders(models_dir)
        self._ranker: LearnedRanker | None = None
        self._failed_model: Path | None = None
        self._corrector: tuple[tuple[str, int], QueryCorrector | None] | None = None
        self._searcher: HybridSearcher | None = None
        self._client = None  # one connection pool for the life of the worker
        self._loaded_at = 0.0
        self._failed_at = 0.0
        self._failure = ""

    def searcher(self) -> HybridSearcher:
        now = time.monotonic()
        if self._searcher is None or now - self._loaded_at > REFRESH_SECONDS:
            if self._searcher is None and now - self._failed_at < RECONNECT_SECONDS:
                raise BackendUnavailable(self._failure)
            try:
                reader = opensearch_reader(self._client)
                self._client = reader.client
            except BackendUnavailable as exc:
                self._failed_at, self._failure = now, str(exc)
                self._searcher = None
                raise
            self._searcher = HybridSearcher(reader, self._encoders.get(reader.encoder_variant), self.fusion,
                                            self._current_ranker(reader), FeatureLog.from_env(self.data_dir),
                                            self._current_corrector(reader))
            self._loaded_at = now
        return self._searcher


    def _current_corrector(self, reader: Any) -> QueryCorrector | None:
        """Fetched and rebuilt only when the index or its dictionary changed (a reindex, an upsert)."""
        stamp = (reader.generation, reader.vocabulary_words)
        if self._corrector is None or self._corrector[0] != stamp:
            self._corrector = (stamp, query_corrector(reader))
        return self._corrector[1]

    def _current_ranker(self, reader: Any) -> LearnedRanker | None:
        """The newest model, loaded once; its feature source follows the refreshed reader.
        A model that does not load is logged once and skipped: searches keep the model they
        had (or recall order), as on the embedded backend, until a newer one is written."""
        model = latest_model(self.data_dir)
        source = RequestFeatures(reader, reader.analyze)
        if model is None:
            self._ranker = None
        elif (self._ranker is None or self._ranker.path != model) and model != self._failed_model:
            try:
                self._ranker = LearnedRanker(model, source)
            except (OSError, ValueError, RuntimeError) as exc:
                self._failed_model = model
                log.error("event=model_load_failed model=%s error=%r", model.name, str(exc))
        if self._ranker is not None:  # a kept model, too, reads from the refreshed reader
            self._ranker.source = source
        return self._ranker


def make_state(data_dir: Path, models_dir: Path, fusion: FusionConfig | None = None) -> ServingState | OpenSearchState:
    if backend_name() == "opensearch":
        return OpenSearchState(data_dir, models_dir, fusion)
    return ServingState(data_dir, models_dir, fusion)


Stamp = tuple[tuple[int, int], int]  # (pointer file inode+mtime, rankers directory mtime)


@dataclass(frozen=True)
class Loaded:
    stamp: Stamp
    searcher: HybridSearcher
    table: ProductTable | None  # ranking features' per-product data, built once per generation


def serving_stamp(data_dir: Path) -> Stamp | None:
    """Changes when a new generation is switched to or a new ranking model is saved."""
    pointer = pointer_stamp(data_dir)
    if pointer is None:
        return None
    try:
        rankers = os.stat(data_dir / "rankers").st_mtime_ns
    except FileNotFoundError:
        rankers = 0
    return pointer, rankers


class ServingState:
    def __init__(self, data_dir: Path, models_dir: Path, fusion: FusionConfig | None = None):
        faiss.omp_set_num_threads(1)  # one thread per request; scale with worker processes
        self.data_dir = data_dir
        self.fusion = fusion or FusionConfig()
        self._encoders = QueryEncoders(models_dir)
        self._current: Loaded | None = None
        self._loading: Stamp | None = None
        self._failed: Stamp | None = None
        self._failure = ""
        self._lock = threading.Lock()
        stamp = serving_stamp(data_dir)
        if stamp is not None:
            self._load(stamp)  # the first load is synchronous: a worker starts ready

    def _load(self, stamp: Stamp) -> None:
        try:
            current = self._current
            if current is not None and current.stamp[0] == stamp[0]:
                # only the model changed: keep the generation, its feature table and dictionary
                reader, table, corrector = current.searcher.reader, current.table, current.searcher.corrector
            else:
                reader, table = EmbeddedReader(current_generation_dir(self.data_dir), load_definition()), None
                corrector = query_corrector(reader)
            model = latest_model(self.data_dir)
            ranker = None
            if model is not None:
                table = table or ProductTable(reader.all_products(), reader.analyze, reader.definition)
                ranker = LearnedRanker(model, GenerationFeatures(reader, table))
            searcher = HybridSearcher(reader, self._encoders.get(reader.encoder_variant), self.fusion, ranker,
                                      FeatureLog.from_env(self.data_dir), corrector)
            self._current = Loaded(stamp, searcher, table)
            log.info("event=generation_loaded generation=%s documents=%d ranker=%s", reader.generation,
                     reader.document_count, ranker.version if ranker else None)
        except (GenerationError, OSError, ValueError, RuntimeError) as exc:
            self._failed = stamp
            self._failure = str(exc)
            log.error("event=generation_load_failed error=%r", str(exc))
        finally:
            with self._lock:
                self._loading = None

    def searcher(self) -> HybridSearcher:
        stamp = serving_stamp(self.data_dir)
        current = self._current
        if stamp is not None and (current is None or stamp != current.stamp) and stamp != self._failed:
            with self._lock:
                start = self._loading is None
                if start:
                    self._loading = stamp
            if start:
                if current is None:
                    self._load(stamp)
                else:
                    threading.Thread(target=self._load, args=(stamp,), daemon=True).start()
        current = self._current
        if current is None:
            if self._failed is not None and self._failed == stamp:
                raise NoIndex(f"the index in {self.data_dir} could not be loaded: {self._failure}")
            raise NoIndex(f"no index in {self.data_dir} yet: run `python -m indexer reindex --catalog FILE`")
        return current.searcher
