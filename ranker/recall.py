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

from dataclasses import replace

from indexer.store.base import Hit, SearchReader, TextQuery
from ranker.candidates import Candidate
from ranker.fusion import fuse_hits
from ranker.stages import Recalled, SearchContext
from ranker.understanding import lifted_filters

MIN_RECALL_WINDOW = 100
MAX_RESULTS = 1_000  # offset + k
MAX_LIFTED = 4  # named values that order recall; one text search each


def bm25_text(search: SearchContext) -> TextQuery:
    """The query BM25 searches: the text, the words synonym rules add, and how many of the
    text's words a product must contain (`Matching`)."""
    return TextQuery(search.text, search.bm25_extra, search.matching.minimum_should_match, search.match_text)


def product_words(search: SearchContext) -> list[str]:
    """The query's words that name no attribute or brand value: what the shopper is looking for."""
    named = {word for phrase in search.understood if phrase.liftable for word in phrase.text.split()}
    return [w for w in search.text.split() if w not in named]


def relax(search: SearchContext, reader: SearchReader, depth: int | None = None) -> list[Hit]:
    """The text side's hits (`depth` deep; None: only as many as the check needs), relaxed
    while fewer than `relax_below` products match: first to the words that name no
    attribute or brand value ("gray velvet sofa": every sofa, the gray velvet ones lifted
    first), then to any one word. The search's matching changes with it, so the total and
    facets count the same set. docs/understanding.md has the measurement behind the default."""
    need = search.matching.relax_below
    filters = search.request.filters
    hits = reader.bm25(bm25_text(search), depth or need, filters) if depth or need else []
    if search.matching.minimum_should_match is None or len(hits) >= need:
        return hits
    words = product_words(search)
    if words and len(words) < len(search.text.split()):
        search.match_text = " ".join(words)
        hits = reader.bm25(bm25_text(search), depth or need, filters)
        if len(hits) >= need:
            return hits
    search.match_text = None
    search.matching = replace(search.matching, minimum_should_match=None)
    return reader.bm25(bm25_text(search), depth or need, filters) if depth else []


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
                encoded = bm25_text(search).scored if self.synonyms_in_encoder else search.text
                search.vector = search.embedder.encode_query(encoded)
        if request.mode == "hybrid" and reader.capabilities.hybrid_search and not search.rerank_depth:
            # The cluster fuses in its search pipeline and counts and facets in the same request.
            assert search.vector is not None
            with search.timing("recall.hybrid"):
                relax(search, reader)  # first: the hybrid request counts the set it settles on
                hits, summary = reader.hybrid_search(bm25_text(search), search.vector, window, request.filters,
                                                     search.fusion.method)
            deeper = reader.bm25(bm25_text(search), depth, request.filters) if depth > window else []
            return Recalled(deeper, [], [Candidate(h.id, h.score, fused_score=h.score) for h in hits], summary,
                            lifted=self._lifted(search))
        bm25: list[Hit] = []
        vector: list[Hit] = []
        if request.mode != "vector":
            with search.timing("recall.bm25"):
                bm25 = self._text_hits(search, depth)
        if search.vector is not None:
            with search.timing("recall.knn"):
                vector = reader.knn(search.vector, window, request.filters, post_filter=True)
            threshold = search.matching.vector_threshold
            if threshold is not None:
                vector = [h for h in vector if h.score >= threshold]
        return Recalled(bm25, vector, lifted=self._lifted(search) if request.mode != "vector" else [])

    def _text_hits(self, search: SearchContext, depth: int) -> list[Hit]:
        return relax(search, self.reader, depth)

    def _lifted(self, search: SearchContext) -> list[tuple[tuple[str, ...], list[Hit]]]:
        """For the attribute and brand values the query names, the text matches that have
        them (in BM25 order): those with all of them, then (for several) those with each,
        so they are candidates even when the text alone ranks them low."""
        filters = search.request.filters
        named = lifted_filters(search.understood)[:MAX_LIFTED]
        if not named:
            return []
        words = product_words(search)  # a lifted product has every one of them, however loose the search
        query = replace(bm25_text(search), minimum_should_match="100%", match_text=" ".join(words)) if words \
            else bm25_text(search)
        groups = [named] + ([[n] for n in named] if len(named) > 1 else [])
        out = []
        with search.timing("recall.lifted"):
            for group in groups:
                required = (*filters.required, *(f for _, f in group))
                out.append((tuple(text for text, _ in group),
                            self.reader.bm25(query, search.window, replace(filters, required=required))))
        return out


def lift(candidates: list[Candidate], lifted: list[tuple[tuple[str, ...], list[Hit]]]) -> list[Candidate]:
    """The candidates ordered by how many of the named values they have, most first (a
    product deep in one value's long list still counts for all when it is among those
    with all of them). Those recall's window missed join their group after the ones it
    had; each group keeps its order."""
    named: dict[str, set[str]] = {}
    scores: dict[str, float] = {}
    for phrases, hits in lifted:
        for h in hits:
            named.setdefault(h.id, set()).update(phrases)
            scores[h.id] = h.score
    if not named:
        return candidates
    present = {c.id for c in candidates}
    floor = min((c.score for c in candidates), default=0.0)
    candidates = candidates + [Candidate(i, floor, bm25_score=scores[i]) for i in named if i not in present]
    order = {text: n for n, text in enumerate(p for phrases, _ in lifted[:1] for p in phrases)}
    for c in candidates:
        c.named = tuple(sorted(named.get(c.id, ()), key=order.__getitem__))
    return sorted(candidates, key=lambda c: -len(c.named))  # stable: each group in its order


class FuseStage:
    """Recalled hits -> candidates: fused within the recall window (the same for every
    page of a search), then BM25 hits beyond the window in BM25 order, so a product
    appears on exactly one page. Single-sided modes keep that side's order. The text
    matches with every value the query names come first (`lift`)."""

    name = "fuse"

    def __call__(self, search: SearchContext, recalled: Recalled) -> list[Candidate]:
        return lift(self._fused(search, recalled), recalled.lifted)

    def _fused(self, search: SearchContext, recalled: Recalled) -> list[Candidate]:
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
