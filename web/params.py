"""`GET /search` parameters: declared once, used to validate requests and to write the
OpenAPI document, so the two cannot drift apart."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from werkzeug.datastructures import MultiDict

from indexer.store.base import Filters, normalize_category
from ranker.recall import FUSION_METHODS, MAX_RECALL_DEPTH, MODES, FusionConfig, SearchRequest

MAX_QUERY_LENGTH = 256
MAX_K = 100
ATTRIBUTE_PREFIX = "attr."


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


PARAMS: tuple[Param, ...] = (
    Param("q", {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_LENGTH}, "The shopper's query.", required=True),
    Param("k", {"type": "integer", "minimum": 1, "maximum": MAX_K, "default": 10}, "Results per page."),
    Param("offset", {"type": "integer", "minimum": 0, "maximum": MAX_RECALL_DEPTH - 1, "default": 0},
          f"Results to skip; offset + k is at most {MAX_RECALL_DEPTH}."),
    Param("category", {"type": "string"}, "Category path prefix, e.g. `Furniture > Living Room`."),
    Param("brand", {"type": "string"}, "Exact brand; repeat for any of several.", repeatable=True),
    Param("price_min", {"type": "number", "minimum": 0}, "Lowest price, inclusive."),
    Param("price_max", {"type": "number", "minimum": 0}, "Highest price, inclusive."),
    Param("in_stock", {"type": "boolean"}, "Only products in stock (true) or out of stock (false)."),
    Param("mode", {"type": "string", "enum": list(MODES), "default": "hybrid"}, "Recall: hybrid, BM25 only or vectors only."),
    Param("fusion", {"type": "string", "enum": list(FUSION_METHODS)}, "Fusion: weighted (min-max normalised scores, default) or rrf (reciprocal rank)."),
    Param("explain", {"type": "boolean", "default": False},
          "Add each result's BM25 and vector rank and score and, when a learned model ranks, its score and features."),
    Param("rerank", {"type": "boolean", "default": True},
          "Order by the learned ranking model when one is trained (false: recall order)."),
    Param("correct", {"type": "boolean", "default": True},
          "Correct words the catalog does not know (misspellings, compounds, `18v`, `2x4`); false: search as typed. "
          "The response's `corrected_query` says what was searched."),
)
PARAMS_BY_NAME = {p.name: p for p in PARAMS}


def _integer(name: str, raw: str, low: int, high: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(name, f"must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise BadRequest(name, f"must be between {low} and {high}, got {value}")
    return value


def _number(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(name, f"must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise BadRequest(name, f"must be a finite number ≥ 0, got {raw!r}")
    return value


def _boolean(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise BadRequest(name, f"must be true or false, got {raw!r}")


def _single(args: MultiDict, name: str) -> str | None:
    values = args.getlist(name)
    if len(values) > 1:
        raise BadRequest(name, "given more than once")
    return values[0] if values else None


def parse_search_args(args: MultiDict | Mapping[str, Any], default_fusion: FusionConfig) -> SearchRequest:
    """Validate query-string arguments into a SearchRequest; BadRequest names the problem."""
    if not isinstance(args, MultiDict):
        args = MultiDict(args)
    for name in args:
        if name not in PARAMS_BY_NAME and not name.startswith(ATTRIBUTE_PREFIX):
            raise BadRequest(name, f"unknown parameter; known: {', '.join(PARAMS_BY_NAME)}, attr.<name>")

    query = (_single(args, "q") or "").strip()
    if not query:
        raise BadRequest("q", "is required and must not be empty")
    if len(query) > MAX_QUERY_LENGTH:
        raise BadRequest("q", f"is {len(query)} characters; the limit is {MAX_QUERY_LENGTH}")

    k = _integer("k", raw, 1, MAX_K) if (raw := _single(args, "k")) is not None else 10
    offset = _integer("offset", raw, 0, MAX_RECALL_DEPTH - 1) if (raw := _single(args, "offset")) is not None else 0
    if offset + k > MAX_RECALL_DEPTH:
        raise BadRequest("offset", f"offset + k must be at most {MAX_RECALL_DEPTH}, got {offset + k}")

    price_min = _number("price_min", raw) if (raw := _single(args, "price_min")) is not None else None
    price_max = _number("price_max", raw) if (raw := _single(args, "price_max")) is not None else None
    if price_min is not None and price_max is not None and price_min > price_max:
        raise BadRequest("price_min", f"is above price_max ({price_min:g} > {price_max:g})")
    in_stock = _boolean("in_stock", raw) if (raw := _single(args, "in_stock")) is not None else None

    category = _single(args, "category")
    if category is not None:
        category = normalize_category(category)
        if not category:
            raise BadRequest("category", "must not be empty")
    brands = tuple(dict.fromkeys(b.strip() for b in args.getlist("brand") if b.strip()))
    attributes = []
    for name in args:
        if name.startswith(ATTRIBUTE_PREFIX):
            key = name[len(ATTRIBUTE_PREFIX):].strip().lower()
            values = tuple(dict.fromkeys(v.strip() for v in args.getlist(name) if v.strip()))
            if not key or not values:
                raise BadRequest(name, "needs an attribute name and a value, e.g. attr.color=blue")
            attributes.append((key, values))

    mode = _single(args, "mode") or "hybrid"
    if mode not in MODES:
        raise BadRequest("mode", f"must be one of {', '.join(MODES)}, got {mode!r}")
    fusion = None
    if (method := _single(args, "fusion")) is not None:
        if method not in FUSION_METHODS:
            raise BadRequest("fusion", f"must be one of {', '.join(FUSION_METHODS)}, got {method!r}")
        fusion = FusionConfig(method=method, rrf_k=default_fusion.rrf_k,
                              lexical_weight=default_fusion.lexical_weight, vector_weight=default_fusion.vector_weight)
    explain = _boolean("explain", raw) if (raw := _single(args, "explain")) is not None else False
    rerank = _boolean("rerank", raw) if (raw := _single(args, "rerank")) is not None else True
    correct = _boolean("correct", raw) if (raw := _single(args, "correct")) is not None else True

    return SearchRequest(
        query=query, k=k, offset=offset, mode=mode, fusion=fusion, explain=explain, rerank=rerank, correct=correct,
        filters=Filters(category=category, brands=brands, price_min=price_min, price_max=price_max,
                        in_stock=in_stock, attributes=tuple(sorted(attributes))),
    )
