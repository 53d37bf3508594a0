"""Query understanding on a real index of the demo catalog: the values a query names are
recognized from the index's own values, lift the products that have them in recall
order, feed a feature, and are offered (never applied) as filters; the matching set is
precise, so its facets are the department searched; spelling leaves good words alone."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from indexer.demo_catalog import DEPARTMENTS, write_demo_catalog
from indexer.store.base import Filters
from ranker.features.names import FEATURE_INDEX
from ranker.request import SearchRequest
from ranker.understanding import Named, QueryUnderstanding
from tests.conftest import index_catalog

UNDERSTOOD_SIZE = 5_000  # enough that many (value, noun) pairs have 10 products


@pytest.fixture(scope="module")
def catalog_index(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Path:
    catalog = write_demo_catalog(tmp_path_factory.mktemp("understood") / "demo.jsonl", size=UNDERSTOOD_SIZE, seed=11)
    data_dir = tmp_path_factory.mktemp("understood-data")
    index_catalog(data_dir, catalog)
    return data_dir


@pytest.fixture(scope="module")
def reader(catalog_index: Path):  # type: ignore[no-untyped-def]
    from indexer.backends import EmbeddedBackend
    from indexer.mapping import load_definition

    return EmbeddedBackend(catalog_index, load_definition()).reader()


@pytest.fixture(scope="module")
def pipeline(reader, models_dir: Path):  # type: ignore[no-untyped-def]
    from indexer.encoder import TextEncoder
    from ranker.pipeline import SearchPipeline
    from ranker.spelling import query_corrector

    return SearchPipeline(reader, TextEncoder(models_dir, reader.encoder_variant), corrector=query_corrector(reader))


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _has_noun(product: dict[str, Any], noun: str) -> bool:
    title = _words(product["title"])
    words = _words(noun)
    return any(title[i : i + len(words)] == words for i in range(len(title)))


def generated_queries() -> list[tuple[str, str, dict[str, str]]]:
    """(query, product noun, named values): every `[color or material] noun` and
    `[color] [material] noun` the catalog's templates can make."""
    out = []
    for categories in DEPARTMENTS.values():
        for nouns, _brands, choices, _prices in categories.values():
            for noun in nouns:
                for key in ("color", "material"):
                    out += [(f"{value} {noun}".lower(), noun, {key: value}) for value in choices.get(key, [])]
                for color in choices.get("color", []):
                    out += [(f"{color} {material} {noun}".lower(), noun, {"color": color, "material": material})
                            for material in choices.get("material", []) if material != color]
    return out


def _has_values(product: dict[str, Any], values: dict[str, str]) -> bool:
    """Each named value under any attribute: "walnut" is a coffee table's color or its material."""
    return all(v in (product.get("attributes") or {}).values() for v in values.values())


def test_nine_of_the_top_ten_have_the_values_the_query_names(pipeline, reader) -> None:  # type: ignore[no-untyped-def]
    products = reader.catalog().products
    checked, failures = 0, []
    for query, noun, values in generated_queries():
        such = [p for p in products if _has_noun(p, noun) and _has_values(p, values)]
        if len(such) < 10:
            continue
        checked += 1
        top = pipeline.search(SearchRequest(query, k=10)).results
        having = sum(_has_values(r, values) for r in top)
        if having < 9:
            failures.append((query, having))
    assert checked >= 40, "the generated catalog should give many queries with 10 such products"
    assert not failures, f"{len(failures)} of {checked} queries: {failures[:10]}"


def test_gray_velvet_sofa_shows_gray_velvet_sofas_first_and_facets_furniture(pipeline, reader) -> None:  # type: ignore[no-untyped-def]
    for filters in (Filters(), Filters(price_max=1000, in_stock=True)):
        exist = [p for p in reader.catalog().products if filters.matches(p) and p["category"].endswith("Sofas")
                 and p["attributes"] == {"color": "gray", "material": "velvet"}]
        response = pipeline.search(SearchRequest("gray velvet sofa", k=10, filters=filters, explain=True))
        top = response.results[: min(5, len(exist))]
        assert all(r["id"] in {p["id"] for p in exist} for r in top)
        assert all(r["explain"]["understood"] == {"values_matched": 2, "phrases": ["gray", "velvet"]}
                   for r in top)  # explain says why they lead
        assert exist or filters != Filters()  # the catalog has some
        departments = [(b["value"], b["count"]) for b in response.facets["category"] if " > " not in b["value"]]
        assert departments[0][0] == "Furniture" and departments[0][1] >= 0.95 * response.total, departments
        assert {"field": "attr.color", "value": "gray", "text": "gray"} in response.understood
        assert {"field": "attr.material", "value": "velvet", "text": "velvet"} in response.understood


def test_named_values_are_offered_never_applied(pipeline) -> None:  # type: ignore[no-untyped-def]
    offered = pipeline.search(SearchRequest("navy linen sofa", k=50))
    assert any(r["attributes"].get("color") != "navy" for r in offered.results)  # others still shown, after
    filtered = pipeline.search(SearchRequest("navy linen sofa", k=10,
                                             filters=Filters(attributes=(("color", ("navy",)),))))
    assert {"field": "attr.color", "value": "navy", "text": "navy"} not in filtered.understood  # already applied
    assert {"field": "attr.material", "value": "linen", "text": "linen"} in filtered.understood


def test_the_longest_phrase_wins_and_a_number_alone_names_nothing() -> None:
    counts = {Named("attr.material", "cast iron"): 5, Named("attr.material", "iron"): 2,
              Named("attr.size", "6"): 9, Named("attr.size", "S"): 9, Named("category", "Kitchen > Pans"): 4}
    understand = QueryUnderstanding(counts, lambda text: _words(text))
    phrases = understand("cast iron pans size 6 s")
    assert [(p.text, [v.value for v in p.values]) for p in phrases] == [
        ("cast iron", ["cast iron"]), ("pans", ["Kitchen > Pans"])]
    assert not phrases[1].liftable  # a category orders nothing by itself


def test_the_model_sees_how_many_named_values_a_candidate_has(reader, shipped_encoder) -> None:  # type: ignore[no-untyped-def]
    from ranker.features.compute import CandidateRanks
    from ranker.features.sources import feature_source, features_for

    products = reader.catalog().products
    gray_velvet = next(p for p in products if p.get("attributes") == {"color": "gray", "material": "velvet"})
    green_linen = next(p for p in products if p.get("attributes") == {"color": "green", "material": "linen"}
                       and p["category"].endswith("Sofas"))
    ids = [gray_velvet["id"], green_linen["id"]]
    nan = float("nan")
    import numpy as np

    ranks = CandidateRanks(ids, np.array([1.0, 2.0]), np.array([1.0, nan]), np.array([nan, 1.0]))
    vector = shipped_encoder.encode_query("gray velvet sofa")
    features, _ = features_for(feature_source(reader), "gray velvet sofa", vector, ranks)
    column = features[:, FEATURE_INDEX["query_values_matched"]]
    assert column.tolist() == [3.0, 1.0]  # gray, velvet and the Sofas category; the other only the category


@pytest.mark.parametrize("query", ["😀", "沙发", "*", "\x00", "%00"])
def test_nothing_matches_gives_no_results_not_random_neighbours(pipeline, query: str) -> None:  # type: ignore[no-untyped-def]
    response = pipeline.search(SearchRequest(query, k=10))
    assert response.total == 0 and response.results == []


def test_no_results_come_with_searches_that_find_some(pipeline, reader) -> None:  # type: ignore[no-untyped-def]
    products = reader.catalog().products
    colors = {p["attributes"]["color"] for p in products if p["category"].endswith("Sofas")}
    absent = next(c for c in ("blue", "red", "yellow", "pink", "orange") if c not in colors)
    response = pipeline.search(SearchRequest("sofa", k=10, filters=Filters(attributes=(("color", (absent,)),))))
    assert response.total == 0 and response.results == []
    unfiltered = [s for s in response.suggestions if s["reason"] == "no_filters"]
    assert unfiltered and unfiltered[0]["query"] == "sofa" and unfiltered[0]["total"] > 0
    from ranker.stages import Matching

    saved = pipeline.matching
    try:  # never relaxed, so "zzqxv" empties the search
        pipeline.matching = Matching("100%", 0.99, relax_below=0)
        fewer = pipeline.search(SearchRequest("sofa zzqxv", k=10))
    finally:
        pipeline.matching = saved
    assert fewer.total == 0
    assert [s["query"] for s in fewer.suggestions if s["reason"] == "fewer_words"] == ["sofa"]


@pytest.mark.parametrize(("typed", "searched"), [
    ("oak dinning tabel", "oak dinning table"),  # "dinning" -> "running" would match no oak table
    ("products", "products"),  # an English word the catalog lacks
    ("title:sofa", "title:sofa"),  # field syntax: as typed
    ("velvt sofa", "velvet sofa"),  # a real misspelling is still fixed
])
def test_spelling_changes_only_what_is_clearly_better(pipeline, typed: str, searched: str) -> None:  # type: ignore[no-untyped-def]
    assert pipeline.searched_text(typed) == searched
