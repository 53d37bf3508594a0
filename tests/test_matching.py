"""The precise matching set: OpenSearch's minimum_should_match arithmetic, the embedded
backend held to a plain-Python reference of "enough words, each in some search field",
the relaxation that keeps a short list from crowding out partial matches, the vector
threshold, and the setting's checks."""

from __future__ import annotations

import pytest

from indexer.documents import search_document
from indexer.store.base import Filters, TextQuery, required_words


@pytest.mark.parametrize(("spec", "words", "need"), [
    (None, 4, 1), ("100%", 4, 4), ("-1", 4, 3), ("-1", 1, 1), ("75%", 4, 3), ("75%", 3, 2), ("-25%", 3, 3),
    ("2", 1, 1), ("3<-1 6<-2", 3, 3), ("3<-1 6<-2", 4, 3), ("3<-1 6<-2", 6, 5), ("3<-1 6<-2", 7, 5),
    ("3<-1 6<-2", 0, 0),
])
def test_required_words_follow_opensearch(spec: str | None, words: int, need: int) -> None:
    assert required_words(spec, words) == need


def _reference(reader, query: str, need: int) -> set[str]:  # type: ignore[no-untyped-def]
    """Products with at least `need` of the query's words in one search field or another."""
    fields = reader.definition.search_fields
    words = [w for w in query.split() if any(reader.analyze(w, f) for f in fields)]
    out = set()
    for product in reader.catalog().products:
        document = search_document(product)
        tokens = {t for f in fields for t in reader.analyze(str(document.get(f.split(".")[0], "") or ""), f)}
        if sum(any(t in tokens for f in fields for t in reader.analyze(w, f)) for w in words) >= need:
            out.add(product["id"])
    return out


@pytest.mark.parametrize("query", ["gray velvet sofa", "wireless noise cancelling headphones", "oak coffee table"])
@pytest.mark.parametrize("spec", ["100%", "3<-1 6<-2"])
def test_the_embedded_backend_matches_the_reference(demo_reader, query: str, spec: str) -> None:  # type: ignore[no-untyped-def]
    words = len(query.split())
    expected = _reference(demo_reader, query, required_words(spec, words))
    found = {h.id for h in demo_reader.bm25(TextQuery(query, (), spec), 10_000, Filters())}
    assert found == expected
    assert demo_reader.match_summary(TextQuery(query, (), spec), [], Filters()).total == len(expected)
    loose = {h.id for h in demo_reader.bm25(TextQuery(query), 10_000, Filters())}
    assert found <= loose and (len(found) < len(loose) or words == 1)


def test_a_synonym_word_alone_is_enough(demo_reader) -> None:  # type: ignore[no-untyped-def]
    precise = {h.id for h in demo_reader.bm25(TextQuery("couch zzqx", ("sofa",), "100%"), 10_000, Filters())}
    assert precise == {h.id for h in demo_reader.bm25(TextQuery("sofa"), 10_000, Filters())}


def test_a_short_precise_list_is_relaxed_and_the_total_follows(demo_pipeline) -> None:  # type: ignore[no-untyped-def]
    from ranker.request import SearchRequest
    from ranker.stages import Matching

    saved = demo_pipeline.matching
    try:
        demo_pipeline.matching = Matching("100%", None, relax_below=0)
        strict = demo_pipeline.search(SearchRequest("wireless headphones zzqx", k=10, mode="bm25"))
        demo_pipeline.matching = Matching("100%", None, relax_below=10)
        relaxed = demo_pipeline.search(SearchRequest("wireless headphones zzqx", k=10, mode="bm25"))
        demo_pipeline.matching = Matching(None, None)
        loose = demo_pipeline.search(SearchRequest("wireless headphones zzqx", k=10, mode="bm25"))
    finally:
        demo_pipeline.matching = saved
    assert strict.total == 0 and strict.results == []
    assert relaxed.total == loose.total > 0 and [r["id"] for r in relaxed.results] == [r["id"] for r in loose.results]


def test_vector_neighbours_below_the_threshold_are_not_matches(demo_pipeline) -> None:  # type: ignore[no-untyped-def]
    from ranker.request import SearchRequest
    from ranker.stages import Matching

    saved = demo_pipeline.matching
    try:
        demo_pipeline.matching = Matching(None, None)
        everything = demo_pipeline.rank(SearchRequest("zzqx yoga", k=10, mode="vector"))
        demo_pipeline.matching = Matching(None, 0.5)
        close = demo_pipeline.rank(SearchRequest("zzqx yoga", k=10, mode="vector"))
    finally:
        demo_pipeline.matching = saved
    assert len(everything.recalled.vector) == 100 and everything.recalled.vector[-1].score < 0.5
    assert close.recalled.vector == [h for h in everything.recalled.vector if h.score >= 0.5]


@pytest.mark.parametrize(("name", "value", "reader"), [
    ("SHOPRANK_MINIMUM_SHOULD_MATCH", "most", "minimum_should_match"),
    ("SHOPRANK_MINIMUM_SHOULD_MATCH", "3<", "minimum_should_match"),
    ("SHOPRANK_VECTOR_THRESHOLD", "2", "vector_threshold"),
    ("SHOPRANK_MATCH_RELAX_BELOW", "-1", "match_relax_below"),
])
def test_bad_matching_settings_are_refused_by_name(monkeypatch: pytest.MonkeyPatch, name: str, value: str,
                                                   reader: str) -> None:
    from indexer import settings

    monkeypatch.setenv(name, value)
    with pytest.raises(settings.SettingsError, match=name):
        getattr(settings, reader)()


def test_the_page_says_no_results_and_offers_searches_that_find_some(server) -> None:  # type: ignore[no-untyped-def]
    status, body = server.get("/search?q=headphones&attr.color=zzqx")
    assert status == 200 and body["total"] == 0 and body["results"] == []
    assert {
        k: v for k, v in body["suggestions"][0].items() if k != "total"} == {"query": "headphones", "reason": "no_filters", "filters": False}
    status, page = server.get("/?q=headphones&attr.color=zzqx")
    assert status == 200 and "No results for <strong>headphones</strong>" in page
    assert 'href="/?q=headphones"' in page and "(without filters)" in page
