"""The recall and fuse stages: BM25 and vector k-NN on the same filters, one candidate list.

Backend-neutral: they talk to a `SearchReader`, so the embedded store and OpenSearch give
the same answers for the same index. What a search recalls is fixed by its request,
never by the page it asks for: each side contributes the top `window` (the vector side:
the `window` nearest products of the whole catalog, then filtered), and a page beyond
the window continues with BM25's own order. So paging never changes the total, the
facets, or which page a product is on, and a facet's count is the total after filtering
by it.
"""

from __future__ import annotations

from indexer.store.base import Hit, SearchReader
from ranker.candidates import Candidate
from ranker.fusion import fuse_hits
from ranker.stages import Recalled, SearchContext

MIN_RECALL_WINDOW = 100
MAX_RESULTS = 1_000  # offset + k


def bm25_text(search: SearchContext) -> str:
    """The query BM25 searches: the text, and the words synonym rules add."""
    return " ".join((search.text, *search.bm25_extra)) if search.bm25_extra else search.text


class RecallStage:
    name = "recall"

    def __init__(self, reader: SearchReader, synonyms_in_encoder: bool = False):
        """`synonyms_in_encoder`: the encoder embeds the text with the synonym words too
        (off: docs/merchandising.md has the measurement)."""
        self.reader = reader
        self.synonyms_in_encoder = synonyms_in_encoder

    def __call__(self, search: SearchContext) -> Recalled:
        request, reader, window = search.request, self.reader, search.window
        # BM25 goes deeper for pages beyond the window, and as deep as results are served
        # when the shopper sorts (ranker/sorting.py): the sorted list is the matching set.
        depth = max(window, request.offset + request.k, MAX_RESULTS if request.sort != "relevance" else 0)
        if request.mode in ("hybrid", "vector") and search.vector is None:
            with search.timing("recall.encode"):
                encoded = bm25_text(search) if self.synonyms_in_encoder else search.text
                search.vector = search.embedder.encode_query(encoded)
        if request.mode == "hybrid" and reader.capabilities.hybrid_search and not search.rerank_depth:
            # The cluster fuses in its search pipeline and counts and facets in the same request.
            assert search.vector is not None
            with search.timing("recall.hybrid"):
                hits, summary = reader.hybrid_search(bm25_text(search), search.vector, window, request.filters,
                                                     search.fusion.method)
            deeper = reader.bm25(bm25_text(search), depth, request.filters) if depth > window else []
            return Recalled(deeper, [], [Candidate(h.id, h.score, fused_score=h.score) for h in hits], summary)
        bm25: list[Hit] = []
        vector: list[Hit] = []
        if request.mode != "vector":
            with search.timing("recall.bm25"):
                bm25 = reader.bm25(bm25_text(search), depth, request.filters)
        if search.vector is not None:
            with search.timing("recall.knn"):
                vector = reader.knn(search.vector, window, request.filters, post_filter=True)
        return Recalled(bm25, vector)


class FuseStage:
    """Recalled hits -> candidates: fused within the recall window (the same for every
    page of a search), then BM25 hits beyond the window in BM25 order, so a product
    appears on exactly one page. Single-sided modes keep that side's order."""

    name = "fuse"

    def __call__(self, search: SearchContext, recalled: Recalled) -> list[Candidate]:
        window, mode = search.window, search.request.mode
        if mode == "bm25":
            return [Candidate(h.id, h.score, bm25_rank=r, bm25_score=h.score) for r, h in enumerate(recalled.bm25, 1)]
        if mode == "vector":
            return [Candidate(h.id, h.score, vector_rank=r, vector_score=h.score)
                    for r, h in enumerate(recalled.vector, 1)]
        if recalled.fused is not None:
            head = recalled.fused
        else:
            head = fuse_hits(recalled.bm25[:window], recalled.vector, search.fusion)
        seen = {c.id for c in head}
        floor = min((c.score for c in head), default=0.0)
        tail = [Candidate(h.id, floor, bm25_rank=r, bm25_score=h.score)
                for r, h in enumerate(recalled.bm25[window:], window + 1) if h.id not in seen]
        return head + tail
