"""Catalog reading and row-by-row validation: every kind of bad row is named and skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from indexer.__main__ import EXIT_ROWS_SKIPPED, EXIT_STRICT_REJECTED, main
from indexer.catalog import CatalogError, parse_mapping_overrides, read_catalog
from tests.conftest import HOME_DEPOT


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def problems(report) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(e) for e in report.errors]


def test_csv_good_rows_are_typed(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv",
                 "sku,name,price,in_stock,rating,review_count,category,attr_color,attributes\n"
                 'A1,Blue Sofa,"$1,299.00",yes,4.5,12,Furniture>Sofas,Blue,"{""material"": ""linen""}"\n')
    report = read_catalog(path)
    assert report.errors == []
    assert report.products == [{
        "id": "A1", "title": "Blue Sofa", "price": 1299.0, "in_stock": True, "rating": 4.5,
        "review_count": 12, "category": "Furniture > Sofas", "attributes": {"color": "Blue", "material": "linen"},
    }]


def test_tsv_is_read_as_tab_separated(tmp_path: Path) -> None:
    path = write(tmp_path / "c.tsv", "sku\tname\tprice\tcategory\n"
                                     "A1\tSofa, three seats\t$1,299.00\tFurniture>Sofas\n"
                                     "A2\tLamp\t12\n")
    report = read_catalog(path)
    assert report.products == [{"id": "A1", "title": "Sofa, three seats", "price": 1299.0,
                                "category": "Furniture > Sofas"}]
    assert problems(report) == [f"{path}:3: row: has 3 columns, the header has 4"]


def test_html_entities_are_decoded_and_description_tags_dropped(tmp_path: Path) -> None:
    rows = [{"id": "&amp;1", "title": "Thompson&#39;s 60&quot; Black &amp; Decker Stain", "brand": "Black &amp; Decker",
             "category": "Paint &amp; Stain&gt;Stains", "attributes": {"size": "1/2&quot;"},
             "body_html": "<p>Fits&nbsp;<b>3/4 in.</b> pipe &lt;5 lbs</p>"}]
    path = write(tmp_path / "c.jsonl", "\n".join(json.dumps(r) for r in rows))
    report = read_catalog(path)
    assert report.errors == []
    assert report.products == [{
        "id": "&amp;1",  # an identifier is matched as written, never rewritten
        "title": "Thompson's 60\" Black & Decker Stain", "brand": "Black & Decker",
        "category": "Paint & Stain > Stains", "attributes": {"size": '1/2"'},
        "description": "Fits 3/4 in. pipe <5 lbs",
    }]


@pytest.mark.parametrize(("row", "field", "problem"), [
    (",Chair,10", "id", "missing (required)"),
    ("B2,,10", "title", "missing (required)"),
    ("B3,Chair,abc", "price", "not a number: 'abc'"),
    ("B4,Chair,-5", "price", "must be ≥ 0"),
    ("B5,Chair,nan", "price", "not a finite number"),
])
def test_csv_bad_rows_are_named_and_skipped(tmp_path: Path, row: str, field: str, problem: str) -> None:
    path = write(tmp_path / "c.csv", f"id,title,price\nOK1,Good,1\n{row}\nOK2,Good,2\n")
    report = read_catalog(path)
    assert [p["id"] for p in report.products] == ["OK1", "OK2"]
    assert len(report.errors) == 1
    error = report.errors[0]
    assert (error.path, error.line, error.field) == (str(path), 3, field)
    assert problem in error.problem
    assert str(error).startswith(f"{path}:3: {field}: ")


def test_duplicate_id_names_the_first_line(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "id,title\nA,One\nB,Two\nA,Again\n")
    report = read_catalog(path)
    assert [p["title"] for p in report.products] == ["One", "Two"]
    assert problems(report) == [f"{path}:4: id: duplicate id 'A' (first seen on line 2)"]


def test_wrong_encoding_is_a_row_error_not_a_crash(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", b"id,title\nA,Caf\xe9 table\nB,Fine\n")
    report = read_catalog(path)
    assert [p["id"] for p in report.products] == ["B"]
    assert report.errors[0].line == 2 and report.errors[0].field == "title"
    assert "UTF-8" in report.errors[0].problem


def test_multiline_csv_fields_keep_true_line_numbers(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", 'id,title,description,price\nA,One,"two\nlines",1\nB,Two,x,bad\n')
    report = read_catalog(path)
    assert problems(report) == [f"{path}:4: price: not a number: 'bad'"]


def test_csv_row_with_wrong_column_count(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "id,title\nA,One,extra\nB,Two\n")
    report = read_catalog(path)
    assert [p["id"] for p in report.products] == ["B"]
    assert "has 3 columns, the header has 2" in problems(report)[0]


def test_jsonl_broken_lines(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "A", "title": "Ok", "attributes": {"color": "red"}, "in_stock": False}),
        '{"id": "B", "title": ',
        "[1, 2]",
        "",
        json.dumps({"id": "C", "title": "Bad rating", "rating": 7}),
        json.dumps({"id": "D", "title": "Bad stock", "in_stock": "maybe"}),
    ]
    path = write(tmp_path / "c.jsonl", "\n".join(lines).encode() + b"\n\xff\xfe\n")
    report = read_catalog(path)
    assert [p["id"] for p in report.products] == ["A"]
    assert report.products[0]["in_stock"] is False
    by_line = {e.line: e for e in report.errors}
    assert "not valid JSON" in by_line[2].problem
    assert "expected a JSON object" in by_line[3].problem
    assert by_line[5].field == "rating" and "≤ 5" in by_line[5].problem
    assert by_line[6].field == "in_stock"
    assert "not valid UTF-8" in by_line[7].problem


def test_column_aliases_and_map_override(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "product_uid,product_name,headline,cost\n1,Name,Headline,3\n")
    default = read_catalog(path)
    assert default.products[0]["title"] == "Name"
    assert set(default.ignored_columns) == {"headline", "cost"}
    mapped = read_catalog(path, parse_mapping_overrides(["title=headline", "price=cost"]))
    assert mapped.products[0] == {"id": "1", "title": "Headline", "price": 3.0}


def test_file_level_problems_raise_catalog_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="no such file"):
        read_catalog(tmp_path / "missing.csv")
    with pytest.raises(CatalogError, match="unknown catalog format"):
        read_catalog(write(tmp_path / "c.xml", "<x/>"))
    with pytest.raises(CatalogError, match="no column for id"):
        read_catalog(write(tmp_path / "c.csv", "name,price\nA,1\n"))
    with pytest.raises(CatalogError, match="has no column 'nope'"):
        read_catalog(write(tmp_path / "d.csv", "id,title\n1,A\n"), {"title": "nope"})
    with pytest.raises(CatalogError, match="unknown field"):
        parse_mapping_overrides(["colour=x"])


def test_strict_refuses_and_writes_nothing(tmp_path: Path, models_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    catalog = write(tmp_path / "c.csv", "id,title,price\nA,Lamp,1\nB,Chair,abc\n")
    data_dir = tmp_path / "data"
    assert main(["reindex", "--catalog", str(catalog), "--data-dir", str(data_dir), "--strict", "-q"]) == EXIT_STRICT_REJECTED
    assert f"{catalog}:3: price: not a number: 'abc'" in capsys.readouterr().err
    assert not (data_dir / "CURRENT").exists()
    assert not list(data_dir.glob("generations/g-*"))
    # Without --strict the good row is indexed and the exit status says rows were skipped.
    assert main(["reindex", "--catalog", str(catalog), "--data-dir", str(data_dir), "-q"]) == EXIT_ROWS_SKIPPED
    assert (data_dir / "CURRENT").exists()


@pytest.mark.skipif(not (HOME_DEPOT / "products.csv").exists(), reason="../shared/data/home-depot is not here")
def test_home_depot_catalog_loads_with_no_options() -> None:
    report = read_catalog(HOME_DEPOT / "products.csv")
    assert report.errors == []
    assert len(report.products) == 54_667


def test_an_attribute_name_with_a_control_character_is_refused(tmp_path: Path) -> None:
    """Attribute facets join name and value with a control character (indexer.documents),
    so a name holding one is a row error, not a facet split in the wrong place."""
    rows = [{"id": "A1", "title": "Lamp", "attributes": {"color": "red"}},
            {"id": "A2", "title": "Lamp", "attributes": {"co\x1flor": "red"}}]
    path = write(tmp_path / "c.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    report = read_catalog(path)
    assert [p["id"] for p in report.products] == ["A1"]
    assert report.errors[0].line == 2 and "control characters" in report.errors[0].problem
