"""Read a product catalog (CSV, TSV or JSONL) and validate it row by row.

A bad row never stops the read: it becomes a `RowError` that names the file, the line,
the field and the problem, and the row is left out. The caller decides what a bad row
means (skip it, or refuse the whole catalog under `--strict`), so nothing is written
before the whole file has been seen.
"""

from __future__ import annotations

import csv
import html
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Product = dict[str, Any]

# Canonical field -> column names that mean the same thing in catalogs seen in the wild.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "product_id", "productid", "sku", "item_id", "product_uid", "uid"),
    "title": ("title", "product_title", "name", "product_name", "item_name"),
    "description": ("description", "product_description", "desc", "body", "body_html"),
    "brand": ("brand", "brand_name", "manufacturer", "vendor"),
    "category": ("category", "category_path", "categories", "product_type", "department"),
    "price": ("price", "sale_price", "price_usd", "amount", "list_price"),
    "currency": ("currency", "currency_code"),
    "in_stock": ("in_stock", "instock", "availability", "available", "stock_status"),
    "rating": ("rating", "average_rating", "avg_rating", "stars"),
    "review_count": ("review_count", "reviews", "num_reviews", "rating_count", "reviews_count"),
    "attributes": ("attributes", "attrs", "specs"),
    "image_url": ("image_url", "image", "image_link", "img", "thumbnail"),
    "popularity": ("popularity", "popularity_score", "sales_rank_score", "views"),
}
FIELDS = tuple(COLUMN_ALIASES)
ATTRIBUTE_PREFIXES = ("attr.", "attr_", "attribute_")
CATEGORY_SEPARATOR = ">"

_TRUE = {"true", "yes", "y", "1", "in stock", "instock", "in_stock", "available", "t"}
_FALSE = {"false", "no", "n", "0", "out of stock", "outofstock", "out_of_stock", "unavailable", "f", "sold out"}
_PRICE_JUNK = re.compile(r"^[\s$€£¥]+|[\s]+$")
_HTML_TAG = re.compile(r"</?[a-zA-Z][^<>]*>")


class CatalogError(Exception):
    """The catalog as a whole cannot be read (missing file, unknown format, no id column)."""


@dataclass(frozen=True)
class RowError:
    path: str
    line: int
    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.field}: {self.problem}"


@dataclass
class CatalogReport:
    """The products that passed validation and everything that did not."""

    path: str
    products: list[Product] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    rows_read: int = 0
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def rows_skipped(self) -> int:
        return len({e.line for e in self.errors})


def parse_mapping_overrides(pairs: list[str] | None) -> dict[str, str]:
    """`["title=product_name"]` -> `{"title": "product_name"}`; unknown targets are refused."""
    overrides: dict[str, str] = {}
    for pair in pairs or []:
        target, sep, source = pair.partition("=")
        target, source = target.strip(), source.strip()
        if not sep or not target or not source:
            raise CatalogError(f"--map {pair!r}: expected FIELD=COLUMN, e.g. title=product_name")
        if target not in FIELDS:
            raise CatalogError(f"--map {pair!r}: unknown field {target!r}; fields are {', '.join(FIELDS)}")
        overrides[target] = source
    return overrides


def resolve_columns(columns: list[str], overrides: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Map each canonical field to the catalog column that holds it.

    Returns (field -> column, unused columns). Attribute columns (`attr.color`) are
    neither: they are picked up row by row.
    """
    lowered = {c.strip().lower(): c for c in columns}
    chosen: dict[str, str] = {}
    for target, source in overrides.items():
        if source not in columns and source.lower() not in lowered:
            raise CatalogError(f"--map {target}={source}: the catalog has no column {source!r}")
        chosen[target] = source if source in columns else lowered[source.lower()]
    taken = set(chosen.values())
    for target, aliases in COLUMN_ALIASES.items():
        if target in chosen:
            continue
        for alias in aliases:
            column = lowered.get(alias)
            if column is not None and column not in taken:
                chosen[target] = column
                taken.add(column)
                break
    unused = [
        c for c in columns if c not in taken and not c.strip().lower().startswith(ATTRIBUTE_PREFIXES)
    ]
    return chosen, unused


# --- field parsers: each returns the clean value or raises ValueError with the problem ---


def _text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        raise ValueError(f"expected text, got {type(value).__name__}")
    text = str(value).strip()
    if any("\udc80" <= ch <= "\udcff" for ch in text):
        raise ValueError("not valid UTF-8 (the file's encoding is wrong for this row)")
    return text


def _display_text(value: Any) -> str:
    """Text a shopper reads: HTML entities decoded. Catalogs exported from web shops
    carry `Thompson&#39;s`, `60&quot;` and `Black &amp; Decker`; left encoded they show
    as such on the page and tokenize as `39`, `quot` and `amp` (how many Home Depot
    titles do: docs/ranking.md)."""
    return html.unescape(_text(value)).strip()


def _description(value: Any) -> str:
    """Display text with its tags dropped too (`body_html` columns are read as
    descriptions); tags go before entities are decoded, so `&lt;5 lbs` stays text."""
    return " ".join(html.unescape(_HTML_TAG.sub(" ", _text(value))).split())


def _number(value: Any, *, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, str):
        cleaned = _PRICE_JUNK.sub("", value).replace(",", "")
        try:
            number = float(cleaned)
        except ValueError:
            raise ValueError(f"not a number: {value!r}") from None
    elif isinstance(value, (int, float)):
        number = float(value)
    else:
        raise ValueError(f"not a number: {value!r}")
    if not math.isfinite(number):
        raise ValueError(f"not a finite number: {value!r}")
    if low is not None and number < low:
        raise ValueError(f"must be ≥ {low:g}, got {value!r}")
    if high is not None and number > high:
        raise ValueError(f"must be ≤ {high:g}, got {value!r}")
    return number


def _count(value: Any) -> int:
    number = _number(value, low=0)
    if number != int(number):
        raise ValueError(f"must be a whole number, got {value!r}")
    return int(number)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"not a yes/no value: {value!r} (use true/false, yes/no, 1/0, in stock/out of stock)")


def _category(value: Any) -> str:
    """A category path; breadcrumbs exported from HTML read `Tools &gt; Drills`."""
    if isinstance(value, list):
        parts = [_display_text(p) for p in value]
    else:  # decoded once, before it is split
        parts = [p.strip() for p in _display_text(value).split(CATEGORY_SEPARATOR)]
    if any(not p for p in parts):
        raise ValueError(f"empty level in category path {value!r}")
    return f" {CATEGORY_SEPARATOR} ".join(parts)


def _attributes(value: Any) -> dict[str, str]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a valid JSON object: {exc.msg}") from None
        else:  # "color=blue; material=oak"
            value = {}
            for pair in filter(None, (p.strip() for p in text.split(";"))):
                key, sep, val = pair.partition("=")
                if not sep:
                    raise ValueError(f"expected key=value pairs separated by ';', got {pair!r}")
                value[key.strip()] = val.strip()
    if not isinstance(value, dict):
        raise ValueError(f"expected an object of key -> value, got {type(value).__name__}")
    clean: dict[str, str] = {}
    for key, val in value.items():
        key = _text(key).lower()
        if not key or "." in key or any(ch < " " for ch in key):
            raise ValueError(f"attribute name {key!r} must be non-empty and contain no '.' or control characters")
        if isinstance(val, (dict, list)):
            raise ValueError(f"attribute {key!r} must be a single value, got {type(val).__name__}")
        if val is None or _text(val) == "":
            continue
        clean[key] = _display_text(val) if not isinstance(val, bool) else str(val).lower()
    return clean


_PARSERS: dict[str, Any] = {
    "id": _text,
    "title": _display_text,
    "description": _description,
    "brand": _display_text,
    "category": _category,
    "price": lambda v: _number(v, low=0),
    "currency": lambda v: _text(v).upper(),
    "in_stock": _bool,
    "rating": lambda v: _number(v, low=0, high=5),
    "review_count": _count,
    "attributes": _attributes,
    "image_url": _text,
    "popularity": lambda v: _number(v, low=0),
}


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def validate_row(raw: Mapping[str, Any], columns: Mapping[str, str]) -> tuple[Product, list[tuple[str, str]]]:
    """Turn one raw row into a Product; returns (product, [(field, problem), ...])."""
    product: Product = {}
    problems: list[tuple[str, str]] = []
    for name, column in columns.items():
        value = raw.get(column)
        if _is_blank(value):
            continue
        try:
            parsed = _PARSERS[name](value)
        except ValueError as exc:
            problems.append((name, str(exc)))
            continue
        if parsed != "" and parsed != {}:
            product[name] = parsed
    for column, value in raw.items():
        lowered = str(column).strip().lower()
        prefix = next((p for p in ATTRIBUTE_PREFIXES if lowered.startswith(p)), None)
        if prefix and not _is_blank(value):
            try:
                product.setdefault("attributes", {}).update(_attributes({lowered[len(prefix):]: value}))
            except ValueError as exc:
                problems.append((str(column), str(exc)))
    for required in ("id", "title"):
        if required not in product and not any(f == required for f, _ in problems):
            problems.append((required, "missing (required)"))
    return product, problems


def _csv_rows(path: Path, delimiter: str = ",") -> Iterator[tuple[int, dict[str, Any] | None, str | None, list[str]]]:
    # surrogateescape keeps undecodable bytes so the row that holds them can be named.
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise CatalogError(f"{path}: the file is empty") from None
        except csv.Error as exc:
            raise CatalogError(f"{path}:1: cannot read the header: {exc}") from None
        header = [h.strip() for h in header]
        line = reader.line_num
        while True:
            start = line + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                line = reader.line_num
                yield start, None, f"not valid {'CSV' if delimiter == ',' else 'TSV'}: {exc}", header
                continue
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                yield start, None, f"has {len(row)} columns, the header has {len(header)}", header
                continue
            yield start, dict(zip(header, row, strict=True)), None, header


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str | None, list[str]]]:
    with open(path, "rb") as fh:
        for number, raw_line in enumerate(fh, start=1):
            if number == 1 and raw_line.startswith(b"\xef\xbb\xbf"):
                raw_line = raw_line[3:]
            if not raw_line.strip():
                continue
            try:
                text = raw_line.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield number, None, f"not valid UTF-8 (byte {exc.object[exc.start]:#04x} at column {exc.start + 1})", []
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                yield number, None, f"not valid JSON: {exc.msg} at column {exc.colno}", []
                continue
            if not isinstance(obj, dict):
                yield number, None, f"expected a JSON object, got {type(obj).__name__}", []
                continue
            yield number, obj, None, list(obj)


def catalog_format(path: Path) -> str:
    """"csv", "tsv" (tab-separated, otherwise read as CSV) or "jsonl", by the file's extension."""
    suffix = path.suffix.lower()
    formats = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
    if suffix not in formats:
        raise CatalogError(f"{path}: unknown catalog format {suffix!r}; use .csv, .tsv or .jsonl")
    return formats[suffix]


def read_catalog(path: str | Path, overrides: Mapping[str, str] | None = None) -> CatalogReport:
    """Read and validate a whole catalog. Raises CatalogError only for file-level problems."""
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"{path}: no such file")
    fmt = catalog_format(path)
    rows = _jsonl_rows(path) if fmt == "jsonl" else _csv_rows(path, "\t" if fmt == "tsv" else ",")
    report = CatalogReport(path=str(path))
    first_line_for_id: dict[str, int] = {}
    columns: dict[str, str] | None = None
    overrides = dict(overrides or {})
    for line, raw, problem, header in rows:
        report.rows_read += 1
        if problem is not None:
            report.errors.append(RowError(str(path), line, "row", problem))
            continue
        assert raw is not None
        if fmt != "jsonl":
            if columns is None:
                columns, report.ignored_columns = resolve_columns(header, overrides)
                if "id" not in columns or "title" not in columns:
                    missing = [f for f in ("id", "title") if f not in columns]
                    raise CatalogError(
                        f"{path}:1: no column for {' and '.join(missing)}; columns are "
                        f"{', '.join(header)} (map one with --map {missing[0]}=COLUMN)"
                    )
            row_columns = columns
        else:
            row_columns, unused = resolve_columns(list(raw), overrides)
            for column in unused:
                if column not in report.ignored_columns:
                    report.ignored_columns.append(column)
        product, problems = validate_row(raw, row_columns)
        if not problems and product["id"] in first_line_for_id:
            problems.append(("id", f"duplicate id {product['id']!r} (first seen on line {first_line_for_id[product['id']]})"))
        if problems:
            report.errors.extend(RowError(str(path), line, f, p) for f, p in problems)
            continue
        first_line_for_id[product["id"]] = line
        report.products.append(product)
    return report
