"""`GET /search` parameters: declared once, used to validate requests and to write the
OpenAPI document, so the two cannot drift apart.

One rule for every parameter: a value is what its schema says, exactly. An empty (or
blank) value is refused like any other bad value, whatever the parameter: to search
without a filter, leave the parameter out. Numbers are plain ASCII decimals, booleans
`true` or `false`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from werkzeug.datastructures import MultiDict

from indexer.store.base import Filters, normalize_category
from ranker.facets import ATTRIBUTE_PREFIX
from ranker.fusion import FUSION_METHODS, FusionConfig
from ranker.recall import MAX_RESULTS
from ranker.request import MAX_ID_LENGTH, MODES, PRINTABLE_ID, SearchRequest, Shopper
from ranker.sorting import SORTS

MAX_QUERY_LENGTH = 256
MAX_K = 100
MAX_OFFSET = MAX_RESULTS - MAX_K  # so offset + k never passes MAX_RESULTS
BLANK = " \t\n\v\f\r"
# A value holds at least one character that is not blank (the same set in the schema's
# ECMA regex and in Python, which disagree on what `\s` is).
NOT_BLANK = r"[^ \t\n\v\f\r]"
CATEGORY = r"[^ \t\n\v\f\r>]"  # names a level, not only separators
ATTRIBUTE_NAME = r"^attr\.[^ \t\n\v\f\r]+$"
_INTEGER = re.compile(r"^-?[0-9]+$")
_NUMBER = re.compile(r"^-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$")
_NOT_BLANK = re.compile(NOT_BLANK)
_CATEGORY = re.compile(CATEGORY)
_PRINTABLE_ID = re.compile(PRINTABLE_ID)
_ATTRIBUTE_NAME = re.compile(ATTRIBUTE_NAME)


class BadRequest(ValueError):
    def __init__(self, parameter: str, message: str):
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


@dataclass(frozen=True)
class Param:
    name: str
    schema: dict[str, Any]
    description: str
    repeatable: bool = False
    required: bool = False


def _text(**extra: Any) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "pattern": NOT_BLANK, **extra}


PARAMS: tuple[Param, ...] = (
    Param("q", _text(maxLength=MAX_QUERY_LENGTH), "The shopper's query.", required=True),
    Param("k", {"type": "integer", "minimum": 1, "maximum": MAX_K, "default": 10}, "Results per page."),
    Param("offset", {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
          f"Results to skip; results beyond the first {MAX_RESULTS} are not served."),
    Param("category", _text(pattern=CATEGORY), "Category path prefix, e.g. `Furniture > Living Room`."),
    Param("brand", _text(), "Exact brand; repeat for any of several.", repeatable=True),
    Param("price_min", {"type": "number", "minimum": 0}, "Lowest price, inclusive."),
    Param("price_max", {"type": "number", "minimum": 0},
          "Highest price, inclusive (below `price_min`: an empty range, which matches nothing)."),
    Param("price_below", {"type": "number", "minimum": 0},
          "Prices below this, exclusive: a price facet bucket's `to`, so its count is the total it leads to."),
    Param("in_stock", {"type": "boolean"}, "Only products in stock (true) or out of stock (false)."),
    Param("mode", {"type": "string", "enum": list(MODES), "default": "hybrid"},
          "Recall: hybrid, BM25 only or vectors only."),
    Param("fusion", {"type": "string", "enum": list(FUSION_METHODS)},
          "Fusion: weighted (min-max normalised scores, default) or rrf (reciprocal rank)."),
    Param("explain", {"type": "boolean", "default": False},
          "Add each result's BM25 and vector rank and score and, when a learned model ranks, its score and features."),
    Param("rerank", {"type": "boolean", "default": True},
          "Order by the learned ranking model when one is trained (false: recall order)."),
    Param("correct", {"type": "boolean", "default": True},
          "Correct words the catalog does not know (misspellings, compounds, `18v`, `2x4`); false: search as typed. "
          "The response's `corrected_query` says what was searched."),
    Param("sort", {"type": "string", "enum": list(SORTS), "default": "relevance"},
          "Order: relevance, price_asc, price_desc or rating (highest first, then most reviewed); "
          "relevance breaks ties and merchandising pins keep their positions."),
    Param("timings", {"type": "boolean", "default": False}, "Add each pipeline stage's milliseconds (`timings`)."),
    Param("user_id", {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH, "pattern": PRINTABLE_ID},
          "The shopper, when known (1–128 printable characters)."),
    Param("session_id", {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH, "pattern": PRINTABLE_ID},
          "The shopper's session, for a shopper without a user id (1–128 printable characters)."),
)
PARAMS_BY_NAME = {p.name: p for p in PARAMS}


def _single(args: MultiDict, name: str) -> str | None:
    values = args.getlist(name)
    if len(values) > 1:
        raise BadRequest(name, "given more than once")
    if values and not _NOT_BLANK.search(values[0]):
        raise BadRequest(name, "must not be empty (leave the parameter out instead)")
    return values[0] if values else None


def _integer(args: MultiDict, name: str, low: int, high: int, default: int) -> int:
    raw = _single(args, name)
    if raw is None:
        return default
    if not _INTEGER.fullmatch(raw):
        raise BadRequest(name, f"must be a whole number, got {raw!r}")
    value = int(raw)
    if not low <= value <= high:
        raise BadRequest(name, f"must be between {low} and {high}, got {value}")
    return value


def _number(args: MultiDict, name: str) -> float | None:
    raw = _single(args, name)
    if raw is None:
        return None
    value = float(raw) if _NUMBER.fullmatch(raw) else math.nan
    if not math.isfinite(value) or value < 0:
        raise BadRequest(name, f"must be a number ≥ 0, got {raw!r}")
    return value


def _boolean(args: MultiDict, name: str, default: bool | None) -> bool | None:
    raw = _single(args, name)
    if raw is None:
        return default
    if raw not in ("true", "false"):
        raise BadRequest(name, f"must be true or false, got {raw!r}")
    return raw == "true"


def _choice(args: MultiDict, name: str, choices: tuple[str, ...]) -> str | None:
    raw = _single(args, name)
    if raw is not None and raw not in choices:
        raise BadRequest(name, f"must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _text_value(args: MultiDict, name: str, max_length: int | None = None) -> str | None:
    raw = _single(args, name)
    if raw is not None and max_length is not None and len(raw) > max_length:
        raise BadRequest(name, f"is {len(raw)} characters; the limit is {max_length}")
    return raw


def _identity(args: MultiDict, name: str) -> str | None:
    raw = _text_value(args, name, MAX_ID_LENGTH)
    if raw is not None and not _PRINTABLE_ID.fullmatch(raw):
        raise BadRequest(name, "must be printable characters (no control characters)")
    return raw


def _all_of(args: MultiDict, name: str) -> tuple[str, ...]:
    values = args.getlist(name)
    if any(not _NOT_BLANK.search(v) for v in values):
        raise BadRequest(name, "must not be empty (leave the parameter out instead)")
    return tuple(dict.fromkeys(v.strip(BLANK) for v in values))


def parse_search_args(args: MultiDict | Mapping[str, Any], default_fusion: FusionConfig) -> SearchRequest:
    """Validate query-string arguments into a SearchRequest; BadRequest names the problem."""
    if not isinstance(args, MultiDict):
        args = MultiDict(args)
    attributes = []
    for name in args:
        if name.startswith(ATTRIBUTE_PREFIX):
            if not _ATTRIBUTE_NAME.fullmatch(name):
                raise BadRequest(name, "needs an attribute name, e.g. attr.color=blue")
            attributes.append((name[len(ATTRIBUTE_PREFIX):].lower(), _all_of(args, name)))
        elif name not in PARAMS_BY_NAME:
            raise BadRequest(name, f"unknown parameter; known: {', '.join(PARAMS_BY_NAME)}, attr.<name>")

    query = _text_value(args, "q", MAX_QUERY_LENGTH)
    if query is None:
        raise BadRequest("q", "is required")
    k = _integer(args, "k", 1, MAX_K, 10)
    offset = _integer(args, "offset", 0, MAX_OFFSET, 0)
    category = _text_value(args, "category")
    if category is not None and not _CATEGORY.search(category):
        raise BadRequest("category", "names no category (only separators)")
    method = _choice(args, "fusion", FUSION_METHODS)
    fusion = None if method is None else FusionConfig(method, default_fusion.rrf_k, default_fusion.lexical_weight,
                                                      default_fusion.vector_weight)
    filters = Filters(category=normalize_category(category) if category is not None else None,
                      brands=_all_of(args, "brand"), price_min=_number(args, "price_min"),
                      price_max=_number(args, "price_max"), price_below=_number(args, "price_below"),
                      in_stock=_boolean(args, "in_stock", None), attributes=tuple(sorted(attributes)))
    return SearchRequest(
        query=query.strip(BLANK), k=k, offset=offset, filters=filters,
        mode=_choice(args, "mode", MODES) or "hybrid", fusion=fusion,
        explain=bool(_boolean(args, "explain", False)), rerank=bool(_boolean(args, "rerank", True)),
        correct=bool(_boolean(args, "correct", True)), timings=bool(_boolean(args, "timings", False)),
        shopper=Shopper(_identity(args, "user_id"), _identity(args, "session_id")),
        sort=_choice(args, "sort", SORTS) or "relevance",
    )


MAX_SUGGESTIONS = 20
SUGGEST_PARAMS: tuple[Param, ...] = (
    Param("q", _text(maxLength=MAX_QUERY_LENGTH), "What the shopper has typed so far.", required=True),
    Param("k", {"type": "integer", "minimum": 1, "maximum": MAX_SUGGESTIONS, "default": 8}, "Suggestions at most."),
)


def parse_suggest_args(args: MultiDict | Mapping[str, Any]) -> tuple[str, int]:
    """`GET /suggest`'s (typed text, how many); BadRequest names the problem."""
    if not isinstance(args, MultiDict):
        args = MultiDict(args)
    known = {p.name for p in SUGGEST_PARAMS}
    for name in args:
        if name not in known:
            raise BadRequest(name, f"unknown parameter; known: {', '.join(sorted(known))}")
    typed = _text_value(args, "q", MAX_QUERY_LENGTH)
    if typed is None:
        raise BadRequest("q", "is required")
    return typed, _integer(args, "k", 1, MAX_SUGGESTIONS, 8)
