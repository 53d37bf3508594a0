"""The embedded backend derives everything from mappings/products.json, and says so
when the mapping asks for something it cannot do."""

from __future__ import annotations

import copy
import json

import pytest

from indexer.analysis import build_analyzers
from indexer.mapping import MAPPING_PATH, MappingError, load_definition, parse_definition
from indexer.store.embedded_index import build_schema


def body() -> dict:
    return json.loads(MAPPING_PATH.read_text())


def test_definition_reads_fields_boosts_and_vector() -> None:
    definition = load_definition()
    assert definition.dimension == 384
    assert definition.fields["brand.text"].type == "text"
    assert definition.search_fields["title"] > definition.search_fields["description"]
    assert set(definition.facets) == {"brand", "category", "price", "attributes"}
    assert definition.facets["attributes"].keys > 0  # one facet per attribute
    build_schema(definition)  # every mapped type has an embedded counterpart


def test_analyzer_follows_the_mapping() -> None:
    analyzer = build_analyzers(load_definition())["product_text"]
    assert analyzer.analyze("Sofas Déjà-Vu") == ["sofa", "deja", "vu"]


def test_unsupported_analysis_is_refused_by_name() -> None:
    changed = copy.deepcopy(body())
    changed["settings"]["analysis"]["analyzer"]["product_text"]["filter"].append("shingle")
    with pytest.raises(MappingError, match="filter 'shingle' is not supported"):
        build_analyzers(parse_definition(changed))


def test_search_fields_must_be_text_fields() -> None:
    changed = copy.deepcopy(body())
    changed["mappings"]["_meta"]["shoprank"]["search_fields"]["price"] = 1.0
    with pytest.raises(MappingError, match="search field 'price' must be a text field"):
        parse_definition(changed)


def test_unknown_field_type_is_refused() -> None:
    changed = copy.deepcopy(body())
    changed["mappings"]["properties"]["location"] = {"type": "geo_point"}
    with pytest.raises(MappingError, match="type 'geo_point' is not supported"):
        build_schema(parse_definition(changed))
