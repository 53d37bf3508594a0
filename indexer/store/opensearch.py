"""The OpenSearch backend: the same search contract on a cluster.

A thin adapter over opensearch-py: requests are built only by `opensearch_bodies`
(validated against the OpenSearch API spec in the tests); bulk loading, retries and
back-off come from `opensearchpy.helpers.streaming_bulk`.

Generations are concrete indices `<alias>-<timestamp>`; the serving alias moves between
them in one atomic `_aliases` call, so a reindex never shows a half-loaded index and
rollback is moving the alias back. Upserts and deletes write through the alias.

Configuration comes from the environment (`indexer.settings.opensearch`,
docs/opensearch.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
from opensearchpy import OpenSearch, helpers
from opensearchpy.exceptions import NotFoundError, TransportError

from indexer.analysis import FieldAnalyzer
from indexer.documents import DERIVED_FIELDS, merge_counts, term_counts
from indexer.mapping import IndexDefinition
from indexer.settings import OpenSearchSettings
from indexer.store import opensearch_bodies as bodies
from indexer.store.base import (
    VALUE_FIELDS,
    BackendUnavailable,
    Capabilities,
    FacetBucket,
    FeatureDocument,
    Filters,
    GenerationError,
    Hit,
    LocalCatalog,
    MatchSummary,
    Product,
    Published,
    TextQuery,
    Unsupported,
    match_words,
    text_query_of,
)
from indexer.store.opensearch_client import describe
from indexer.writer_lock import writer_lock

log = logging.getLogger(__name__)
KEEP_INDICES = 2  # the serving one and the one to roll back to
# A new index is switched to once its replicas are copied, so it serves with the
# redundancy it was configured for; a cluster with too few nodes for them never gets
# there, and the switch goes ahead (with a warning) after this long.
REPLICA_WAIT_SECONDS = 60
PIPELINES = {"weighted": "shoprank-weighted", "rrf": "shoprank-rrf"}


class _Guarded:
    """A client, the index definition and settings; client exceptions become
    BackendUnavailable with a clear message."""

    def __init__(self, client: OpenSearch, definition: IndexDefinition, settings: OpenSearchSettings):
        self.client = client
        self.definition = definition
        self.settings = settings
        self.alias = settings.alias

    def _call(self, func, *args: Any, **kwargs: Any) -> Any:  # type: ignore[no-untyped-def]
        try:
            return func(*args, **kwargs)
        except TransportError as exc:
            raise BackendUnavailable(describe(exc, self.settings)) from exc


class OpenSearchReader(_Guarded):
    """A view of whatever index the alias points to; OpenSearch does the swapping."""

    def __init__(self, client: OpenSearch, definition: IndexDefinition, settings: OpenSearchSettings):
        super().__init__(client, definition, settings)
        self.capabilities = Capabilities(hybrid_search=settings.fusion == "pipeline", local_catalog=False)
        aliased = self._call(client.indices.get_alias, name=self.alias)
        self.generation: str = sorted(aliased)[-1]
        meta = self._meta("manifest", "vocabulary_words")
        self.manifest = meta.get("manifest", {})
        self.vocabulary_words = int(meta.get("vocabulary_words", 0))  # changes when an upsert adds words
        self._vocabulary: dict[str, int] | None = None
        self._values: dict[str, dict[str, int]] | None = None
        self.encoder_variant: str = self.manifest.get("encoder", {}).get("variant", "int8")
        self._analysis = FieldAnalyzer(definition)

    @property
    def document_count(self) -> int:
        return int(self._call(self.client.count, index=self.alias)["count"])

    def _search(self, body: dict[str, Any], **params: Any) -> dict[str, Any]:
        return self._call(self.client.search, index=self.alias, body=body, params=params or None)

    @staticmethod
    def _hits(response: dict[str, Any]) -> list[Hit]:
        return [Hit(h["_id"], float(h["_score"] or 0.0)) for h in response["hits"]["hits"]]

    def _words(self, query: TextQuery) -> list[str]:
        return match_words(query.counted, lambda word: any(self._analysis(word, path)
                                                         for path in self.definition.search_fields))

    def bm25(self, text: str | TextQuery, k: int, filters: Filters) -> list[Hit]:
        query = text_query_of(text)
        return self._hits(self._search(bodies.bm25_body(self.definition, query, self._words(query), k, filters)))

    def knn(self, vector: np.ndarray, k: int, filters: Filters, post_filter: bool = False) -> list[Hit]:
        """Scores as inner products, the contract's: the engine reports 1 + ip for a
        positive inner product and 1 / (1 - ip) otherwise (the k-NN plugin's
        `innerproduct` space), so a similarity threshold means the same on both backends."""
        hits = self._hits(self._search(bodies.knn_body(self.definition, vector, k, filters, post_filter)))
        return [Hit(h.id, h.score - 1.0 if h.score >= 1.0 else 1.0 - 1.0 / max(h.score, 1e-9)) for h in hits]

    def hybrid_search(self, text: str | TextQuery, vector: np.ndarray, k: int, filters: Filters,
                      method: str) -> tuple[list[Hit], MatchSummary]:
        """Fused hits (search pipeline of `method`: weighted or rrf), total and facets, in
        one request; the k-NN side is post-filtered, as ShopRank's own fusion does."""
        query = text_query_of(text)
        response = self._search(bodies.hybrid_body(self.definition, query, self._words(query), vector, k, filters),
                                search_pipeline=PIPELINES[method])
        return self._hits(response), self._summary(response)

    def _summary(self, response: dict[str, Any]) -> MatchSummary:
        facets = {
            name: [FacetBucket(str(b["key"]), int(b["doc_count"]), b.get("from"), b.get("to"))
                   for b in response.get("aggregations", {}).get(name, {}).get("buckets", []) if b["doc_count"] > 0]
            for name in self.definition.facets
        }
        return MatchSummary(total=int(response["hits"]["total"]["value"]), facets=facets)

    def match_summary(self, text: str | TextQuery, candidate_ids: Sequence[str], filters: Filters) -> MatchSummary:
        query = text_query_of(text)
        if not query.scored.strip() and not candidate_ids:
            return MatchSummary(total=0, facets={})
        return self._summary(self._search(bodies.summary_body(self.definition, query, self._words(query),
                                                              candidate_ids, filters)))

    def analyze(self, text: str, field: str = "title") -> list[str]:
        return self._analysis(text, field)

    def _meta(self, *keys: str) -> dict[str, Any]:
        """Only these keys of the serving index's `_meta.shoprank`: readers are re-created
        every few seconds, and the dictionary in there can be megabytes."""
        paths = ",".join(f"*.mappings._meta.shoprank.{key}" for key in keys)
        found = self._call(self.client.indices.get_mapping, index=self.generation, params={"filter_path": paths})
        return found.get(self.generation, {}).get("mappings", {}).get("_meta", {}).get("shoprank", {})

    def term_counts(self) -> dict[str, int]:
        """Kept in the index's `_meta` by reindex and upsert; empty for an older index.
        Fetched on first use only."""
        if self._vocabulary is None:
            self._vocabulary = self._meta("vocabulary").get("vocabulary", {})
        return self._vocabulary

    def vocabulary_stamp(self) -> tuple[str, int]:
        return self.generation, self.vocabulary_words

    def value_counts(self) -> dict[str, dict[str, int]]:
        if self._values is None:
            response = self._search(bodies.value_counts_body())
            self._values = {name: {str(b["key"]): int(b["doc_count"])
                                   for b in response.get("aggregations", {}).get(name, {}).get("buckets", [])}
                            for name in VALUE_FIELDS}
        return self._values

    def catalog(self) -> LocalCatalog:
        raise Unsupported("an OpenSearch index is not held in this process: use feature_documents()")

    def feature_documents(self, text: str, ids: Sequence[str]) -> dict[str, FeatureDocument]:
        """Product, vector and each search field's BM25 (named queries) of the candidates
        that still exist, in one request."""
        if not ids:
            return {}
        response = self._search(bodies.feature_body(self.definition, text, ids), include_named_queries_score="true")
        out = {}
        for hit in response["hits"]["hits"]:
            source = hit["_source"]
            vector = np.asarray(source.pop(self.definition.vector_field), dtype=np.float32)
            scores = hit.get("matched_queries") or {}
            out[hit["_id"]] = FeatureDocument(strip_derived(source), vector, scores if isinstance(scores, dict) else {})
        return out

    def products(self, ids: Sequence[str]) -> list[Product]:
        if not ids:
            return []
        response = self._call(self.client.mget, index=self.alias, body=bodies.mget_body(ids),
                              params={"_source_excludes": self.definition.vector_field})
        return [strip_derived(d["_source"]) for d in response["docs"] if d.get("found")]


def strip_derived(document: dict[str, Any]) -> Product:
    return {k: v for k, v in document.items() if k not in DERIVED_FIELDS}


class BulkFailed(GenerationError):
    pass


class OpenSearchWriter(_Guarded):
    """Writes: a new concrete index per reindex, atomic alias moves, upserts and deletes
    through the alias. The writer lock is the data dir's, as on the embedded backend: it
    keeps this machine's writers apart (a cluster shared by several machines needs one
    writer machine)."""

    def __init__(self, client: OpenSearch, definition: IndexDefinition, settings: OpenSearchSettings,
                 data_dir: Path):
        super().__init__(client, definition, settings)
        self.data_dir = data_dir

    def lock(self) -> AbstractContextManager[None]:
        return writer_lock(self.data_dir)

    def check(self) -> None:
        """Fail before any expensive work if the cluster cannot be reached or refuses us."""
        self._call(self.client.info)

    def serving_encoder(self) -> str | None:
        if not self._aliased():
            return None
        return OpenSearchReader(self.client, self.definition, self.settings).encoder_variant

    def ensure_pipelines(self) -> None:
        """PUT is idempotent: the pipelines end up as mappings/ defines them, existing or not."""
        for method, name in PIPELINES.items():
            self._call(self.client.search_pipeline.put, id=name, body=bodies.pipeline_body(method))

    def _indices(self) -> list[str]:
        found = self._call(self.client.indices.get, index=f"{self.alias}-*", params={"expand_wildcards": "open"})
        return sorted(found)

    def _aliased(self, alias: str | None = None) -> list[str]:
        try:
            return sorted(self.client.indices.get_alias(name=alias or self.alias))
        except NotFoundError:
            return []
        except TransportError as exc:
            raise BackendUnavailable(describe(exc, self.settings)) from exc

    def _bulk(self, actions: Any) -> tuple[int, set[str]]:
        """Stream the actions; retries 429s with back-off; every failure is named.
        Returns (documents written or deleted, ids a delete did not find)."""
        failures: list[str] = []
        not_found: set[str] = set()
        done = 0
        try:
            for ok, item in helpers.streaming_bulk(
                self.client, actions, chunk_size=500, max_retries=5, initial_backoff=1, max_backoff=30,
                raise_on_error=False, raise_on_exception=False,
            ):
                operation, result = next(iter(item.items()))
                if ok:
                    done += 1
                elif operation == "delete" and result.get("status") == 404:
                    not_found.add(str(result.get("_id")))
                else:
                    failures.append(f"{result.get('_id')}: {result.get('error', result.get('status'))}")
        except TransportError as exc:
            raise BackendUnavailable(describe(exc, self.settings)) from exc
        if failures:
            shown = "; ".join(failures[:10])
            raise BulkFailed(f"{len(failures)} documents were not indexed: {shown}"
                             + (f" (and {len(failures) - 10} more)" if len(failures) > 10 else ""))
        return done, not_found

    def publish(self, products: Sequence[Product], vectors: np.ndarray, manifest: dict[str, Any]) -> Published:
        if not products:
            raise GenerationError("refusing to publish an empty index: no valid products would remain")
        if self.settings.fusion == "pipeline":
            self.ensure_pipelines()
        self.cleanup()
        name = f"{self.alias}-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}{int(time.time() * 1000) % 1000:03d}"
        manifest = {**manifest, "name": name, "documents": len(products)}
        vocabulary = term_counts(products, self.definition.search_fields)
        self._call(self.client.indices.create, index=name,
                   body=bodies.index_body(self.definition, manifest, vocabulary,
                                          shards=self.settings.shards, replicas=self.settings.replicas))
        try:
            self._bulk(bodies.bulk_index_actions(name, self.definition, products, vectors))
            self._call(self.client.indices.refresh, index=name)
            count = int(self._call(self.client.count, index=name)["count"])
            if count != len(products):
                raise GenerationError(f"new index {name} holds {count} documents, expected {len(products)}")
        except Exception:
            try:  # best effort: never let the clean-up hide why the load failed
                self.client.indices.delete(index=name, ignore_unavailable=True)
            except TransportError:
                log.warning("event=cleanup_failed index=%s", name)
            raise
        self._await_replicas(name)
        old = self._aliased()
        self._call(self.client.indices.update_aliases, body=bodies.alias_actions(self.alias, name, old, verified=True))
        self._prune(keep={name, *old[-1:]})
        return Published(name, len(products))

    def _await_replicas(self, name: str) -> None:
        # opensearch-py reads a `timeout` parameter as its own socket timeout unless
        # `request_timeout` is given, so both are: the cluster's wait, and the socket's.
        health = self._call(self.client.cluster.health, index=name, wait_for_status="green",
                            timeout=f"{REPLICA_WAIT_SECONDS}s", request_timeout=REPLICA_WAIT_SECONDS + 30)
        if health.get("timed_out") or health.get("status") != "green":
            log.warning("event=replicas_unassigned index=%s status=%s unassigned=%s", name,
                        health.get("status"), health.get("unassigned_shards"))

    def _prune(self, keep: set[str]) -> None:
        indices = self._indices()
        for index in indices[: max(0, len(indices) - KEEP_INDICES)]:
            if index not in keep:
                self._call(self.client.indices.delete, index=index)

    def upsert(self, products: Sequence[Product], vectors: np.ndarray, manifest: dict[str, Any]) -> Published:
        self._bulk(bodies.bulk_index_actions(self.alias, self.definition, products, vectors))
        self._add_words(products)
        self._call(self.client.indices.refresh, index=self.alias)
        return Published(self._aliased()[-1], int(self._call(self.client.count, index=self.alias)["count"]))

    def _add_words(self, products: Sequence[Product]) -> None:
        """New words join the dictionary, so a new brand is searched as typed, never
        "corrected" away. Deleted products' words stay: a stale word only means one
        misspelling that is not corrected until the next reindex."""
        for index, found in self._call(self.client.indices.get_mapping, index=self.alias).items():
            meta = found["mappings"].get("_meta", {})
            vocabulary = merge_counts(meta.get("shoprank", {}).get("vocabulary", {}),
                                      term_counts(products, self.definition.search_fields))
            self._call(self.client.indices.put_mapping, index=index,
                       body=bodies.meta_update_body(meta, vocabulary))

    def delete(self, ids: Sequence[str], manifest: dict[str, Any]) -> tuple[Published, set[str]]:
        _deleted, not_found = self._bulk(bodies.bulk_delete_actions(self.alias, ids))
        self._call(self.client.indices.refresh, index=self.alias)
        return Published(self._aliased()[-1], int(self._call(self.client.count, index=self.alias)["count"])), not_found

    def rollback(self) -> tuple[str, str | None]:
        """The alias moves to the other kept index (the newest verified one it does not
        name), so a second rollback returns, as on the embedded backend."""
        current = self._aliased()
        verified = set(self._aliased(bodies.verified_alias(self.alias)))
        others = [i for i in self._indices() if i not in current and i in verified]
        if not current or not others:
            raise GenerationError("there is no previous index to roll back to")
        self._call(self.client.indices.update_aliases, body=bodies.alias_actions(self.alias, others[-1], current))
        return others[-1], current[-1]

    def cleanup(self) -> None:
        """An index the alias does not name that never joined the verified indices is a
        load that was killed: it is deleted, never rolled back to."""
        keep = set(self._aliased()) | set(self._aliased(bodies.verified_alias(self.alias)))
        for index in self._indices():
            if index not in keep:
                log.warning("event=incomplete_index_removed index=%s", index)
                self._call(self.client.indices.delete, index=index)
