"""Query correction: only words the catalog does not know change, and they change into
the catalog's own words. A real analyzer (the mapping's, via tantivy) decides what is
known, so stemming counts: "drills" is known when the catalog says "Drill"."""

from __future__ import annotations

import pytest

from indexer.analysis import FieldAnalyzer
from indexer.documents import term_counts
from indexer.mapping import load_definition
from ranker.spelling import QueryCorrector

DEFINITION = load_definition()
CATALOG = [
    {"id": "qz-1", "title": "Cordless Drill 18-Volt", "brand": "Torqmax", "category": "Tools > Drills"},
    {"id": "2", "title": "Ceiling Fan with Light", "brand": "Brightline", "attributes": {"finish": "brushed nickel"}},
    {"id": "3", "title": "Rust Oleum Spray Paint", "brand": "Colorwell"},
    {"id": "4", "title": "Pressure Treated Lumber 2 in. x 4 in. x 8 ft.", "brand": "Woodline"},
    {"id": "5", "title": "Bathroom Faucet 1/2 in.", "brand": "Aqualine", "category": "Bath > Faucets"},
    {"id": "6", "title": "Bathroom Faucet Chrome", "brand": "Aqualine"},
]


@pytest.fixture(scope="module")
def corrector() -> QueryCorrector:
    analysis = FieldAnalyzer(DEFINITION)
    return QueryCorrector(term_counts(CATALOG, DEFINITION.search_fields), lambda text: analysis(text, "title"))


def test_dictionary_counts_every_search_field_including_brand_category_and_attributes() -> None:
    counts = term_counts(CATALOG, DEFINITION.search_fields)
    assert counts["faucet"] == 2 and counts["faucets"] == 1 and counts["bath"] == 1  # titles and a category
    assert counts["torqmax"] == 1 and counts["drills"] == 1 and counts["nickel"] == 1
    assert "qz" not in counts  # ids and other non-search fields are not words


@pytest.mark.parametrize(("typed", "searched"), [
    ("cieling fan", "ceiling fan"),
    ("bathroom fauset 1/2 in.", "bathroom faucet 1/2 in."),  # punctuation and numbers kept as typed
    ("cordles drill", "cordless drill"),
    ("rustoleum paint", "rust oleum paint"),  # a compound split into catalog words
    ("18v drill", "18 volt drill"),  # a number glued to a unit
    ("2x4 lumber", "2 x 4 lumber"),  # dimensions as titles write them
    ("brushed nickle", "brushed nickel"),
])
def test_unknown_words_become_catalog_words(corrector: QueryCorrector, typed: str, searched: str) -> None:
    assert corrector.correct(typed) == searched


@pytest.mark.parametrize("typed", [
    "Cordless Drills",  # known after stemming; case kept
    "Torqmax",  # a brand is the catalog's own word, never an English one
    "blk fan",  # too short to correct safely
    "zzzzqqq",  # nothing close: left as typed
    "1/2 in. faucet",
    "",
])
def test_known_and_uncorrectable_words_stay_as_typed(corrector: QueryCorrector, typed: str) -> None:
    assert corrector.correct(typed) == typed


def test_dimensions_stay_glued_when_the_catalog_glues_them() -> None:
    analysis = FieldAnalyzer(DEFINITION)
    catalog = [*CATALOG, {"id": "7", "title": "2x4 Stud"}]
    glued = QueryCorrector(term_counts(catalog, DEFINITION.search_fields), lambda text: analysis(text, "title"))
    assert glued.correct("2x4 stud") == "2x4 stud"


def test_search_corrects_and_says_so_unless_asked_not_to(server) -> None:  # type: ignore[no-untyped-def]
    status, body = server.get("/search?q=cordles+driil&k=5")
    assert status == 200
    assert body["query"] == "cordles driil" and body["corrected_query"] == "cordless drill"
    assert all("Drill" in r["title"] for r in body["results"])
    status, typed = server.get("/search?q=cordles+driil&k=5&correct=false&mode=bm25")
    assert status == 200 and typed["corrected_query"] is None
    assert typed["results"] == []  # the typed words match nothing in BM25
    status, lexical = server.get("/search?q=cordles+driil&k=5&mode=bm25")
    assert all("Drill" in r["title"] for r in lexical["results"]) and len(lexical["results"]) == 5
    status, page = server.get("/?q=cordles+driil")
    assert status == 200 and "Showing results for" in page and "correct=false" in page


def test_training_sees_the_query_as_serving_searches_it(demo_reader, shipped_encoder) -> None:  # type: ignore[no-untyped-def]
    from tests.ranking_helpers import row_builder

    builder = row_builder(demo_reader, shipped_encoder, depth=20)
    assert builder.pipeline.searched_text("wireles headphones") == "wireless headphones"
    typed = builder.rows("wireles headphones", {})
    corrected = builder.rows("wireless headphones", {})
    assert typed.query == "wireles headphones"  # judgments stay keyed by what was typed
    assert typed.ids == corrected.ids
    assert (typed.features == corrected.features).all()
